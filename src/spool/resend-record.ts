// One record of the re-send index's bucket files (resend-index.ts), its checksum, and the
// durable append of records to a bucket file.
//
// Layout: spool/resend/<bucket start, ms>.bin := record*
//   record := key (16: SHA-256 of "dataset:digest", first 16 bytes) | committed at, ms (u48le) |
//             segment seq (u48le) | CRC-32 (zlib's) of the 28 bytes before (u32le)
import { createHash } from 'node:crypto'
import type { SpoolFs } from './fs.js'
import { writeAll } from '../write-all.js'

export const RECORD_BYTES = 32

export function resendKey(dataset: string, digest: string): Buffer {
  return createHash('sha256').update(`${dataset}:${digest}`).digest().subarray(0, 16)
}

export function encodeRecord(key: Uint8Array, at: number, seq: number, out = Buffer.alloc(RECORD_BYTES), offset = 0): Buffer {
  out.set(key.subarray(0, 16), offset)
  out.writeUIntLE(Math.max(0, Math.floor(at)), offset + 16, 6)
  out.writeUIntLE(seq, offset + 22, 6)
  out.writeUInt32LE(recordCrc(out, offset), offset + 28)
  return out
}

// CRC-32 (the zlib polynomial) of a record's 28 bytes, in JS: a native call per 28 bytes costs
// more than the sum itself, and a start checks millions of records. Four bytes a step ("slicing
// by 4"): four independent table look-ups instead of four dependent ones.
const CRC_TABLES = ((): Int32Array[] => {
  const t = [new Int32Array(256), new Int32Array(256), new Int32Array(256), new Int32Array(256)] as const
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[0][n] = c
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 1; k < 4; k++) t[k]![n] = (t[k - 1]![n]! >>> 8) ^ t[0][t[k - 1]![n]! & 0xff]!
  }
  return [...t]
})()
const [T0, T1, T2, T3] = CRC_TABLES as [Int32Array, Int32Array, Int32Array, Int32Array]

/** One step of the CRC over a little-endian word (a start's loop calls it seven times a record). */
export function crcWord(c: number, w: number): number {
  c ^= w
  return T3[c & 0xff]! ^ T2[(c >>> 8) & 0xff]! ^ T1[(c >>> 16) & 0xff]! ^ T0[c >>> 24]!
}

export function recordCrc(buf: Uint8Array, offset: number): number {
  const v = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  let c = -1
  for (let o = offset; o < offset + 28; o += 4) c = crcWord(c, v.getUint32(o, true))
  return (c ^ -1) >>> 0
}

/** Appends records to a bucket file and fsyncs it (the caller fsyncs the directory for a new file). */
export async function appendSynced(fs: SpoolFs, path: string, data: Buffer): Promise<void> {
  const fh = await fs.open(path, 'a', 0o600)
  try {
    await writeAll(fh, data)
    await fh.sync()
  } finally {
    await fh.close()
  }
}
