// A spooled batch as one destination gets it after shaping. The spool keeps its lines as they
// came; this view shapes them as the destination reads, so nothing shaped is ever stored.
//
// Positions stay those of the segment: a line kept back is read as an empty line (lines()), which
// every line-reading destination skips but counts, so their checkpoints (progress) still name the
// segment's lines and a retry resumes at the same place. Block readers (the files, discard) get
// only the lines that go out.
import type { DeliveryBatch, LineBlock, Rejection } from '../delivery.js'
import { LineRejectCode } from '../errors.js'
import { Tally, type Shaper } from './shaper.js'
import { shapedBlocks } from './blocks.js'

export class ShapedBatch implements DeliveryBatch {
  /** The counts of the last full read of lines() (routing reads a batch more than once). */
  tally: Tally
  /** The stored line behind the shaped line read last (Elasticsearch's _id is its hash). */
  private current: { shaped: string, original: string } | null = null
  /**
   * Lines the shaping could not handle, by position in the segment: each is read as an empty line
   * (the destination skips it, the rest of the batch goes out) and dead-lettered for this
   * destination only, so one such line never holds the batch back in an endless retry.
   */
  private readonly failed = new Map<number, Rejection>()
  /** Positions below this one were handed to the dead letters already (takeFailed). */
  private taken = 0

  constructor (private readonly source: DeliveryBatch, private readonly shaper: Shaper, private readonly sink: string) {
    this.tally = new Tally(shaper.ruleNames.length)
  }

  get seq(): number { return this.source.seq }
  get dataset(): string { return this.source.dataset }
  get from(): number { return this.source.from }
  get count(): number { return this.source.count }
  get route(): DeliveryBatch['route'] { return this.source.route }

  async * lines(): AsyncGenerator<string> {
    this.tally = new Tally(this.shaper.ruleNames.length)
    let pos = this.source.from
    for await (const line of this.source.lines()) {
      // A blank line is skipped by every destination as it is; nothing to shape.
      const shaped = line.length === 0 ? '' : this.shapeOne(line, pos)
      pos++
      this.current = { shaped, original: line }
      yield shaped
    }
  }

  private shapeOne(line: string, pos: number): string {
    try {
      return this.shaper.shape(line, this.tally) ?? ''
    } catch (err) {
      if (!this.failed.has(pos)) {
        this.failed.set(pos, { dataset: this.source.dataset, sink: this.sink, code: LineRejectCode.shaping, reason: `shaping could not handle the line: ${(err as Error).message}`, raw: line })
      }
      return ''
    }
  }

  /**
   * The lines before position `upTo` the shaping could not handle and that were not taken yet:
   * the forwarder dead-letters them before its checkpoint passes them.
   */
  takeFailed(upTo: number): Rejection[] {
    const out: Rejection[] = []
    for (const [pos, r] of this.failed) if (pos >= this.taken && pos < upTo) out.push(r)
    this.taken = Math.max(this.taken, upTo)
    return out
  }

  /**
   * The stored line a shaped line came from: Elasticsearch's _id stays the hash of the line as
   * received, so a replay after a change of shaping still finds the same documents. Only the line
   * read last can be asked about, and only by the string lines() gave.
   */
  originalOf(shaped: string): string {
    if (this.current === null || this.current.shaped !== shaped) throw new Error('originalOf() is asked about the line lines() gave last')
    return this.current.original
  }

  async * payloads(): AsyncGenerator<Buffer> {
    for await (const line of this.lines()) if (line.length > 0) yield Buffer.from(line)
  }

  blocks(): AsyncGenerator<LineBlock> {
    return shapedBlocks(this.lines())
  }
}
