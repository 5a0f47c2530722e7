// Consumers' checkpoints on disk, written in groups: checkpoints/<consumer>.json.
//
// Invariants
// - A checkpoint file holds either its old or its new content after any crash (written to a
//   .tmp, fsync'd, renamed); the directory's fsync after a group of renames makes them durable.
// - durable(consumer) is what a restart would find. Segments are deleted only below every
//   consumer's durable checkpoint (spool.ts), never below a position held only in memory: a
//   replay from the durable checkpoint must find every segment it needs.
// - save() is durable when it resolves. defer() lets a checkpoint lag by at most intervalMs: it
//   is written with whatever else is pending then (every consumer's, one file each, one directory
//   fsync for all), and with stop. A consumer only defers when its destination resumes exactly
//   from an older checkpoint (the files cut back to the checkpointed size; Elasticsearch and
//   OpenSearch recognise a line by its _id): a crash then replays at most that lag, which the
//   destination takes without a duplicate. Destinations that cannot (Splunk HEC, Kafka) save.
// - A checkpoint file that exists but cannot be read stops the start (SpoolStateUnreadable).
import { join } from 'node:path'
import type { Logger } from 'pino'
import { SpoolStateUnreadable } from '../errors.js'
import { errorCode } from './disk-guard.js'
import { fsyncDir, replaceFile, type SpoolFs } from './fs.js'
import { Rerun } from './rerun.js'

export interface Checkpoint {
  readonly seq: number
  readonly index: number
  readonly state?: unknown
}

export const DEFAULT_CHECKPOINT_INTERVAL_MS = 1000

interface Pending {
  readonly cp: Checkpoint
  readonly durable: Array<() => void>
}

export class CheckpointStore {
  private readonly written = new Map<string, Checkpoint>()
  private pending = new Map<string, Pending>()
  private timer: NodeJS.Timeout | null = null
  private readonly writing = new Rerun(() => this.writeGroup(), () => this.pending.size > 0)

  constructor (
    private readonly dir: string,
    private readonly fs: SpoolFs,
    private readonly log: Logger,
    private readonly intervalMs: number,
    /** After each group written: the spool deletes what every durable checkpoint has passed. */
    private readonly onWritten: () => void,
    private readonly onWriteError: (err: unknown) => void
  ) {}

  async load(consumer: string): Promise<Checkpoint> {
    const path = join(this.dir, `${consumer}.json`)
    let cp: Checkpoint = { seq: 0, index: 0 }
    let text: string | null = null
    try {
      text = await this.fs.readFile(path, 'utf8')
    } catch (err) {
      // Absent: a destination that never delivered anything starts at the beginning. Unreadable:
      // "start from 0" would deliver everything spooled again, so the start is refused instead.
      if (errorCode(err) !== 'ENOENT') throw new SpoolStateUnreadable(path, errorCode(err) ?? 'error', (err as Error).message)
    }
    if (text !== null) {
      let parsed: Partial<Checkpoint> | null = null
      try { parsed = JSON.parse(text) as Partial<Checkpoint> } catch {}
      if (!parsed || !Number.isSafeInteger(parsed.seq) || !Number.isSafeInteger(parsed.index) || parsed.seq! < 0 || parsed.index! < 0) {
        throw new SpoolStateUnreadable(path, 'not a checkpoint', `${JSON.stringify(text.slice(0, 80))}; delete it to make "${consumer}" deliver every spooled batch again`)
      }
      cp = parsed as Checkpoint
    }
    this.written.set(consumer, cp)
    return cp
  }

  /** What a restart would find for `consumer` (loaded or written since). */
  durable(consumer: string): Checkpoint | undefined {
    return this.written.get(consumer)
  }

  /** Writes `cp` now, with whatever else is pending; resolves once it is durable. */
  save(consumer: string, cp: Checkpoint): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.add(consumer, cp, resolve)
      this.write().then(() => { if (this.pending.get(consumer)?.cp === cp) reject(new Error('checkpoint not written')) }, reject)
    })
  }

  /** Writes `cp` within intervalMs; `onDurable` once it is. A later checkpoint of the consumer replaces it. */
  defer(consumer: string, cp: Checkpoint, onDurable?: () => void): void {
    this.add(consumer, cp, onDurable)
    this.schedule()
  }

  /** A group write within intervalMs, unless one is already due. */
  private schedule(): void {
    if (this.timer) return
    this.timer = setTimeout(() => { this.timer = null; void this.write().catch(() => {}) }, this.intervalMs)
    this.timer.unref()
  }

  /** Writes everything pending now (a stop). */
  async flush(): Promise<void> {
    if (this.timer) { clearTimeout(this.timer); this.timer = null }
    await this.write()
    if (this.pending.size > 0) await this.write()
  }

  private add(consumer: string, cp: Checkpoint, onDurable?: () => void): void {
    const before = this.pending.get(consumer)
    // The callbacks of a replaced checkpoint run when the newer one is durable: it covers theirs.
    const durable = before ? before.durable : []
    if (onDurable) durable.push(onDurable)
    this.pending.set(consumer, { cp, durable })
  }

  /** One group: what is pending now. A request during a group makes another run after it. */
  private write(): Promise<void> {
    return this.writing.run()
  }

  private async writeGroup(): Promise<void> {
    if (this.pending.size === 0) return
    const group = this.pending
    this.pending = new Map()
    try {
      for (const [consumer, { cp }] of group) await replaceFile(this.fs, join(this.dir, `${consumer}.json`), JSON.stringify(cp))
      // One directory fsync for the group: what grouping the checkpoints saves.
      await fsyncDir(this.fs, this.dir)
    } catch (err) {
      this.onWriteError(err)
      // Not known durable: pending again, unless a newer one came meanwhile (it is written next).
      for (const [consumer, p] of group) {
        const newer = this.pending.get(consumer)
        this.pending.set(consumer, newer ? { cp: newer.cp, durable: [...p.durable, ...newer.durable] } : p)
      }
      this.log.error({ err: { message: (err as Error).message } }, 'Could not write destination checkpoints; retrying.')
      if (this.pending.size > 0) this.schedule()
      throw err
    }
    for (const [consumer, { cp, durable }] of group) {
      this.written.set(consumer, cp)
      for (const f of durable) f()
    }
    this.onWritten()
  }
}
