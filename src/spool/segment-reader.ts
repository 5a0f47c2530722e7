// Reading committed segments as destinations get them, damaged ones included.
//
// Invariants
// - A damaged segment is never changed: it is reported once (damage.ts, with a copy in
//   damaged/), and every destination reads the same intact blocks from it (resync.ts), before
//   and after the damage, numbered as committed.
// - Lines lost to damage keep their numbers but are never read: a destination counts the lines
//   it got, so its checkpoints inside a damaged segment go through indexAfter(), or a restart
//   would send the lines after the damage again. The numbering is the same at every start (the
//   scan is), so a checkpoint taken before a restart points at the same line after it.
import type { LineBlock } from '../delivery.js'
import type { DamageKeeper } from './damage.js'
import { readBlocks, readSegmentHeader, RECORD_HEADER_BYTES, SEGMENT_VERSION, TornSegment } from './format.js'
import type { SpoolFs } from './fs.js'
import { intactBlocks, lostLines, positionAfter, scanSegment, type LostLines } from './resync.js'
import type { Segment } from './spool.js'

export class SegmentReader {
  // Damaged segments read since the start: where their lost lines are numbered (resync.ts).
  private readonly gaps = new Map<number, LostLines>()

  constructor (private readonly fs: SpoolFs, private readonly damage: DamageKeeper) {}

  /** A segment's lines from line `from` on, many at a time, as stored (format.ts). */
  async * blocks(seg: Segment, from: number): AsyncGenerator<LineBlock> {
    let delivered = from
    try {
      for await (const block of readBlocks(seg.path, from, this.fs)) {
        delivered += block.lines
        yield block
      }
    } catch (err) {
      if (!(err instanceof TornSegment)) throw err
      const size = (await this.fs.stat(seg.path)).size
      const header = err.goodRecords > 0 ? await readSegmentHeader(seg.path, this.fs).catch(() => null) : null
      if (header?.v !== SEGMENT_VERSION) {
        // No header, or the v1 format (a record per line, no line counts to resynchronise on):
        // what is whole before the damage is all that can be read.
        await this.damage.note(seg.path, [{ fromByte: err.goodBytes, toByte: size }], seg.lines, null, err.message)
        return
      }
      // The file is left as it is (its copy in damaged/ too): every destination scans it the same
      // way and delivers every intact block before and after the damage (resync.ts).
      const scan = await scanSegment(seg.path, await this.headerEnd(seg.path), seg.lines, this.fs)
      await this.damage.note(seg.path, scan.damaged, seg.lines, scan.linesLost, err.message)
      this.gaps.set(seg.seq, lostLines(scan))
      yield * intactBlocks(seg.path, scan, delivered, this.fs)
    }
  }


  /**
   * The segment's line number after a destination has read `count` lines of it from line `from`:
   * a destination counts the lines it got, and lines lost to damage are numbered (so that a
   * checkpoint keeps pointing at the same line) but never read. Checkpoints taken inside a
   * damaged segment use this, or a restart would send the lines after the damage again.
   */
  indexAfter(seq: number, from: number, count: number): number {
    return positionAfter(this.gaps.get(seq), from, count)
  }

  /** The segment is deleted. */
  forget(seq: number): void {
    this.gaps.delete(seq)
  }

  /** Where the header record (read whole and checked before) ends. */
  private async headerEnd(path: string): Promise<number> {
    const fh = await this.fs.open(path, 'r')
    try {
      const head = Buffer.alloc(4)
      await fh.read(head, 0, 4, 0)
      return RECORD_HEADER_BYTES + head.readUInt32LE(0)
    } finally {
      await fh.close()
    }
  }
}
