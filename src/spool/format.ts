// On-disk record format of spool segments.
//
//   segment := record*            record := u32le length | u32le crc32(payload) | payload
//
// Record 0 is a JSON header ({"v","dataset","requestId","receivedAt"}). What follows depends on v:
//
// - v: 2 (written since the speed round): every further record is a block of lines,
//     payload := u32le count | lines        lines := (line '\n'){count}
//   the valid lines of one piece of a batch exactly as received, each with its newline, so one
//   checksum covers hundreds of lines and a destination that writes NDJSON copies a block whole.
//   Earlier releases stored an HEC event sent pretty-printed as it came, newlines and all, in a
//   block of its own with the VERBATIM bit set in `count` (count 1). Such a record broke every
//   destination that frames records by line (Elasticsearch refused the whole _bulk request), so
//   a record is now stored as one line (one-line.ts) and a VERBATIM block is only read, as one
//   line too, so that what an earlier release left spooled is delivered.
// - v: 1 (what earlier releases wrote, still read so that an upgrade delivers what they left
//   spooled): every further record is one line, without its newline.
//
// A segment is written in the staging directory, fsync'd, and only then renamed into segments/: a
// committed segment is whole. The checksums still guard against what fsync cannot (a lying disk,
// a copied half file): a reader that meets a short or mismatching record stops there and reports
// the offset.
import { realFs, type SpoolFs } from './fs.js'
import { crc32 } from 'node:zlib'
import type { LineBlock } from '../delivery.js'
import { oneLine } from '../one-line.js'

export const RECORD_HEADER_BYTES = 8
/** A block's record header: length, checksum, line count. */
export const BLOCK_HEADER_BYTES = RECORD_HEADER_BYTES + 4
export const SEGMENT_VERSION = 2
const VERBATIM = 0x80000000
const NEWLINE = 0x0a

export interface SegmentHeader {
  readonly v: 1 | 2
  readonly dataset: string
  readonly requestId: string
  readonly receivedAt: string
  /** The tenant the sender's token names (routing, src/shaping/route.ts); absent without one. */
  readonly tenant?: string
}

/** A segment's header (record 0): its dataset, request and, where a token named one, tenant. */
export async function readSegmentHeader(path: string, fs: SpoolFs = realFs): Promise<SegmentHeader> {
  const fh = await fs.open(path, 'r')
  try {
    const head = Buffer.alloc(RECORD_HEADER_BYTES)
    if ((await fh.read(head, 0, RECORD_HEADER_BYTES, 0)).bytesRead < RECORD_HEADER_BYTES) throw new Error(`${path}: no segment header`)
    const length = head.readUInt32LE(0)
    if (length > 64 * 1024) throw new Error(`${path}: a segment header of ${length} bytes`)
    const payload = Buffer.alloc(length)
    if ((await fh.read(payload, 0, length, RECORD_HEADER_BYTES)).bytesRead < length || crc32(payload) !== head.readUInt32LE(4)) throw new Error(`${path}: a damaged segment header`)
    return JSON.parse(payload.toString('utf8')) as SegmentHeader
  } finally {
    await fh.close()
  }
}

/** One record around a payload (the segment header). */
export function frameRecord(payload: Uint8Array): Buffer {
  const buf = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length)
  buf.writeUInt32LE(payload.length, 0)
  buf.writeUInt32LE(crc32(payload), 4)
  buf.set(payload, RECORD_HEADER_BYTES)
  return buf
}

const countBytes = Buffer.alloc(4)

/** The count field of a block: its lines, or one verbatim record (what earlier releases wrote; tests write it to read it). */
function countField(count: number, verbatim: boolean): number {
  return verbatim ? (VERBATIM | 1) >>> 0 : count
}

/** The checksum of a block record: over its count field and its lines (given in parts, if need be). */
export function blockCrc(count: number, lines: Uint8Array | readonly Uint8Array[], verbatim = false): number {
  countBytes.writeUInt32LE(countField(count, verbatim), 0)
  let crc = crc32(countBytes)
  for (const part of Array.isArray(lines) ? lines as readonly Uint8Array[] : [lines as Uint8Array]) crc = crc32(part, crc)
  return crc
}

