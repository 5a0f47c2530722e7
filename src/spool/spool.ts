// The durable spool: accept-then-forward. This file holds the group commit, the consumers and
// the clean-up; its parts, each with its own invariants at its top:
// segment-index.ts (committed segments in order), commit-record.ts (which numbers were
// committed), checkpoints.ts (consumers' checkpoints, written in groups), resend-index.ts
// (re-send detection), disk-guard.ts (free space), damage.ts (damaged segments), segment-reader.ts
// (reading them), format.ts (segment format), batch.ts and staged-file.ts (a request's batch).
//
// Invariants (what is durable when)
// - A batch is answered 200 only after its segment is fsync'd and renamed into segments/ and
//   that directory is fsync'd: from then on it survives kill -9 and power loss.
// - Staging files (requests in flight) mean nothing after a restart and are deleted at start.
// - Every consumer (sink) has a durable checkpoint {seq, index}: all segments before `seq`, and
//   the first `index` lines of segment `seq`, are delivered. Replay starts there. No new segment
//   gets a number a checkpoint has passed or partly delivered.
// - A segment is deleted only when every consumer's written (durable) checkpoint is past it; its
//   re-send key is recorded durably first, so a re-send of that batch is still recognised.
// - Nothing between the 200 and a consumer's acknowledgement lives only in memory: the index of
//   segments is rebuilt from file names at start.
// - A body's digest counts as "already stored" only once its segment is durable; a re-send that
//   arrives while the original is being committed waits for that commit. A failed commit leaves
//   no segment (and a copy a crash brings back is dropped at start), so a batch answered with an
//   error is stored at most once, whether or not it is sent again.
// - State files that exist but cannot be read stop the start; damaged bytes are never deleted.
// - Segment numbers are dense and the highest committed is durable with each group commit
//   (commit-record.ts): a committed segment that is gone at start is reported, never skipped silently.
//
// Layout under DATA_DIR/spool: staging/, segments/<seq>.<dataset>.<lines>.b<bytes>.<digest>.seg,
// segments/committed.<since>-<high> and <from>-<to>.hole (commit-record.ts),
// checkpoints/<consumer>.json, resend/, damaged/.
import { join } from 'node:path'
import type { Logger } from 'pino'
import { SpoolDiskUnknown } from '../errors.js'
import { StagedFile } from './staged-file.js'
import { SpoolBatch } from './batch.js'
import { encodeBlocks, frameRecord, readSegmentHeader, SEGMENT_VERSION, type SegmentHeader } from './format.js'
import { linesOf, type DeliveryBatch, type LineBlock } from '../delivery.js'
import { fsyncDir, realFs, replaceFile, type SpoolFs } from './fs.js'
import { ResendIndex } from './resend-index.js'
import { DiskGuard, errorCode } from './disk-guard.js'
import { DamageKeeper, type DamagedSegment } from './damage.js'
import { SegmentIndex } from './segment-index.js'
import { SegmentReader } from './segment-reader.js'
import { CommitRecord, type MissingRange } from './commit-record.js'
import { CheckpointStore, DEFAULT_CHECKPOINT_INTERVAL_MS, type Checkpoint } from './checkpoints.js'
import { Rerun } from './rerun.js'

export const DEFAULT_DEDUPE_MAX_ENTRIES = 6_000_000

export interface SpoolOptions {
  readonly dir: string
  readonly highWatermarkBytes: number
  readonly lowWatermarkBytes: number
  readonly minFreeBytes: number
  readonly dedupeSeconds: number
  /** Most re-send keys kept (memory: ~27 bytes each at most); past it the window is shortened. */
  readonly dedupeMaxEntries?: number
  readonly log: Logger
  /** The file system; node:fs/promises unless a test injects faults. */
  readonly fs?: SpoolFs
  /** Longest a group commit waits for batches whose staging fsync is under way, ms (SPOOL_GROUP_COMMIT_WAIT_MS). */
  readonly groupCommitWaitMs?: number
  /** Longest a deferred checkpoint waits to be written with others, ms (SPOOL_CHECKPOINT_INTERVAL_MS). */
  readonly checkpointIntervalMs?: number
}

