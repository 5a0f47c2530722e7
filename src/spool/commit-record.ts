// The durable record of which segment numbers were committed, so that a segment deleted while the
// service was stopped (in the middle or at the end of the sequence) is found missing at start.
//
// The record is names in segments/, never file contents:
//   committed.<since>-<high>   every number in [since, high] was committed (one such name);
//   <from>-<to>.hole           numbers given out that hold no segment on purpose.
// Numbers are 12 digits. An empty file's name needs no fsync of its own: a name created or
// renamed in segments/ is durable with the fsync of that directory, which each group commit does
// anyway. So the record costs no fsync per batch (issue 20 item 5 wants fewer, not more). Why not
// a file, or the checkpoints: a file's content needs an fsync of its own per group commit, and a
// number folded into the checkpoints (written later, and less often) would lag the commits, so
// the segments committed since the last checkpoint write, the end of the sequence, could go
// missing unseen.
//
// Invariants
// - Sequence numbers are dense: a group commit takes the next numbers, and a failed one gives
//   them back (when its segments and the record are taken back whole); otherwise its numbers
//   become a hole. A gap in [since, high] that no hole names is a segment lost after its commit.
// - The record is renamed to the group's highest number after the segments' renames and before
//   the directory's fsync, so it is durable together with them: once a batch is answered 200,
//   its number is at or below `high` on disk. (Under a strict POSIX reading a power cut during
//   that fsync could keep the new name without a segment of that unanswered group: that segment
//   is then reported missing, a false report of a batch whose sender got no 200 and sends it
//   again; journaling file systems (ext4, xfs) commit the renames of one directory in order.)
// - Clean-up raises `since` past the numbers every durable checkpoint has passed, renamed before
//   it deletes their segments (raiseSince): only numbers from `since` on are checked.
// - A record name that does not parse stops the start (SpoolStateUnreadable), never a reset.
//   No record at all (the first start of this release on a volume, or a new volume) starts one
//   from the next number: only segments committed from then on are checked (logged).
import { join } from 'node:path'
import { SpoolStateUnreadable } from '../errors.js'
import type { SpoolFs } from './fs.js'

const RECORD = /^committed\.(\d{12})-(\d{12})$/
const HOLE = /^(\d{12})-(\d{12})\.hole$/
const pad = (n: number): string => String(n).padStart(12, '0')

/** Numbers [from, to] committed and missing. */
export interface MissingRange { readonly from: number, readonly to: number }

export class CommitRecord {
  since = 1
  high = 0
  private present = false
  private readonly holes: Array<{ from: number, to: number }> = []

  constructor (private readonly dir: string, private readonly fs: SpoolFs) {}

  /** Whether a name in segments/ is the record's (not a segment). */
  static owns(name: string): boolean {
    return name.startsWith('committed.') || name.endsWith('.hole')
  }

  /** Reads the record from the names of segments/. False: there was none. */
  load(names: readonly string[]): boolean {
    let best: { since: number, high: number } | null = null
    for (const name of names) {
      if (name.startsWith('committed.')) {
        const m = RECORD.exec(name)
        if (!m) throw new SpoolStateUnreadable(join(this.dir, name), 'not a commit record', 'the name must be committed.<12 digits>-<12 digits>; restore it, or delete it to stop checking for segments missing before this start')
        const r = { since: Number(m[1]), high: Number(m[2]) }
        // Two names: a crash between the creation of one and the removal of the other.
        if (!best || r.high > best.high) best = r
      } else if (name.endsWith('.hole')) {
        const m = HOLE.exec(name)
        if (!m) throw new SpoolStateUnreadable(join(this.dir, name), 'not a hole record', 'the name must be <12 digits>-<12 digits>.hole')
        this.holes.push({ from: Number(m[1]), to: Number(m[2]) })
      }
    }
    if (!best) return false
    this.since = best.since
    this.high = best.high
    this.present = true
    return true
  }

