// The request bodies of the bench: one gzip NDJSON body per (dataset, size), generated once and
// sent again and again. Generating and compressing 100 MB takes seconds, which would otherwise be
// charged to the scenarios or limit how much the bench can send.
import { gzipSync } from 'node:zlib'
import { loadSchema, recordLine } from '../helpers/fixtures.js'

export const MB = 1_000_000

export interface Body {
  readonly dataset: string
  readonly sizeMB: number
  /** What goes on the wire. */
  readonly gzip: Buffer
  readonly lines: number
  /** Decompressed size: what Logpush's max_upload_bytes counts, and what MB/s is measured in. */
  readonly bytes: number
}

/**
 * As many whole lines as fit in `sizeMB` (decimal, like Logpush's max_upload_bytes), each one
 * distinct, in the format a Logpush job with every field of the schema sends.
 */
export function makeBody(dataset: string, sizeMB: number): Body {
  const schema = loadSchema(dataset)
  const limit = sizeMB * MB
  const chunks: Buffer[] = []
  let bytes = 0
  let lines = 0
  let pending: string[] = []
  let pendingBytes = 0
  for (;;) {
    const line = recordLine(schema, lines) + '\n'
    const size = Buffer.byteLength(line)
    if (bytes + pendingBytes + size > limit) break
    pending.push(line)
    pendingBytes += size
    lines++
    // Joined in 1 MB pieces: one 100 MB string concatenation would double the peak memory.
    if (pendingBytes >= MB) {
      chunks.push(Buffer.from(pending.join('')))
      bytes += pendingBytes
      pending = []
      pendingBytes = 0
    }
  }
  if (pending.length > 0) chunks.push(Buffer.from(pending.join('')))
  bytes += pendingBytes
  if (lines === 0) throw new Error(`${dataset}: not one line fits in ${sizeMB} MB`)
  return { dataset, sizeMB, gzip: gzipSync(Buffer.concat(chunks)), lines, bytes }
}
