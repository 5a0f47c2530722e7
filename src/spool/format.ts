// On-disk record format of spool segments.
//
//   segment := record*            record := u32le length | u32le crc32(payload) | payload
//
// Record 0 is a JSON header ({"v":1,"dataset","requestId","receivedAt"}); every further record
// is one valid line exactly as received, without its newline. A segment is written in the
// staging directory, fsync'd, and only then renamed into segments/: a committed segment is whole.
// The checksums still guard against what fsync cannot (a lying disk, a copied half file): a
// reader that meets a short or mismatching record stops there and reports the offset.
import { realFs, type SpoolFs } from './fs.js'
import { crc32 } from 'node:zlib'

export const RECORD_HEADER_BYTES = 8

export interface SegmentHeader {
  readonly v: 1
  readonly dataset: string
  readonly requestId: string
  readonly receivedAt: string
}

/** Frames lines (text, or bytes taken as they are) into one buffer: one allocation and write for many records. */
export function frame(lines: ReadonlyArray<string | Uint8Array>): Buffer {
  let total = 0
  for (const l of lines) total += RECORD_HEADER_BYTES + (typeof l === 'string' ? Buffer.byteLength(l) : l.length)
  const buf = Buffer.allocUnsafe(total)
  let at = 0
  for (const l of lines) {
    let len: number
    if (typeof l === 'string') len = buf.write(l, at + RECORD_HEADER_BYTES, 'utf8')
    else { buf.set(l, at + RECORD_HEADER_BYTES); len = l.length }
    buf.writeUInt32LE(len, at)
    buf.writeUInt32LE(crc32(buf.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len)), at + 4)
    at += RECORD_HEADER_BYTES + len
  }
  return buf
}

export class TornSegment extends Error {
  constructor (readonly path: string, readonly goodBytes: number, readonly goodRecords: number, why: string) {
    super(`spool segment ${path} is damaged after ${goodRecords} records (${goodBytes} bytes): ${why}`)
  }
}

const READ_CHUNK = 1024 * 1024

/**
 * Yields the payloads of a segment's records from record `from` on (record 0 is the header).
 * Memory holds one read chunk plus at most one record spanning chunks.
 */
export async function * readRecords(path: string, from = 0, fs: SpoolFs = realFs): AsyncGenerator<{ index: number, payload: Buffer }> {
  const fh = await fs.open(path, 'r')
  try {
    let pending: Buffer = Buffer.alloc(0)
    let offset = 0 // file offset of pending[0]
    let index = 0
    let eof = false
    while (true) {
      // Parse whole records out of pending.
      let at = 0
      while (pending.length - at >= RECORD_HEADER_BYTES) {
        const len = pending.readUInt32LE(at)
        if (pending.length - at < RECORD_HEADER_BYTES + len) break
        const payload = pending.subarray(at + RECORD_HEADER_BYTES, at + RECORD_HEADER_BYTES + len)
        if (crc32(payload) !== pending.readUInt32LE(at + 4)) throw new TornSegment(path, offset + at, index, 'checksum mismatch')
        if (index >= from) yield { index, payload }
        index++
        at += RECORD_HEADER_BYTES + len
      }
      pending = pending.subarray(at)
      offset += at
      if (eof) {
        if (pending.length > 0) throw new TornSegment(path, offset, index, `${pending.length} bytes of an unfinished record at the end`)
        return
      }
      const want = Math.max(READ_CHUNK, pending.length >= RECORD_HEADER_BYTES ? pending.readUInt32LE(0) + RECORD_HEADER_BYTES : 0)
      const chunk = Buffer.allocUnsafe(want)
      const { bytesRead } = await fh.read(chunk, 0, want, offset + pending.length)
      if (bytesRead === 0) eof = true
      else pending = pending.length === 0 ? chunk.subarray(0, bytesRead) : Buffer.concat([pending, chunk.subarray(0, bytesRead)])
    }
  } finally {
    await fh.close()
  }
}

