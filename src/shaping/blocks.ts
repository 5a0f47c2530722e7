// Lines as the blocks a block-reading destination (the files, discard) takes: empty lines (kept
// back by shaping or routing) left out, the rest joined with their newlines.
import type { LineBlock } from '../delivery.js'

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
