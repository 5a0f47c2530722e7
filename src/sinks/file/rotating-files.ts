// Append-only NDJSON files, one active file per dataset, rotated by size or age; rotated files
// may be gzipped in the background. An append is whole or absent: a failed copy is truncated
// away, and every append is fsync'd before it resolves.
import { createReadStream } from 'node:fs'
import { mkdir, open, readdir, rm, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { exists, gzipFile } from './gzip.js'

export interface RotatingFilesOptions {
  readonly dir: string
  /** What the files hold, for their names: "events", "dead-letter". */
  readonly kind: string
  readonly rotateBytes: number
  readonly rotateMs: number
  readonly gzipRotated: boolean
  readonly log: Logger
}

interface ActiveFile {
  readonly fh: FileHandle
  readonly path: string
  size: number
  readonly openedAt: number
}

const COPY_CHUNK = 1024 * 1024

// One counter per process for the files' names: two RotatingFiles of one process on one folder
// (a service stopped and started again in the same process) must not pick the same name.
let sequence = 0

/** A UTC time for file names: sorts in time order and has no ':' (which some tools dislike). */
export function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
}

export class RotatingFiles {
  private readonly active = new Map<string, ActiveFile>()
  private readonly locks = new Map<string, Promise<unknown>>()
  private readonly compressions = new Set<Promise<void>>()
  /** The files being gzipped now. */
  private readonly gzipping = new Set<string>()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly opts: RotatingFilesOptions) {}

  /** Files left active by an earlier run count as rotated; half-written gzip files are redone. */
  async init(): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true })
    for (const dataset of await readdir(this.opts.dir)) {
      const dir = join(this.opts.dir, dataset)
      // All half-written gzip files first: one removed after its gzip restarted pulls the file
      // from under that gzip (ENOENT at every start).
      const names = await readdir(dir).catch(() => [] as string[])
      for (const f of names) if (f.endsWith('.gz.tmp')) await rm(join(dir, f), { force: true })
      for (const f of names) if (f.endsWith('.ndjson') && this.opts.gzipRotated) this.compress(join(dir, f))
    }
    // Age-based rotation must also happen when no more data comes.
    this.timer = setInterval(() => { this.rotateAged().catch((err) => this.opts.log.error({ err }, 'Rotation failed.')) }, Math.min(this.opts.rotateMs, 60_000))
    this.timer.unref()
  }

  /** Appends a file's content (a request's staged dead letters). */
  appendFile(dataset: string, path: string): Promise<void> {
    return this.append(dataset, createReadStream(path, { highWaterMark: COPY_CHUNK }) as AsyncIterable<Buffer>)
  }

  appendText(dataset: string, text: string): Promise<void> {
    return this.append(dataset, [Buffer.from(text)])
  }

  /** Whole or nothing: a failed append is cut off again, a finished one is fsync'd. */
  private append(dataset: string, chunks: AsyncIterable<Buffer> | Iterable<Buffer>): Promise<void> {
    return this.withLock(dataset, async () => {
      const file = await this.current(dataset)
      const before = file.size
      try {
        for await (const chunk of chunks) file.size += (await file.fh.write(chunk)).bytesWritten
        await file.fh.sync()
      } catch (err) {
        await file.fh.truncate(before).catch(() => {})
        file.size = before
        throw err
      }
    })
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await Promise.all([...this.locks.values()].map((p) => p.catch(() => {})))
    for (const [dataset, file] of this.active) {
      await file.fh.close()
      this.active.delete(dataset)
      if (this.opts.gzipRotated) this.compress(file.path)
    }
    await Promise.all(this.compressions)
  }

  private withLock<T>(dataset: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.locks.get(dataset) ?? Promise.resolve()
    const next = previous.catch(() => {}).then(fn)
    this.locks.set(dataset, next)
    void next.catch(() => {}).then(() => { if (this.locks.get(dataset) === next) this.locks.delete(dataset) })
    return next
  }

  private async current(dataset: string): Promise<ActiveFile> {
    const existing = this.active.get(dataset)
    if (existing && existing.size < this.opts.rotateBytes && Date.now() - existing.openedAt < this.opts.rotateMs) return existing
    if (existing) await this.rotate(dataset, existing)
    const dir = join(this.opts.dir, dataset)
    await mkdir(dir, { recursive: true })
    // The name sorts by time, so reading the files in name order reads the events in arrival order.
    // It must be one no file has had: in a container every run is pid 1, and a run restarted
    // within the second would append to the file of the run before while that one's gzip removes
    // it, or gzip over its .gz. So a name taken, or whose gzip exists, is skipped.
    // And it must sort after the names a run before this one (same pid) gave in the same second,
    // whatever its counter had reached: so the counter goes past the highest one there. A name
    // whose leftover file init() is gzipping now is skipped too (its .ndjson, .gz.tmp and .gz come
    // and go while the checks below run).
    let path: string
    let fh: FileHandle
    for (;;) {
      const head = `${this.opts.kind}-${stamp(new Date())}-${process.pid}-`
      for (const f of await readdir(dir)) {
        if (!f.startsWith(head)) continue
        const n = Number.parseInt(f.slice(head.length), 10)
        if (Number.isSafeInteger(n) && n > sequence) sequence = n
      }
      path = join(dir, `${head}${String(++sequence).padStart(6, '0')}.ndjson`)
      if (this.gzipping.has(path) || await exists(`${path}.gz`) || await exists(`${path}.gz.tmp`)) continue
      try {
        // Append mode: after a failed append is cut off, the next one goes to the new end.
        fh = await open(path, 'ax', 0o640)
        break
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      }
    }
    // The new name must survive a crash too, not only the bytes inside it.
    const d = await open(dir, 'r')
    await d.sync().finally(() => d.close())
    const file: ActiveFile = { fh, path, size: 0, openedAt: Date.now() }
    this.active.set(dataset, file)
    return file
  }

  private async rotate(dataset: string, file: ActiveFile): Promise<void> {
    this.active.delete(dataset)
    await file.fh.close()
    if (file.size === 0) await rm(file.path, { force: true })
    else if (this.opts.gzipRotated) this.compress(file.path)
  }

  private async rotateAged(): Promise<void> {
    for (const [dataset, file] of this.active) {
      if (Date.now() - file.openedAt >= this.opts.rotateMs) {
        await this.withLock(dataset, async () => {
          if (this.active.get(dataset) === file) await this.rotate(dataset, file)
        })
      }
    }
  }

  private compress(path: string): void {
    const job = gzipFile(path).catch((err: unknown) => this.opts.log.error({ err, path }, 'Could not gzip a rotated file; it stays uncompressed.'))
    this.compressions.add(job)
    this.gzipping.add(path)
    void job.finally(() => { this.compressions.delete(job); this.gzipping.delete(path) })
  }
}
