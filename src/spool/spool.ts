// The durable spool: accept-then-forward.
//
// Invariants
// - A batch is answered 200 only after its segment is fsync'd and renamed into segments/ and
//   that directory is fsync'd: from then on it survives kill -9 and power loss.
// - Staging files (requests in flight) mean nothing after a restart and are deleted at start.
// - Every consumer (sink) has a durable checkpoint {seq, index}: all segments before `seq`, and
//   the first `index` lines of segment `seq`, are delivered. Replay starts there.
// - A segment is deleted only when every consumer's checkpoint is past it; its digest moves to
//   digests.log first, so a re-send of that batch is still recognised.
// - Nothing between the 200 and a consumer's acknowledgement lives only in memory: the index of
//   segments here is rebuilt from file names at start.
//
// Layout under DATA_DIR/spool: staging/, segments/<seq>.<dataset>.<lines>.<digest>.seg,
// checkpoints/<consumer>.json, digests.log. Segment format: format.ts.
import { appendFile, mkdir, open, readFile, readdir, rename, rm, stat, statfs, truncate } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { StagedFile, ndjson } from './staged-file.js'
import { frame, readRecords, TornSegment, type SegmentHeader } from './format.js'
import type { DeadLetter } from './dead-letter.js'

export interface SpoolOptions {
  readonly dir: string
  readonly highWatermarkBytes: number
  readonly lowWatermarkBytes: number
  readonly minFreeBytes: number
  readonly dedupeSeconds: number
  readonly log: Logger
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

export interface Checkpoint {
  readonly seq: number
  readonly index: number
  readonly state?: unknown
}

const SEGMENT_NAME = /^(\d{12})\.([a-z0-9_]+)\.(\d+)\.([A-Za-z0-9_-]+)\.seg$/

async function fsyncDir(dir: string): Promise<void> {
  const d = await open(dir, 'r')
  try { await d.sync() } finally { await d.close() }
}

/** Writes a small file so that a crash leaves either the old or the new content, never a mix. */
export async function writeAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
  await fsyncDir(join(path, '..'))
}

interface PendingCommit {
  readonly batch: SpoolBatch
  readonly digest: string
  resolve(result: CommitOutcome): void
  reject(err: unknown): void
}

export type CommitOutcome = { duplicate: false, seq: number } | { duplicate: true }

export class Spool {
  readonly segmentsDir: string
  readonly stagingDir: string
  readonly checkpointsDir: string
  private readonly digestsPath: string
  private readonly segments = new Map<number, Segment>()
  private readonly digests = new Map<string, number>() // dataset:digest -> accepted at (ms)
  private nextSeq = 1
  private stagingSeq = 0
  private queue: PendingCommit[] = []
  private flushing: Promise<void> | null = null
  private waiters: Array<() => void> = []
  private full = false
  private freeBytes = Infinity
  private readonly consumers = new Map<string, Checkpoint>()

  constructor (readonly opts: SpoolOptions) {
    this.segmentsDir = join(opts.dir, 'segments')
    this.stagingDir = join(opts.dir, 'staging')
    this.checkpointsDir = join(opts.dir, 'checkpoints')
    this.digestsPath = join(opts.dir, 'digests.log')
  }

  async init(): Promise<void> {
    for (const d of [this.segmentsDir, this.stagingDir, this.checkpointsDir]) await mkdir(d, { recursive: true })
    for (const f of await readdir(this.stagingDir)) await rm(join(this.stagingDir, f), { force: true })
    for (const f of await readdir(this.segmentsDir)) {
      const m = SEGMENT_NAME.exec(f)
      if (!m) {
        if (f.endsWith('.tmp')) await rm(join(this.segmentsDir, f), { force: true })
        continue
      }
      const path = join(this.segmentsDir, f)
      const st = await stat(path)
      const seg: Segment = { seq: Number(m[1]), dataset: m[2]!, lines: Number(m[3]), digest: m[4]!, bytes: st.size, path, committedAt: st.mtimeMs }
      this.segments.set(seg.seq, seg)
      this.digests.set(`${seg.dataset}:${seg.digest}`, seg.committedAt)
      this.nextSeq = Math.max(this.nextSeq, seg.seq + 1)
    }
    await this.loadDigests()
    await this.refreshDisk()
  }

