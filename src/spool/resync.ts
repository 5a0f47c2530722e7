// Reading a damaged v2 segment past its damage: the intact blocks after a damaged range are found
// again by scanning for the next offset where a whole block record (length that fits, checksum,
// line count, last newline) starts.
//
// Invariants
// - The scan reads the file and never changes it: every destination that reads the same file
//   finds the same intact blocks and numbers their lines the same way.
// - Line numbering keeps the numbers of the committed segment: the lines missing (committed count
//   minus the lines of all intact blocks) are placed at the first damaged range, so with one
//   damaged range every intact line keeps the index it had when it was written, and a checkpoint
//   taken before the damage still points at the same line.
// - Memory: one window of the file plus the payload of one candidate record at a time.
import { crc32 } from 'node:zlib'
import { blockOf, RECORD_HEADER_BYTES } from './format.js'
import type { SpoolFs } from './fs.js'
import type { LineBlock } from '../delivery.js'

/** A whole block record at [offset, end). */
export interface IntactBlock { readonly offset: number, readonly end: number, readonly lines: number }
/** Bytes [fromByte, toByte) that hold no whole block record. */
export interface DamagedRange { readonly fromByte: number, readonly toByte: number }

export interface SegmentScan {
  readonly blocks: readonly IntactBlock[]
  readonly damaged: readonly DamagedRange[]
  /** Lines committed that no intact block holds (committed count minus intact lines, at least 0). */
  readonly linesLost: number
}

/**
 * Scans a v2 segment whose records are whole up to `goodBytes`: the intact block records from
 * `firstBlock` (the offset after the header record) on and the ranges between them that hold none.
 */
export async function scanSegment(path: string, firstBlock: number, committedLines: number, fs: SpoolFs): Promise<SegmentScan> {
  const size = (await fs.stat(path)).size
  const fh = await fs.open(path, 'r')
  try {
    const readAt = async (at: number, n: number): Promise<Buffer> => {
      const buf = Buffer.alloc(n)
      let got = 0
      while (got < n) {
        const { bytesRead } = await fh.read(buf, got, n - got, at + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      return buf.subarray(0, got)
    }
    // A window of the file for the byte-by-byte search, so a candidate costs no read of its own.
    const WINDOW = 1024 * 1024
    let winAt = -1
    let win: Buffer = Buffer.alloc(0)
    const headAt = async (at: number): Promise<Buffer | null> => {
      if (at + RECORD_HEADER_BYTES + 4 > size) return null
      if (winAt < 0 || at < winAt || at + RECORD_HEADER_BYTES + 4 > winAt + win.length) {
        win = await readAt(at, WINDOW)
        winAt = at
      }
      return win.subarray(at - winAt, at - winAt + RECORD_HEADER_BYTES + 4)
    }
    /** The block record at `at`, if a whole one starts there. */
    const blockAt = async (at: number): Promise<IntactBlock | null> => {
      const head = await headAt(at)
      if (!head) return null
      const len = head.readUInt32LE(0)
      const count = head.readUInt32LE(8)
      // Cheap tests first, so garbage rarely costs a payload read: the record fits, holds at least
      // one line and each line at least its newline.
      if (len < 5 || at + RECORD_HEADER_BYTES + len > size || count === 0) return null
      if ((count & 0x80000000) === 0 && count > len - 4) return null
      const payload = await readAt(at + RECORD_HEADER_BYTES, len)
      if (payload.length < len || payload[len - 1] !== 0x0a || crc32(payload) !== head.readUInt32LE(4)) return null
      const block = blockOf(payload)
      if (typeof block === 'string') return null
      return { offset: at, end: at + RECORD_HEADER_BYTES + len, lines: block.lines }
    }
    const blocks: IntactBlock[] = []
    const damaged: DamagedRange[] = []
    let at = firstBlock
    while (at < size) {
      const b = await blockAt(at)
      if (b) { blocks.push(b); at = b.end; continue }
      const from = at
      let next: IntactBlock | null = null
      for (at = from + 1; at < size && !next; at++) next = await blockAt(at)
      if (next) {
        damaged.push({ fromByte: from, toByte: next.offset })
        blocks.push(next)
        at = next.end
      } else {
        damaged.push({ fromByte: from, toByte: size })
        at = size
      }
    }
    const intact = blocks.reduce((n, b) => n + b.lines, 0)
    return { blocks, damaged, linesLost: Math.max(0, committedLines - intact) }
  } finally {
    await fh.close()
  }
}

/**
 * The lines of a scanned segment from line `from` on, numbered as committed (see the top), as
 * blocks read one at a time.
 */
export async function * intactBlocks(path: string, scan: SegmentScan, from: number, fs: SpoolFs): AsyncGenerator<LineBlock> {
  const firstDamage = scan.damaged[0]?.fromByte ?? Infinity
  const fh = await fs.open(path, 'r')
  try {
    let index = 0
    let lostPlaced = false
    for (const b of scan.blocks) {
      if (!lostPlaced && b.offset >= firstDamage) { index += scan.linesLost; lostPlaced = true }
      const start = index
      index += b.lines
      if (index <= from) continue
      const buf = Buffer.alloc(b.end - b.offset)
      await fh.read(buf, 0, buf.length, b.offset)
      const block = blockOf(buf.subarray(RECORD_HEADER_BYTES))
      if (typeof block === 'string') throw new Error(`spool segment ${path} changed while read`)
      if (from <= start) { yield block; continue }
      // The block `from` falls in is cut at its line (a verbatim block holds one line: not cut).
      let cut = 0
      for (let n = 0; n < from - start; n++) cut = block.data.indexOf(0x0a, cut) + 1
      yield { lines: index - from, data: block.data.subarray(cut) }
    }
  } finally {
    await fh.close()
  }
}

/** Lines of a damaged segment that no intact block holds, numbered from `at` (see the top). */
export interface LostLines { readonly at: number, readonly lines: number }

export function lostLines(scan: SegmentScan): LostLines {
  const firstDamage = scan.damaged[0]?.fromByte ?? Infinity
  let at = 0
  for (const b of scan.blocks) if (b.offset < firstDamage) at += b.lines
  return { at, lines: scan.linesLost }
}

/**
 * The line number after `count` lines read from line `from` on: lines read before the lost
 * ones count as they are; reading past them (or starting among them) skips their numbers.
 */
export function positionAfter(lost: LostLines | undefined, from: number, count: number): number {
  if (!lost || lost.lines === 0 || from >= lost.at + lost.lines) return from + count
  if (from >= lost.at) return lost.at + lost.lines + count
  return from + count <= lost.at ? from + count : from + count + lost.lines
}
