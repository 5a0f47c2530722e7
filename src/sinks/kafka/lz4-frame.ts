// The LZ4 frame Kafka reads: independent blocks (the flag Kafka's reader requires; lz4js's own
// frame writer keeps its hash table across blocks, which makes them dependent and the broker
// refuses the batch with "Dependent block stream is unsupported"), 64 KiB blocks, no checksums
// beyond the header's. lz4js compresses each block.
import lz4 from 'lz4js'
import xxh32 from 'lz4js/xxh32.js'

const MAGIC = 0x184d2204
const FLG = 0x40 | 0x20 // version 01, block independence
const BD = 4 << 4 // 64 KiB maximum block size
const BLOCK = 64 * 1024
const UNCOMPRESSED = 0x80000000

export function lz4Frame (src: Uint8Array): Buffer {
  const parts: Buffer[] = []
  const header = Buffer.alloc(7)
  header.writeUInt32LE(MAGIC, 0)
  header[4] = FLG
  header[5] = BD
  header[6] = (xxh32.hash(0, header, 4, 2) >> 8) & 0xff
  parts.push(header)
  const out = new Uint8Array(lz4.compressBound(BLOCK))
  for (let at = 0; at < src.length; at += BLOCK) {
    const block = src.subarray(at, Math.min(at + BLOCK, src.length))
    // A fresh hash table per block: no match reaches into an earlier block.
    const size = lz4.compressBlock(block, out, 0, block.length, new Uint32Array(1 << 16))
    const len = Buffer.alloc(4)
    if (size === 0 || size >= block.length) {
      len.writeUInt32LE((UNCOMPRESSED | block.length) >>> 0, 0)
      parts.push(len, Buffer.from(block))
    } else {
      len.writeUInt32LE(size, 0)
      parts.push(len, Buffer.from(out.subarray(0, size)))
    }
  }
  parts.push(Buffer.alloc(4))
  return Buffer.concat(parts)
}