  /** Digests of delivered (deleted) segments, kept for the dedupe window; compacted at start. */
  private async loadDigests(): Promise<void> {
    let text = ''
    try { text = await readFile(this.digestsPath, 'utf8') } catch {}
    const horizon = Date.now() - this.opts.dedupeSeconds * 1000
    const kept: string[] = []
    for (const line of text.split('\n')) {
      const [key, at, seq] = line.split(' ')
      if (!key || !at) continue
      this.nextSeq = Math.max(this.nextSeq, Number(seq ?? 0) + 1)
      if (Number(at) >= horizon) {
        this.digests.set(key, Number(at))
        kept.push(line)
      }
    }
    // The highest sequence number must survive even when every segment is gone.
    kept.push(`_seq ${Date.now()} ${this.nextSeq - 1}`)
    await writeAtomic(this.digestsPath, kept.join('\n') + '\n')
    this.digestLines = kept.length
  }

  private digestLines = 0

  /** Every digest still in the window (those of the segments being deleted among them). */
  private async compactDigests(): Promise<void> {
    this.pruneDigests()
    const lines = [...this.digests].map(([key, at]) => `${key} ${at} 0`)
    lines.push(`_seq ${Date.now()} ${this.nextSeq - 1}`)
    await writeAtomic(this.digestsPath, lines.join('\n') + '\n')
    this.digestLines = lines.length
  }

  // --- writing -------------------------------------------------------------

  async open(dataset: string, requestId: string): Promise<SpoolBatch> {
    const path = join(this.stagingDir, `${process.pid}-${++this.stagingSeq}.${dataset}.staging`)
    const events = await StagedFile.create(path, frame)
    events.writeLine(JSON.stringify({ v: 1, dataset, requestId, receivedAt: new Date().toISOString() } satisfies SegmentHeader))
    events.lines = 0 // the header is not a line
    return new SpoolBatch(this, dataset, requestId, path, events)
  }

  isDuplicate(dataset: string, digest: string): boolean {
    // A window of 0 turns re-send detection off (benchmarks send one body many times).
    if (this.opts.dedupeSeconds === 0) return false
    const at = this.digests.get(`${dataset}:${digest}`)
    return at !== undefined && at >= Date.now() - this.opts.dedupeSeconds * 1000
  }

  /**
   * Makes a sealed batch durable. Concurrent commits are renamed together and share one fsync
   * of the segments directory (group commit); each batch's own file was fsync'd by its request.
   */
  commit(batch: SpoolBatch, digest: string): Promise<CommitOutcome> {
    return new Promise((resolve, reject) => {
      this.queue.push({ batch, digest, resolve, reject })
      this.flushing ??= this.flush().finally(() => { this.flushing = null })
    })
  }

  private async flush(): Promise<void> {
    while (this.queue.length > 0) {
      const group = this.queue
      this.queue = []
      const done: Array<[PendingCommit, CommitOutcome]> = []
      const added: Segment[] = []
      try {
        for (const c of group) {
          const key = `${c.batch.dataset}:${c.digest}`
          // The same body committed twice (a re-send that raced its original): keep one.
          if (this.isDuplicate(c.batch.dataset, c.digest)) {
            await c.batch.discard()
            done.push([c, { duplicate: true }])
            continue
          }
          const seq = this.nextSeq++
          const name = `${String(seq).padStart(12, '0')}.${c.batch.dataset}.${c.batch.lines}.${c.digest}.seg`
          const path = join(this.segmentsDir, name)
          await rename(c.batch.path, path)
          this.digests.set(key, Date.now())
          const seg: Segment = { seq, dataset: c.batch.dataset, lines: c.batch.lines, digest: c.digest, bytes: c.batch.bytes, path, committedAt: Date.now() }
          done.push([c, { duplicate: false, seq }])
          added.push(seg)
        }
        await fsyncDir(this.segmentsDir)
      } catch (err) {
        // Not durable, not answered: a re-send of these bodies must not look like a duplicate.
        for (const seg of added) this.digests.delete(`${seg.dataset}:${seg.digest}`)
        for (const c of group) c.reject(err)
        continue
      }
      // Forwarders see a segment only once its name is durable: a consumer must never checkpoint
      // past a segment that a power loss could still take back (and whose number would be reused).
      for (const seg of added) this.segments.set(seg.seq, seg)
      this.pruneDigests()
      for (const [c, outcome] of done) c.resolve(outcome)
      this.updateWatermark()
      for (const w of this.waiters.splice(0)) w()
    }
  }

