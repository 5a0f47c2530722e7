// The embedded default destination: events appended to NDJSON files under
// DATA_DIR/events/<dataset>/, one active file per dataset, rotated by size or age.
//
// Exactly once across crashes: the state checkpointed with every delivered batch names each
// dataset's active file, its size, and the next file number. At start, bytes past the recorded
// size are cut off and files numbered at or after `next` are removed: they hold a batch whose
// delivery was not checkpointed, and which the spool will deliver again. A fresh start
// checkpoints its state before the first delivery (startState), so this holds for the very
// first batch too.
import { mkdir, open, readdir, rm, stat, truncate, type FileHandle } from 'node:fs/promises'
import { basename, join } from 'node:path'
import type { Logger } from 'pino'
import type { DeliveryBatch, DeliveryResult, Sink } from '../sink.js'
import { gzipFile } from './gzip.js'
import { stamp } from './rotating-files.js'
import { writeAll } from '../../write-all.js'

export interface FileSinkOptions {
  readonly dir: string
  readonly rotateBytes: number
  readonly rotateMs: number
  readonly gzipRotated: boolean
  readonly log: Logger
}

interface FileState {
  next: number
  files: Record<string, { path: string, size: number, openedAt: number }>
}

interface Active {
  fh: FileHandle
  path: string
  size: number
  openedAt: number
}

const NAME = /^events-(\d{10})-[0-9TZ]+\.ndjson(\.gz)?$/
const WRITE_CHUNK = 1024 * 1024


export class FileSink implements Sink {
  readonly name = 'file'
  private state: FileState = { next: 1, files: {} }
  private readonly active = new Map<string, Active>()
  private readonly compressions = new Set<Promise<void>>()
  // Rotated files not yet compressed, with their final sizes: a recovery from the durable
  // checkpoint may still cut one back.
  private readonly rotated = new Map<string, number>()
  // The state of the last checkpoint written (durable): what a recovery would start from.
  private written: FileState | undefined
  private lock: Promise<unknown> = Promise.resolve()
  private timer: NodeJS.Timeout | null = null

  constructor (private readonly opts: FileSinkOptions) {}

  async init(saved: unknown): Promise<void> {
    await mkdir(this.opts.dir, { recursive: true })
    // A folder per dataset, and per tenant a folder of those (routing, src/shaping/route.ts).
    const datasets: string[] = []
    for (const e of await readdir(this.opts.dir, { withFileTypes: true })) {
      if (!e.isDirectory()) continue
      datasets.push(e.name)
      for (const sub of await readdir(join(this.opts.dir, e.name), { withFileTypes: true })) if (sub.isDirectory()) datasets.push(`${e.name}/${sub.name}`)
    }
    if (saved) this.state = structuredClone(saved as FileState)
    if (saved) this.written = saved as FileState
    let highest = 0
    for (const dataset of datasets) {
      const dir = join(this.opts.dir, dataset)
      // Half-written gzip files of a killed run go first, all of them: removed in the same pass,
      // the .gz.tmp (which sorts after its .ndjson) was deleted under the gzip just restarted for
      // that file, which then failed with ENOENT at every start.
      const names = await readdir(dir).catch(() => [] as string[])
      for (const f of names) if (f.endsWith('.gz.tmp')) await rm(join(dir, f), { force: true })
      for (const f of names) {
        const path = join(dir, f)
        if (f.endsWith('.gz.tmp')) continue
        const m = NAME.exec(f)
        if (!m) continue
        const n = Number(m[1])
        if (saved && n >= this.state.next) {
          this.opts.log.warn({ path }, 'Removing an events file whose batch was not checkpointed; the spool delivers it again.')
          await rm(path, { force: true })
          continue
        }
        highest = Math.max(highest, n)
        const current = this.state.files[dataset]
        if (current?.path === path) {
          const size = (await stat(path)).size
          if (size > current.size) {
            this.opts.log.warn({ path, size, checkpointed: current.size }, 'Cutting an events file back to its checkpointed size; the spool delivers the rest again.')
            await truncate(path, current.size)
          }
        } else if (!f.endsWith('.gz') && this.opts.gzipRotated) {
          this.compress(path)
        }
      }
    }
    // Without a checkpoint (a fresh spool) never reuse a number already on disk.
    this.state.next = Math.max(this.state.next, highest + 1)
    this.timer = setInterval(() => { void this.exclusive(() => this.rotateAged()) }, Math.min(this.opts.rotateMs, 60_000))
    this.timer.unref()
  }

  /** Checkpointed before the first delivery: files numbered from here on are not yet delivered. */
  startState(): FileState {
    return structuredClone(this.state)
  }

  deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    return this.exclusive(async () => {
      // A tenant's lines (routing) go to the tenant's folder: events/<folder>/<dataset>/.
      const key = batch.route ? `${batch.route.folder}/${batch.dataset}` : batch.dataset
      const file = await this.fileFor(key)
      const before = file.size
      let lines = 0
      try {
        // The spool keeps lines as NDJSON already (each with its '\n'): a block is written as it
        // was read. Small blocks (one HEC event each) are gathered into one write.
        const out = Buffer.allocUnsafe(WRITE_CHUNK)
        let used = 0
        const flush = async (): Promise<void> => {
          if (used > 0) await writeAll(file.fh, out.subarray(0, used))
          file.size += used
          used = 0
        }
        for await (const block of batch.blocks()) {
          lines += block.lines
          if (used + block.data.length > out.length) await flush()
          if (block.data.length * 4 >= out.length) {
            await writeAll(file.fh, block.data)
            file.size += block.data.length
            continue
          }
          used += block.data.copy(out, used)
        }
        await flush()
        await file.fh.sync()
      } catch (err) {
        await file.fh.truncate(before).catch(() => {})
        file.size = before
        throw err
      }
      this.state.files[key] = { path: file.path, size: file.size, openedAt: file.openedAt }
      return { delivered: lines, duplicates: 0, rejected: [], state: structuredClone(this.state) }
    })
  }

  /**
   * Checkpoints may be written a little after the delivery (src/spool/checkpoints.ts): the spool
   * may replay from one whose state still names a rotated file, which recovery then cuts back.
   * So a rotated file is compressed only once a durable checkpoint is past it: created before
   * that state (its number below `next`) and no longer any dataset's current file, or its current
   * file at its final size (rotated by age while its dataset is idle: nothing to cut back, and no
   * later checkpoint names another file for that dataset until it gets lines again).
   */
  readonly replaysWithoutDuplicates = true

  checkpointed(state: unknown): void {
    const s = state as FileState | undefined
    if (!s) return
    this.written = s
    this.compressPassed()
  }

  private compressPassed(): void {
    const s = this.written
    if (!s) return
    const current = new Map(Object.values(s.files).map((f) => [f.path, f.size]))
    for (const [path, size] of this.rotated) {
      const n = Number(NAME.exec(basename(path))?.[1] ?? Infinity)
      if (n >= s.next || (current.has(path) && current.get(path) !== size)) continue
      this.rotated.delete(path)
      this.compress(path)
    }
  }

  health(): Record<string, unknown> {
    return { dir: this.opts.dir, activeFiles: Object.fromEntries([...this.active].map(([d, f]) => [d, { path: f.path, bytes: f.size }])) }
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    await this.exclusive(async () => {
      for (const f of this.active.values()) await f.fh.close()
      this.active.clear()
    })
    await Promise.all(this.compressions)
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.lock.catch(() => {}).then(fn)
    this.lock = run
    return run
  }

  private async fileFor(dataset: string): Promise<Active> {
    let file = this.active.get(dataset)
    if (!file) {
      // Continue the checkpointed file of an earlier run if it is still there and not due.
      const saved = this.state.files[dataset]
      if (saved && saved.size < this.opts.rotateBytes && Date.now() - saved.openedAt < this.opts.rotateMs && await stat(saved.path).catch(() => null)) {
        const fh = await open(saved.path, 'a', 0o640).catch(() => null)
        if (fh) {
          file = { fh, path: saved.path, size: (await fh.stat()).size, openedAt: saved.openedAt }
          this.active.set(dataset, file)
        }
      }
    }
    if (file && (file.size >= this.opts.rotateBytes || Date.now() - file.openedAt >= this.opts.rotateMs)) {
      await this.rotate(dataset, file)
      file = undefined
    }
    if (file) return file
    const dir = join(this.opts.dir, dataset)
    await mkdir(dir, { recursive: true })
    // Numbered names sort in arrival order; the number also tells recovery what is checkpointed.
    const path = join(dir, `events-${String(this.state.next++).padStart(10, '0')}-${stamp(new Date())}.ndjson`)
    const fh = await open(path, 'a', 0o640)
    const d = await open(dir, 'r')
    try { await d.sync() } finally { await d.close() }
    file = { fh, path, size: 0, openedAt: Date.now() }
    this.active.set(dataset, file)
    return file
  }

  private async rotate(dataset: string, file: Active): Promise<void> {
    this.active.delete(dataset)
    await file.fh.close()
    // Compressed once a durable checkpoint no longer needs to cut it back (checkpointed()).
    if (this.opts.gzipRotated && file.size > 0) {
      this.rotated.set(file.path, file.size)
      this.compressPassed()
    }
  }

  private async rotateAged(): Promise<void> {
    for (const [dataset, file] of [...this.active]) {
      if (Date.now() - file.openedAt >= this.opts.rotateMs) await this.rotate(dataset, file)
    }
  }

  private compress(path: string): void {
    const job = gzipFile(path).catch((err: unknown) => this.opts.log.error({ err, path }, 'Could not gzip a rotated events file; it stays uncompressed.'))
    this.compressions.add(job)
    void job.finally(() => this.compressions.delete(job))
  }
}
