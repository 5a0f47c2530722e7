// A view of a spooled batch whose lines() are not the stored ones (shaped, or one tenant's), and
// the blocks a block-reading destination (the files, discard) takes from it: empty lines (kept
// back by shaping or routing) left out, the rest joined with their newlines.
import type { DeliveryBatch, LineBlock } from '../delivery.js'

const BLOCK_BYTES = 256 * 1024

export async function * shapedBlocks(lines: AsyncIterable<string>): AsyncGenerator<LineBlock> {
  let parts: string[] = []
  let bytes = 0
  const block = (): LineBlock => {
    const data = Buffer.from(parts.join('\n') + '\n')
    const out = { lines: parts.length, data }
    parts = []
    bytes = 0
    return out
  }
  for await (const line of lines) {
    if (line.length === 0) continue
    parts.push(line)
    bytes += line.length + 1
    if (bytes >= BLOCK_BYTES) yield block()
  }
  if (parts.length > 0) yield block()
}

/** What shaping and routing views share: the stored batch's identity, and payloads and blocks from lines(). */
export abstract class LineView implements DeliveryBatch {
  /** The line lines() gave last and the stored line behind it. */
  protected last: { line: string, original: string } | null = null

  constructor (protected readonly source: DeliveryBatch) {}

  get seq(): number { return this.source.seq }
  get dataset(): string { return this.source.dataset }
  get from(): number { return this.source.from }
  get count(): number { return this.source.count }

  abstract lines(): AsyncGenerator<string>

  /**
   * The stored line behind the line lines() gave last: Elasticsearch's _id stays the hash of the
   * line as received, so a replay after a change of shaping still finds the same documents.
   */
  originalOf(line: string): string {
    if (this.last === null || this.last.line !== line) throw new Error('originalOf() is asked about the line lines() gave last')
    return this.last.original
  }

  /**
   * One payload per line of the segment, an empty one for a line kept back: payload readers (Kafka)
   * count positions by them, and their checkpoints must name the segment's lines.
   */
  async * payloads(): AsyncGenerator<Buffer> {
    for await (const line of this.lines()) yield Buffer.from(line)
  }

  blocks(): AsyncGenerator<LineBlock> {
    return shapedBlocks(this.lines())
  }
}