export interface Segment {
  readonly seq: number
  readonly dataset: string
  readonly lines: number
  readonly digest: string
  readonly bytes: number
  readonly path: string
  readonly committedAt: number
}

export type { DamagedSegment } from './damage.js'
export { SpoolBatch } from './batch.js'

export type { Checkpoint } from './checkpoints.js'

// <seq>.<dataset>.<lines>.b<bytes>.<digest>.seg: the committed line count and length are in the
// name, durable with the rename, so that a segment found shorter (or empty) is known as damage.
// Names of earlier releases have no b<bytes>.
const SEGMENT_NAME = /^(\d{12})\.([a-z0-9_]+)\.(\d+)\.(?:b(\d+)\.)?([A-Za-z0-9_-]+)\.seg$/
/** Writes a small file so that a crash leaves either the old or the new content, never a mix. */
export async function writeAtomic(path: string, content: string, fs: SpoolFs = realFs): Promise<void> {
  await replaceFile(fs, path, content)
  await fsyncDir(fs, join(path, '..'))
}

interface PendingCommit {
  readonly batch: SpoolBatch
  readonly digest: string
  resolve(result: CommitOutcome): void
  reject(err: unknown): void
}

/** seq 0: stored without a segment (a batch without lines). */
export type CommitOutcome = { duplicate: false, seq: number } | { duplicate: true }

export class Spool {
  readonly segmentsDir: string
  readonly stagingDir: string
  readonly checkpointsDir: string
  readonly fs: SpoolFs
  // Committed segments in sequence order (segment-index.ts).
  private readonly segs = new SegmentIndex()
  // Keys of durable batches only: a re-send is called a duplicate only when its original can no
  // longer be lost (resend-index.ts).
  private readonly resend: ResendIndex
  // dataset:digest -> the commit of that body in progress; a re-send waits for its outcome.
  private readonly committing = new Map<string, Promise<CommitOutcome>>()
  private nextSeq = 1
  private stagingSeq = 0
  private queue: PendingCommit[] = []
  private flushing: Promise<void> | null = null
  private waiters: Array<() => void> = []
  private full = false
  private readonly disk: DiskGuard
  private readonly damage: DamageKeeper
  private readonly consumers = new Map<string, Checkpoint>()
  // Which numbers were committed (commit-record.ts), and those found missing at start.
  private readonly record: CommitRecord
  private missing: MissingRange[] = []
  private readonly checkpoints: CheckpointStore
  private readonly reader: SegmentReader

  constructor (readonly opts: SpoolOptions) {
    this.fs = opts.fs ?? realFs
    this.segmentsDir = join(opts.dir, 'segments')
    this.stagingDir = join(opts.dir, 'staging')
    this.checkpointsDir = join(opts.dir, 'checkpoints')
    this.damage = new DamageKeeper(join(opts.dir, 'damaged'), this.fs, opts.log)
    this.record = new CommitRecord(this.segmentsDir, this.fs)
    this.reader = new SegmentReader(this.fs, this.damage)
    this.checkpoints = new CheckpointStore(this.checkpointsDir, this.fs, opts.log, opts.checkpointIntervalMs ?? DEFAULT_CHECKPOINT_INTERVAL_MS,
      // Deleting delivered segments is housekeeping: its failure must not look like a failed save.
      () => { this.collect().catch((err: unknown) => this.opts.log.error({ err }, 'Could not delete delivered spool segments; will try again.')) },
      (err) => this.noteWriteError(err))
    this.disk = new DiskGuard(opts.dir, opts.minFreeBytes, this.fs, opts.log)
    this.resend = new ResendIndex({ dir: opts.dir, windowSeconds: opts.dedupeSeconds, maxEntries: opts.dedupeMaxEntries ?? DEFAULT_DEDUPE_MAX_ENTRIES, fs: this.fs, log: opts.log })
  }