  // --- accepting -----------------------------------------------------------

  /** Why new batches are refused now, or null. High/low watermarks give hysteresis. */
  refusal(): string | null {
    if (this.freeBytes < this.opts.minFreeBytes) return `the disk is nearly full (${this.freeBytes} bytes free, SPOOL_MIN_FREE_BYTES=${this.opts.minFreeBytes})`
    if (this.full) return `the spool holds more than SPOOL_HIGH_WATERMARK_BYTES=${this.opts.highWatermarkBytes} bytes not yet delivered; it accepts again below ${this.opts.lowWatermarkBytes}`
    return null
  }

  async refreshDisk(): Promise<void> {
    try {
      const s = await statfs(this.opts.dir)
      this.freeBytes = s.bavail * s.bsize
    } catch {
      this.freeBytes = Infinity
    }
  }

  private updateWatermark(): void {
    const bytes = this.bytes()
    if (!this.full && bytes > this.opts.highWatermarkBytes) {
      this.full = true
      this.opts.log.warn({ spoolBytes: bytes, highWatermarkBytes: this.opts.highWatermarkBytes }, 'Spool above its high watermark: refusing new batches with 503 until it drains.')
    } else if (this.full && bytes < this.opts.lowWatermarkBytes) {
      this.full = false
      this.opts.log.info({ spoolBytes: bytes, lowWatermarkBytes: this.opts.lowWatermarkBytes }, 'Spool below its low watermark: accepting batches again.')
    }
  }

  bytes(): number {
    let n = 0
    for (const s of this.segments.values()) n += s.bytes
    return n
  }

  // --- reading -------------------------------------------------------------