  /** Starts a record (no fsync: the caller's fsync of segments/ makes it durable). */
  async start(since: number, high = since - 1): Promise<void> {
    this.since = since
    this.high = high
    const fh = await this.fs.open(join(this.dir, this.name()), 'w', 0o600)
    await fh.close()
    this.present = true
  }

  private name(): string {
    return `committed.${pad(this.since)}-${pad(this.high)}`
  }

  /**
   * The numbers in (after, high] that no segment and no hole has: committed, then lost.
   * `found` is every segment number on disk, ascending.
   */
  missing(found: readonly number[], after: number): MissingRange[] {
    const from = Math.max(this.since, after + 1)
    const out: MissingRange[] = []
    let expect = from
    const gap = (to: number): void => {
      // A gap may be covered by holes in part: what they do not cover is missing.
      let at = expect
      for (const h of [...this.holes].sort((a, b) => a.from - b.from)) {
        if (h.to < at || h.from > to) continue
        if (h.from > at) out.push({ from: at, to: h.from - 1 })
        at = Math.max(at, h.to + 1)
      }
      if (at <= to) out.push({ from: at, to })
    }
    for (const seq of found) {
      if (seq < from) continue
      if (seq > this.high) break
      if (seq > expect) gap(seq - 1)
      expect = seq + 1
    }
    if (expect <= this.high) gap(this.high)
    return out
  }

  /**
   * Sets `high` for a group commit: renamed before the fsync of segments/, durable with it.
   * A jump over numbers nobody got (a checkpoint restored past the record) is marked a hole first.
   */
  async advance(first: number, high: number): Promise<void> {
    if (first > this.high + 1) await this.hole(this.high + 1, first - 1)
    await this.rename(high)
  }

  /** Sets `high` (a failed group's numbers given back; segments found past the record at start). */
  async set(high: number): Promise<void> {
    await this.rename(high)
  }

  /** Marks numbers that will never hold a segment (no fsync: the next one of segments/ makes it durable). */
  async hole(from: number, to: number): Promise<void> {
    const fh = await this.fs.open(join(this.dir, `${pad(from)}-${pad(to)}.hole`), 'w', 0o600)
    await fh.close()
    if (!this.holes.some((h) => h.from === from && h.to === to)) this.holes.push({ from, to })
  }

  /** Removes holes wholly at or below `upTo` (numbers clean-up has passed): housekeeping. */
  async dropHolesTo(upTo: number): Promise<void> {
    for (const h of [...this.holes]) {
      if (h.to > upTo) continue
      await this.fs.rm(join(this.dir, `${pad(h.from)}-${pad(h.to)}.hole`), { force: true })
      this.holes.splice(this.holes.indexOf(h), 1)
    }
  }

  /**
   * Clean-up passed every number below `since` (every durable checkpoint is past them): renamed
   * before the segments are deleted, with no fsync of its own; the deletions and the new name are
   * durable together at the next fsync of segments/ (a group commit's), and a crash before it
   * brings back the old name with the segments, which are deleted again.
   */
  async raiseSince(since: number): Promise<void> {
    await this.serial(async () => {
      const to = Math.min(since, this.high + 1)
      if (to > this.since) await this.move(to, this.high)
    })
  }

  private rename(high: number): Promise<void> {
    return this.serial(async () => { if (high !== this.high || !this.present) await this.move(this.since, high) })
  }

  // Group commits and clean-up rename the one name: one rename at a time, each from the name now.
  private chain: Promise<unknown> = Promise.resolve()

  private serial(op: () => Promise<void>): Promise<void> {
    const run = this.chain.then(op, op)
    this.chain = run.catch(() => {})
    return run
  }

  private async move(since: number, high: number): Promise<void> {
    if (!this.present) await this.start(this.since)
    await this.fs.rename(join(this.dir, this.name()), join(this.dir, `committed.${pad(since)}-${pad(high)}`))
    this.since = since
    this.high = high
  }
}