  async init(): Promise<void> {
    const { fs, log } = { fs: this.fs, log: this.opts.log }
    for (const d of [this.segmentsDir, this.stagingDir, this.checkpointsDir]) await fs.mkdir(d, { recursive: true })
    for (const f of await fs.readdir(this.stagingDir)) await fs.rm(join(this.stagingDir, f), { force: true })
    const found: Segment[] = []
    const names = await fs.readdir(this.segmentsDir)
    const recorded = this.record.load(names)
    for (const f of names) {
      if (CommitRecord.owns(f)) continue
      const m = SEGMENT_NAME.exec(f)
      if (!m) {
        if (f.endsWith('.tmp')) await fs.rm(join(this.segmentsDir, f), { force: true })
        continue
      }
      const path = join(this.segmentsDir, f)
      const st = await fs.stat(path)
      const committed = m[4] !== undefined ? Number(m[4]) : null
      if (committed !== null && st.size !== committed) {
        // Cut or emptied while the service was stopped (or by the disk): its bytes are kept aside,
        // what is still whole in it is delivered.
        await this.damage.note(path, [{ fromByte: Math.min(st.size, committed), toByte: Math.max(st.size, committed) }], Number(m[3]), null, st.size < committed ? `${st.size} bytes of the ${committed} committed` : `${st.size} bytes, ${committed} committed`)
      }
      found.push({ seq: Number(m[1]), dataset: m[2]!, lines: Number(m[3]), digest: m[5]!, bytes: st.size, path, committedAt: st.mtimeMs })
    }
    found.sort((a, b) => a.seq - b.seq)
    // Two segments of one body within the dedupe window: a commit that failed (its sender got an
    // error and sent again) whose segment still came back, e.g. its removal did not reach the
    // disk before a crash. Only the last can have been answered 200 and partly delivered: keep it.
    const window = this.opts.dedupeSeconds * 1000
    const last = new Map<string, Segment>()
    for (const seg of found) {
      if (window > 0) last.set(`${seg.dataset}:${seg.digest}`, seg)
    }
    for (const seg of found) {
      const kept = last.get(`${seg.dataset}:${seg.digest}`)
      if (kept && kept !== seg && kept.committedAt - seg.committedAt <= window) {
        log.warn({ segment: seg.path, kept: kept.path }, 'Removing a second copy of a batch left by a failed commit.')
        // Its number is not missing: a hole, durable with the fsync below.
        if (recorded) await this.record.hole(seg.seq, seg.seq)
        await fs.rm(seg.path, { force: true })
        continue
      }
      this.segs.add(seg)
      this.resend.add(seg.dataset, seg.digest, seg.committedAt)
      this.nextSeq = Math.max(this.nextSeq, seg.seq + 1)
    }
    await this.resend.load()
    // The highest number given out survives in the re-send records even when every segment is gone.
    this.nextSeq = Math.max(this.nextSeq, this.resend.maxSeq + 1)
    if (recorded) {
      // Numbers below `since` were passed by clean-up (commit-record.ts), and so were those at or
      // below the re-send records' highest (an earlier release's clean-up).
      const seqs = this.segs.seqs()
      // Renamed durably while the record's own rename was not (a power cut mid-commit).
      if ((seqs.at(-1) ?? 0) > this.record.high) await this.record.set(seqs.at(-1)!)
      this.missing = this.record.missing(seqs, this.resend.maxSeq)
      this.nextSeq = Math.max(this.nextSeq, this.record.high + 1)
      await this.record.dropHolesTo(Math.max(this.resend.maxSeq, this.record.since - 1))
    } else {
      if (this.segs.seqs().length > 0 || this.resend.maxSeq > 0) log.warn({ from: this.nextSeq }, 'No record of committed spool segments (the first start of this release on this volume): segments missing from before now cannot be detected; those committed from now on are.')
      await this.record.start(this.nextSeq)
    }
    // What a crashed process renamed into segments/ may not be durable yet, nor the record: it is
    // before anything is delivered from it.
    await fsyncDir(fs, this.segmentsDir)
    try {
      await this.disk.readFreeSpace()
    } catch (err) {
      if (this.opts.minFreeBytes > 0) throw new SpoolDiskUnknown(this.opts.dir, errorCode(err) ?? (err as Error).message)
    }
    // A spool that starts above its high watermark refuses from the first batch on.
    this.updateWatermark()
    if (this.opts.minFreeBytes === 0) log.warn('SPOOL_MIN_FREE_BYTES=0: no disk reserve; a full disk shows only when a write fails, and batches are then refused until space is free.')
  }