  /** The first committed segment at or after `seq`, or null. */
  next(seq: number): Segment | null {
    let best: Segment | null = null
    for (const s of this.segments.values()) if (s.seq >= seq && (!best || s.seq < best.seq)) best = s
    return best
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
   * The lines of a segment from line `from` on. A damaged record ends the segment there: what
   * follows it is unreadable, so the file is cut to its whole records and the loss is logged.
   */
  async * lines(seg: Segment, from: number): AsyncGenerator<string> {
    for await (const payload of this.payloads(seg, from)) yield payload.toString('utf8')
  }

  /** As lines(), without decoding: each payload is a view into a read buffer, valid until the next. */
  async * payloads(seg: Segment, from: number): AsyncGenerator<Buffer> {
    try {
      for await (const r of readRecords(seg.path, from + 1)) yield r.payload
    } catch (err) {
      if (!(err instanceof TornSegment)) throw err
      this.opts.log.error({ segment: seg.path, goodRecords: err.goodRecords, expectedLines: seg.lines }, 'Damaged spool segment: truncated to its whole records.')
      await truncate(seg.path, err.goodBytes)
    }
  }

  // --- consumers -----------------------------------------------------------

  /** Names every consumer: no segment is deleted until all of them have loaded their checkpoints. */
  expectConsumers(names: readonly string[]): void {
    this.expected = new Set(names)
  }

  private expected = new Set<string>()

  async loadCheckpoint(consumer: string): Promise<Checkpoint> {
    let cp: Checkpoint = { seq: 0, index: 0 }
    try { cp = JSON.parse(await readFile(join(this.checkpointsDir, `${consumer}.json`), 'utf8')) as Checkpoint } catch {}
    this.consumers.set(consumer, cp)
    // A number a consumer has passed is never given to a new segment, even if the segment
    // that had it is gone.
    this.nextSeq = Math.max(this.nextSeq, cp.seq)
    return cp
  }

  async saveCheckpoint(consumer: string, cp: Checkpoint): Promise<void> {
    await writeAtomic(join(this.checkpointsDir, `${consumer}.json`), JSON.stringify(cp))
    this.consumers.set(consumer, cp)
    // Deleting delivered segments is housekeeping: its failure must not look like a failed save.
    await this.collect().catch((err: unknown) => this.opts.log.error({ err }, 'Could not delete delivered spool segments; will try again.'))
  }

  /** Forgets re-send digests older than the window (the Map keeps insertion order, oldest first). */
  private pruneDigests(): void {
    const horizon = Date.now() - this.opts.dedupeSeconds * 1000
    for (const [key, at] of this.digests) {
      if (at >= horizon) break
      this.digests.delete(key)
    }
  }

  /** What a consumer still has to deliver. */
  backlog(consumer: string): { lines: number, bytes: number, segments: number, oldestAt: number | null } {
    const cp = this.consumers.get(consumer) ?? { seq: 0, index: 0 }
    let lines = 0
    let bytes = 0
    let segments = 0
    let oldestAt: number | null = null
    for (const s of this.segments.values()) {
      if (s.seq < cp.seq) continue
      segments++
      lines += s.seq === cp.seq ? Math.max(0, s.lines - cp.index) : s.lines
      bytes += s.bytes
      oldestAt = oldestAt === null ? s.committedAt : Math.min(oldestAt, s.committedAt)
    }
    return { lines, bytes, segments, oldestAt }
  }

  private collecting: Promise<void> | null = null

  /** Deletes segments every consumer is past; their digests go to digests.log first. */
  private collect(): Promise<void> {
    this.collecting ??= (async () => {
      if (this.consumers.size === 0) return
      for (const name of this.expected) if (!this.consumers.has(name)) return
      const min = Math.min(...[...this.consumers.values()].map((c) => c.seq))
      const done = [...this.segments.values()].filter((s) => s.seq < min).sort((a, b) => a.seq - b.seq)
      if (done.length === 0) return
      if (this.digestLines > 2 * this.digests.size + 10_000) {
        // The log only grows; rewrite it with what the window still holds (and the last number).
        await this.compactDigests()
      } else {
        await appendFile(this.digestsPath, done.map((s) => `${s.dataset}:${s.digest} ${s.committedAt} ${s.seq}\n`).join(''))
        const fh = await open(this.digestsPath, 'r')
        try { await fh.sync() } finally { await fh.close() }
        this.digestLines += done.length
      }
      for (const s of done) {
        await rm(s.path, { force: true })
        this.segments.delete(s.seq)
      }
      this.updateWatermark()
    })().finally(() => { this.collecting = null })
    return this.collecting
  }
}

/** A request's batch on its way into the spool: valid lines framed into a staging segment. */
export class SpoolBatch {
  private deadLetters: StagedFile | null = null

  constructor (
    private readonly spool: Spool,
    readonly dataset: string,
    readonly requestId: string,
    readonly path: string,
    private readonly events: StagedFile
  ) {}

  get lines(): number { return this.events.lines }
  get bytes(): number { return this.events.bytes }

  writeEvent(line: string): boolean {
    return this.events.writeLine(line)
  }

  /** Records framed elsewhere (format.ts), holding `lines` lines. False: await drain() before more. */
  writeFramed(data: Buffer, lines: number): boolean {
    return this.events.writeRaw(data, lines)
  }

  drain(): Promise<void> {
    return this.events.drain()
  }

  async writeDeadLetter(record: DeadLetter): Promise<void> {
    this.deadLetters ??= await StagedFile.create(`${this.path}.dead-letter`, ndjson)
    if (!this.deadLetters.writeLine(JSON.stringify(record))) await this.deadLetters.drain()
  }

  /** fsyncs the staged files; returns the dead letters' file, if any, for the caller to store. */
  async seal(): Promise<{ deadLetterPath: string | null, deadLetters: number }> {
    await this.events.seal()
    if (this.deadLetters) await this.deadLetters.seal()
    return { deadLetterPath: this.deadLetters?.path ?? null, deadLetters: this.deadLetters?.lines ?? 0 }
  }

  commit(digest: string): Promise<CommitOutcome> {
    return this.spool.commit(this, digest)
  }

  async discard(): Promise<void> {
    await this.events.discard()
    if (this.deadLetters) await this.deadLetters.discard()
  }

  async releaseDeadLetters(): Promise<void> {
    if (this.deadLetters) await rm(this.deadLetters.path, { force: true })
  }
}

