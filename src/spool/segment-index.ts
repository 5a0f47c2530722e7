// The ordered index of committed segments, in memory (rebuilt from file names at start).
//
// Invariants
// - Only durable segments are in it: the spool adds a segment after the fsync of segments/.
// - Sequence numbers strictly increase along the index; adding one out of order is a bug and throws.
// - Every step of a drain is O(log n) or O(1) amortised in the number of segments: with the
//   running sums in each entry, a consumer's next segment or backlog is a binary search, and
//   delivered segments come off the front. A backlog of millions of segments costs no CPU per step.
import type { Segment } from './spool.js'

/** A segment in the ordered index, with the lines and bytes of every segment indexed before it. */
interface Indexed {
  readonly seg: Segment
  readonly linesBefore: number
  readonly bytesBefore: number
}

export class SegmentIndex {
  private readonly segments = new Map<number, Segment>()
  // order[head..] are on disk.
  private order: Indexed[] = []
  private head = 0
  private linesIndexed = 0
  private bytesIndexed = 0
  private liveBytes = 0

  add(seg: Segment): void {
    const lastSeq = this.order.length > this.head ? this.order[this.order.length - 1]!.seg.seq : -1
    if (seg.seq <= lastSeq) throw new Error(`spool segment ${seg.seq} committed after ${lastSeq}`)
    this.order.push({ seg, linesBefore: this.linesIndexed, bytesBefore: this.bytesIndexed })
    this.linesIndexed += seg.lines
    this.bytesIndexed += seg.bytes
    this.liveBytes += seg.bytes
    this.segments.set(seg.seq, seg)
  }

  /** Position in `order` of the first segment at or after `seq` (order.length if none). */
  private lowerBound(seq: number): number {
    let lo = this.head
    let hi = this.order.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (this.order[mid]!.seg.seq < seq) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Takes the first segment off the index (it is deleted). */
  removeFirst(): void {
    const { seg } = this.order[this.head]!
    this.head++
    this.liveBytes -= seg.bytes
    this.segments.delete(seg.seq)
    // Drop the deleted front now and then: amortised O(1) per segment.
    if (this.head > 1024 && this.head * 2 > this.order.length) {
      this.order = this.order.slice(this.head)
      this.head = 0
    }
  }

  /** The segments before `seq`, oldest first (those every consumer has passed). */
  before(seq: number): Segment[] {
    const out: Segment[] = []
    for (let i = this.head; i < this.order.length && this.order[i]!.seg.seq < seq; i++) out.push(this.order[i]!.seg)
    return out
  }

  /** The numbers of the segments on disk, ascending. */
  seqs(): number[] {
    const out: number[] = []
    for (let i = this.head; i < this.order.length; i++) out.push(this.order[i]!.seg.seq)
    return out
  }

  /** Bytes of the segments on disk. */
  bytes(): number {
    return this.liveBytes
  }

  /** The first segment at or after `seq`, or null. */
  next(seq: number): Segment | null {
    return this.segments.get(seq) ?? this.order[this.lowerBound(seq)]?.seg ?? null
  }

  /** What is left from checkpoint {seq, index} on. */
  backlog(cp: { seq: number, index: number }): { lines: number, bytes: number, segments: number, oldestAt: number | null } {
    const at = this.lowerBound(cp.seq)
    const first = this.order[at]
    if (!first) return { lines: 0, bytes: 0, segments: 0, oldestAt: null }
    const done = first.seg.seq === cp.seq ? Math.min(cp.index, first.seg.lines) : 0
    return {
      lines: this.linesIndexed - first.linesBefore - done,
      bytes: this.bytesIndexed - first.bytesBefore,
      segments: this.order.length - at,
      oldestAt: first.seg.committedAt
    }
  }
}