  // --- writing -------------------------------------------------------------

  async open(dataset: string, requestId: string, tenant?: string): Promise<SpoolBatch> {
    const path = join(this.stagingDir, `${process.pid}-${++this.stagingSeq}.${dataset}.staging`)
    const events = await StagedFile.create(path, encodeBlocks, this.fs).catch((err: unknown) => { this.noteWriteError(err); throw err })
    const header: SegmentHeader = { v: SEGMENT_VERSION, dataset, requestId, receivedAt: new Date().toISOString(), ...(tenant !== undefined ? { tenant } : {}) }
    events.writeRaw(frameRecord(Buffer.from(JSON.stringify(header))), 0) // the header is not a line
    return new SpoolBatch(this, dataset, requestId, path, events, tenant)
  }

  isDuplicate(dataset: string, digest: string): boolean {
    // A window of 0 turns re-send detection off (benchmarks send one body many times).
    if (this.opts.dedupeSeconds === 0) return false
    return this.resend.has(dataset, digest)
  }

  /**
   * Makes a sealed batch durable. Concurrent commits are renamed together and share one fsync
   * of the segments directory (group commit); each batch's own file was fsync'd by its request.
   * A body whose commit is in progress is not committed beside it: the re-send waits, and is a
   * duplicate if the first one is stored, or committed itself if the first one failed.
   */
  async commit(batch: SpoolBatch, digest: string): Promise<CommitOutcome> {
    const key = `${batch.dataset}:${digest}`
    const dedupe = this.opts.dedupeSeconds > 0
    if (dedupe) {
      for (let pending = this.committing.get(key); pending; pending = this.committing.get(key)) {
        if (await pending.then(() => true, () => false)) {
          await batch.discard()
          return { duplicate: true }
        }
      }
      if (this.isDuplicate(batch.dataset, digest)) {
        await batch.discard()
        return { duplicate: true }
      }
    }
    const outcome = batch.lines === 0
      ? this.commitEmpty(batch, digest)
      : new Promise<CommitOutcome>((resolve, reject) => {
        this.queue.push({ batch, digest, resolve, reject })
        this.flushing ??= this.flush().finally(() => { this.flushing = null })
      })
    if (dedupe) {
      this.committing.set(key, outcome)
      const forget = (): void => { if (this.committing.get(key) === outcome) this.committing.delete(key) }
      outcome.then(forget, forget)
    }
    return await outcome
  }

  /**
   * A batch without lines (an object or window with none, a batch whose every line was refused):
   * nothing to deliver, so no segment; only its re-send key, durably, so that it is still
   * recognised when sent or read again.
   */
  private async commitEmpty(batch: SpoolBatch, digest: string): Promise<CommitOutcome> {
    if (this.opts.dedupeSeconds > 0) {
      const committedAt = Date.now()
      await this.resend.record([{ dataset: batch.dataset, digest, committedAt, seq: 0 }]).catch((err: unknown) => { this.noteWriteError(err); throw err })
      this.resend.add(batch.dataset, digest, committedAt)
    }
    // Only its (empty) events file: the dead letters are the caller's to store once this returns.
    await batch.discardEvents()
    return { duplicate: false, seq: 0 }
  }

  // Batches whose staging files are being fsync'd: each commits right after.
  private readonly seals = new Set<Promise<void>>()

  sealing(seal: Promise<void>): void {
    this.seals.add(seal)
    const done = (): void => { this.seals.delete(seal) }
    seal.then(done, done)
  }