/** The header a block's lines follow on disk; `crc` from blockCrc (a parse worker computes it). */
export function blockHeader(count: number, lines: Uint8Array, crc: number, verbatim = false): Buffer {
  const head = Buffer.allocUnsafe(BLOCK_HEADER_BYTES)
  head.writeUInt32LE(4 + lines.length, 0)
  head.writeUInt32LE(crc, 4)
  head.writeUInt32LE(countField(count, verbatim), 8)
  return head
}

/**
 * Lines (text, or bytes taken as they are; without their newlines) as one block record; a line
 * that holds line breaks of its own (a JSON text) is stored as one line (oneLine).
 */
export function encodeBlocks(lines: ReadonlyArray<string | Uint8Array>): Buffer {
  const out: Buffer[] = []
  let plain: Buffer[] = []
  const flush = (): void => {
    if (plain.length === 0) return
    const data = Buffer.concat(plain)
    const count = plain.length / 2
    out.push(blockHeader(count, data, blockCrc(count, data)), data)
    plain = []
  }
  for (const l of lines) {
    const bytes = typeof l === 'string' ? Buffer.from(l) : Buffer.from(l.buffer, l.byteOffset, l.byteLength)
    plain.push(oneLine(bytes), NL)
  }
  flush()
  return Buffer.concat(out)
}

const NL = Buffer.from('\n')

export class TornSegment extends Error {
  constructor (readonly path: string, readonly goodBytes: number, readonly goodRecords: number, why: string) {
    super(`spool segment ${path} is damaged after ${goodRecords} records (${goodBytes} bytes): ${why}`)
  }
}

const READ_CHUNK = 1024 * 1024

/**
 * Yields the payloads of a segment's records from record `from` on (record 0 is the header), as
 * views into one read buffer that is used again: a payload is valid until the next is asked for.
 * Memory holds that buffer, grown only for a record larger than it.
 */
export async function * readRecords(path: string, from = 0, fs: SpoolFs = realFs): AsyncGenerator<{ index: number, offset: number, payload: Buffer }> {
  // A damaged length field must not make the reader ask for gigabytes before any checksum.
  const size = (await fs.stat(path)).size
  const fh = await fs.open(path, 'r')
  try {
    let buf = Buffer.allocUnsafeSlow(READ_CHUNK)
    let start = 0 // buf[start..end) is read and not yet parsed
    let end = 0
    let offset = 0 // file offset of buf[start]
    let index = 0
    let eof = false
    while (true) {
      // Parse whole records out of the buffer.
      while (end - start >= RECORD_HEADER_BYTES) {
        const len = buf.readUInt32LE(start)
        if (offset + RECORD_HEADER_BYTES + len > size) throw new TornSegment(path, offset, index, `a record of ${len} bytes would end past the end of the file`)
        if (end - start < RECORD_HEADER_BYTES + len) break
        const payload = buf.subarray(start + RECORD_HEADER_BYTES, start + RECORD_HEADER_BYTES + len)
        if (crc32(payload) !== buf.readUInt32LE(start + 4)) throw new TornSegment(path, offset, index, 'checksum mismatch')
        if (index >= from) yield { index, offset, payload }
        index++
        start += RECORD_HEADER_BYTES + len
        offset += RECORD_HEADER_BYTES + len
      }
      if (eof) {
        if (end > start) throw new TornSegment(path, offset, index, `${end - start} bytes of an unfinished record at the end`)
        return
      }
      // Move the unparsed rest to the front; grow only for a record that does not fit.
      const need = end - start >= RECORD_HEADER_BYTES ? RECORD_HEADER_BYTES + buf.readUInt32LE(start) : 0
      if (need > buf.length) {
        const bigger = Buffer.allocUnsafeSlow(need)
        buf.copy(bigger, 0, start, end)
        buf = bigger
      } else if (start > 0) {
        buf.copy(buf, 0, start, end)
      }
      end -= start
      start = 0
      const { bytesRead } = await fh.read(buf, end, buf.length - end, offset + end)
      if (bytesRead === 0) eof = true
      else end += bytesRead
    }
  } finally {
    await fh.close()
  }
}

// v1 lines are gathered into blocks of about this many bytes, as v2 writes them.
const V1_BLOCK_BYTES = 256 * 1024

/**
 * The lines of a segment from line `from` on, as blocks (views into a read buffer, valid until
 * the next). Whole blocks before `from` are skipped by their counts; the block `from` falls in is
 * cut at its line. Both versions of the format; damage throws TornSegment after every whole
 * block before it.
 */
export async function * readBlocks(path: string, from = 0, fs: SpoolFs = realFs): AsyncGenerator<LineBlock> {
  let version = 0
  let skip = from
  // v1 lines gathered into a block; copied, since the read buffer is used again.
  let v1: Buffer[] = []
  let v1Bytes = 0
  const gathered = (): LineBlock => {
    const block = { lines: v1.length, data: Buffer.concat(v1) }
    v1 = []
    v1Bytes = 0
    return block
  }
  try {
    for await (const { index, offset, payload } of readRecords(path, 0, fs)) {
      if (index === 0) {
        version = headerVersion(payload)
        if (version === 0) throw new TornSegment(path, 0, 0, 'no segment header')
        if (version !== 1 && version !== SEGMENT_VERSION) throw new Error(`spool segment ${path} has format version ${version}, which this release does not read`)
        continue
      }
      if (version === 1) {
        // v1 never stored an empty line: an empty record is zeros where records should be.
        if (payload.length === 0) throw new TornSegment(path, offset, index, 'an empty record')
        if (skip > 0) { skip--; continue }
        // An HEC event that release stored pretty-printed is delivered as one line.
        v1.push(Buffer.concat([oneLine(payload), NL]))
        v1Bytes += payload.length + 1
        if (v1Bytes >= V1_BLOCK_BYTES) yield gathered()
        continue
      }
      const block = blockOf(payload)
      if (typeof block === 'string') throw new TornSegment(path, offset, index, block)
      const { lines } = block
      let data = block.data
      if (skip >= lines) { skip -= lines; continue }
      if (skip > 0) {
        // A verbatim block holds one line, so a block cut here is a plain one.
        let at = 0
        for (let n = 0; n < skip; n++) at = data.indexOf(NEWLINE, at) + 1
        data = data.subarray(at)
        const left = lines - skip
        skip = 0
        yield { lines: left, data }
        continue
      }
      yield block
    }
  } catch (err) {
    // What was gathered before the damage is whole: it goes out before the error does.
    if (v1.length > 0) yield gathered()
    throw err
  }
  if (v1.length > 0) yield gathered()
}

function headerVersion(payload: Buffer): number {
  try {
    const v = (JSON.parse(payload.toString('utf8')) as Partial<SegmentHeader> | null)?.v
    return typeof v === 'number' ? v : 0
  } catch {
    return 0
  }
}

/** A v2 block record's payload, or why it cannot be one (a checksum does not catch zeros: crc32 of nothing is 0). */
export function blockOf(payload: Buffer): LineBlock | string {
  if (payload.length < 4 + 1) return `a block of ${payload.length} bytes`
  const field = payload.readUInt32LE(0)
  const verbatim = (field & VERBATIM) !== 0
  const lines = verbatim ? 1 : field
  if (lines === 0 || (verbatim && field !== ((VERBATIM | 1) >>> 0))) return `a block with line count field ${field}`
  const data = payload.subarray(4)
  if (data[data.length - 1] !== NEWLINE) return 'a block whose last line has no newline'
  // An earlier release's pretty-printed HEC event: delivered as one line.
  if (verbatim) return { lines, data: Buffer.concat([oneLine(data.subarray(0, data.length - 1)), NL]) }
  return { lines, data }
}