  /**
   * Before a group commit: batches whose staging fsync is under way now commit in a moment; their
   * commit joins this group when it waits for them (at most SPOOL_GROUP_COMMIT_WAIT_MS), so that
   * they share its directory fsync instead of each paying one.
   */
  private async gather(): Promise<void> {
    const wait = this.opts.groupCommitWaitMs ?? 0
    if (wait <= 0 || this.seals.size === 0) return
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      Promise.allSettled([...this.seals]),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, wait) })
    ])
    clearTimeout(timer)
    // Their commits are queued in the microtasks after their seal.
    await new Promise((resolve) => setImmediate(resolve))
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      await this.gather()
      const group = this.queue
      this.queue = []
      const renamed: Array<{ c: PendingCommit, seg: Segment }> = []
      const first = this.nextSeq
      const before = this.record.high
      let recordMoved = false
      try {
        for (const c of group) {
          const seq = this.nextSeq++
          const name = `${String(seq).padStart(12, '0')}.${c.batch.dataset}.${c.batch.lines}.b${c.batch.bytes}.${c.digest}.seg`
          const path = join(this.segmentsDir, name)
          await this.fs.rename(c.batch.path, path)
          renamed.push({ c, seg: { seq, dataset: c.batch.dataset, lines: c.batch.lines, digest: c.digest, bytes: c.batch.bytes, path, committedAt: Date.now() } })
        }
        // The record of committed numbers, durable with the same fsync (commit-record.ts).
        recordMoved = true
        await this.record.advance(first, this.nextSeq - 1)
        await fsyncDir(this.fs, this.segmentsDir)
      } catch (err) {
        this.noteWriteError(err)
        // Not durable, not answered: take the segments out again, so that the batch is neither
        // delivered after a restart nor stored twice when it is sent again. A copy that survives
        // anyway (this removal lost to a crash) is recognised at start by its digest.
        let whole = true
        for (const { seg } of renamed) {
          await this.fs.rm(seg.path, { force: true }).catch((rmErr: unknown) => {
            whole = false
            this.opts.log.error({ err: rmErr, segment: seg.path }, 'Could not remove the segment of a failed commit; it is removed at the next start if its batch is sent again.')
          })
        }
        if (recordMoved) await this.record.set(before).catch(() => { whole = false })
        // Numbers stay dense: given back when nothing of the group is left, a hole otherwise.
        if (whole) this.nextSeq = first
        else {
          await this.record.hole(first, this.nextSeq - 1).catch((holeErr: unknown) => this.opts.log.error({ err: holeErr, from: first, to: this.nextSeq - 1 }, 'Could not mark the numbers of a failed commit as unused; the next start reports them as missing segments.'))
        }
        for (const c of group) c.reject(err)
        continue
      }
      // Durable from here. Only now may a re-send be called a duplicate, and a forwarder see the
      // segment: a consumer must never checkpoint past a segment that a power loss could still
      // take back (and whose number would be reused).
      let bytes = 0
      for (const { c, seg } of renamed) {
        this.resend.add(seg.dataset, c.digest, seg.committedAt)
        this.segs.add(seg)
        bytes += seg.bytes
      }
      await this.refreshDisk(bytes)
      for (const { c, seg } of renamed) c.resolve({ duplicate: false, seq: seg.seq })
      this.updateWatermark()
      for (const w of this.waiters.splice(0)) w()
    }
  }

  // --- accepting -----------------------------------------------------------

  /** Why new batches are refused now, or null. High/low watermarks give hysteresis. */
  refusal(): string | null {
    const disk = this.disk.refusal()
    if (disk) return disk
    if (this.full) return `the spool holds more than SPOOL_HIGH_WATERMARK_BYTES=${this.opts.highWatermarkBytes} bytes not yet delivered; it accepts again below ${this.opts.lowWatermarkBytes}`
    return null
  }

  /** Reads the disk's free space again (disk-guard.ts); called on a timer and after every group commit. */
  refreshDisk(writtenBytes = 0): Promise<void> {
    return this.disk.refresh(writtenBytes)
  }

  /** A write of the spool failed: a full disk refuses batches (and fails /health) until space is free. */
  noteWriteError(err: unknown): void {
    this.disk.noteWriteError(err)
  }

  private updateWatermark(): void {
    const bytes = this.bytes()
    if (!this.full && bytes > this.opts.highWatermarkBytes) {
      this.full = true
      this.opts.log.warn({ spoolBytes: bytes, highWatermarkBytes: this.opts.highWatermarkBytes }, 'Spool above its high watermark: refusing new batches with 503 until it drains.')
    } else if (this.full && bytes <= this.opts.lowWatermarkBytes) {
      this.full = false
      this.opts.log.info({ spoolBytes: bytes, lowWatermarkBytes: this.opts.lowWatermarkBytes }, 'Spool below its low watermark: accepting batches again.')
    }
  }

  bytes(): number {
    return this.segs.bytes()
  }

  // --- reading -------------------------------------------------------------

  /** The first committed segment at or after `seq`, or null. */
  next(seq: number): Segment | null {
    return this.segs.next(seq)
  }

  /** Resolves when a new segment is committed (or the signal aborts). */
  waitForCommit(signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => { signal.removeEventListener('abort', done); resolve() }
      this.waiters.push(done)
      signal.addEventListener('abort', done, { once: true })
    })
  }

  /**
   * The lines of a segment from line `from` on. A damaged segment is kept whole (a copy in
   * damaged/), reported, and every intact block of it read (segment-reader.ts).
   */
  async * lines(seg: Segment, from: number): AsyncGenerator<string> {
    for await (const payload of this.payloads(seg, from)) yield payload.toString('utf8')
  }

  /** As lines(), without decoding: each payload is a view into a read buffer, valid until the next. */
  payloads(seg: Segment, from: number): AsyncGenerator<Buffer> {
    return linesOf(this.blocks(seg, from))
  }

  /** The tenant a segment's sender's token named (its header), undefined without one. */
  async tenantOf(seg: Segment): Promise<string | undefined> {
    return (await readSegmentHeader(seg.path, this.fs)).tenant
  }

  /** A segment from line `from` on, as a destination reads it. */
  batch(seg: Segment, from: number): DeliveryBatch {
    return {
      seq: seg.seq,
      dataset: seg.dataset,
      digest: seg.digest,
      from,
      count: seg.lines,
      lines: () => this.lines(seg, from),
      payloads: () => this.payloads(seg, from),
      blocks: () => this.blocks(seg, from)
    }
  }

  /** As lines(), many at a time, as stored (format.ts); damaged segments as segment-reader.ts reads them. */
  blocks(seg: Segment, from: number): AsyncGenerator<LineBlock> {
    return this.reader.blocks(seg, from)
  }

  /**
   * The segment's line number after a destination has read `count` lines of it from line `from`
   * (lines lost to damage keep their numbers: segment-reader.ts); what its checkpoints take.
   */
  indexAfter(seq: number, from: number, count: number): number {
    return this.reader.indexAfter(seq, from, count)
  }

  /** Damaged segments found since the start (their bytes are in damaged/), for /health and metrics. */
  damaged(): readonly DamagedSegment[] {
    return this.damage.list()
  }

  // --- consumers -----------------------------------------------------------

  /** Names every consumer: no segment is deleted until all of them have loaded their checkpoints. */
  expectConsumers(names: readonly string[]): void {
    this.expected = new Set(names)
  }

  private expected = new Set<string>()

  async loadCheckpoint(consumer: string): Promise<Checkpoint> {
    const cp = await this.checkpoints.load(consumer)
    this.consumers.set(consumer, cp)
    await this.reportMissing()
    // A number a consumer has passed is never given to a new segment, even if the segment
    // that had it is gone; nor one it has partly delivered (index > 0): a new segment with that
    // number would have its first `index` lines skipped.
    this.nextSeq = Math.max(this.nextSeq, cp.index > 0 ? cp.seq + 1 : cp.seq)
    return cp
  }

  /**
   * Once every consumer has its checkpoint: the committed segments found missing at start that
   * some consumer has not passed are damage, reported as such; its forwarder goes on with the
   * next segment. Those every consumer had passed were delivered: only logged.
   */
  private async reportMissing(): Promise<void> {
    if (this.missing.length === 0) return
    for (const name of this.expected) if (!this.consumers.has(name)) return
    let min = Infinity
    for (const c of this.consumers.values()) min = Math.min(min, c.seq)
    const missing = this.missing
    this.missing = []
    for (const r of missing) {
      if (r.to < min) {
        this.opts.log.info({ from: r.from, to: r.to }, 'Spool segments every destination had delivered are gone before their clean-up.')
        continue
      }
      await this.damage.noteMissing(r.from, r.to)
    }
  }

  /** Writes a consumer's checkpoint; durable when this resolves (checkpoints.ts). */
  async saveCheckpoint(consumer: string, cp: Checkpoint): Promise<void> {
    this.consumers.set(consumer, cp)
    await this.checkpoints.save(consumer, cp)
    await this.collect().catch((err: unknown) => this.opts.log.error({ err }, 'Could not delete delivered spool segments; will try again.'))
  }

  /**
   * A consumer's new position, written within SPOOL_CHECKPOINT_INTERVAL_MS with the others
   * (checkpoints.ts says for which destinations that is safe); `onDurable` once it is written.
   */
  deferCheckpoint(consumer: string, cp: Checkpoint, onDurable?: () => void): void {
    this.consumers.set(consumer, cp)
    this.checkpoints.defer(consumer, cp, onDurable)
    // A spool refusing batches frees space only by deleting what every durable checkpoint has
    // passed: waiting out the interval would keep answering 503 with nothing left to deliver.
    if (this.full) this.checkpoints.flush().catch(() => {}) // a failure is logged and retried there
  }

  /**
   * A consumer passed segments of datasets it does not take: no write of its own (two fsyncs per
   * skipped segment before); the position goes out with the next group of checkpoints, so that
   * clean-up, which waits for durable checkpoints, gets past them. After a crash the consumer
   * skips them again.
   */
  skipTo(consumer: string, cp: Checkpoint): void {
    this.deferCheckpoint(consumer, cp)
  }

  /** Writes every checkpoint still pending (a stop). */
  async flushCheckpoints(): Promise<void> {
    await this.checkpoints.flush()
    await this.collect().catch((err: unknown) => this.opts.log.error({ err }, 'Could not delete delivered spool segments; will try again.'))
  }

  /** What a consumer still has to deliver. */
  backlog(consumer: string): { lines: number, bytes: number, segments: number, oldestAt: number | null } {
    return this.segs.backlog(this.consumers.get(consumer) ?? { seq: 0, index: 0 })
  }

  private readonly collecting = new Rerun(() => this.collectOnce())

  /**
   * Deletes segments every consumer is past; their re-send keys are recorded durably first.
   * A request that arrives during a clean-up makes it run once more when done (with the bounds
   * of then), and waits for that: folded into the one under way, its newer checkpoint would be
   * ignored and the segments it passed left on disk.
   */
  private collect(): Promise<void> {
    return this.collecting.run()
  }

  private async collectOnce(): Promise<void> {
    if (this.consumers.size === 0) return
    for (const name of this.expected) if (!this.consumers.has(name)) return
    // Durable checkpoints only: a replay after a crash starts there and needs what follows.
    let min = Infinity
    for (const name of this.consumers.keys()) min = Math.min(min, this.checkpoints.durable(name)?.seq ?? 0)
    const done = this.segs.before(min)
    if (done.length === 0) return
    // With re-send detection off (a window of 0) no key is ever looked up: none is recorded.
    if (this.opts.dedupeSeconds > 0) await this.resend.record(done)
    await this.record.raiseSince(min)
    for (const s of done) {
      await this.fs.rm(s.path, { force: true })
      this.segs.removeFirst()
      this.reader.forget(s.seq)
    }
    this.updateWatermark()
  }
}
