// The durable cursor of one pull collector, DATA_DIR/collectors/<name>/cursor.json, and the
// staging files beside it.
//
// Exactly once across kill -9, by this order (runner.ts):
//   1. fetch the whole window into staging/<start>-<end>.ndjson.gz, fsync it;
//   2. write the cursor with `staged: {window, file, digest}` (atomic: temp, fsync, rename, fsync dir);
//   3. ingest the staged file into the spool under that digest;
//   4. write the cursor with next = window end and no staged window;
//   5. delete the staged file.
// A crash before 2 leaves a stray file (deleted at start; the window is fetched again). A crash
// between 2 and 4 leaves a staged window: it is ingested again from its file at start, and the spool
// recognises the digest if step 3 had completed, so nothing is stored twice. A crash after 4
// leaves a stray file only. The cursor never moves past a window whose records are not durable.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { CollectorCursorUnreadable } from '../../errors.js'
import { realFs, type SpoolFs } from '../../spool/fs.js'
import { writeAtomic } from '../../spool/spool.js'
import type { Window } from './window.js'

export interface StagedWindow {
  readonly window: Window
  /** File name in the staging directory. */
  readonly file: string
  /** The spool's re-send digest: the collector's name and the sha256 of the staged bytes. */
  readonly digest: string
  readonly records: number
}

export interface CursorState {
  /** Start of the next window to read (ms). */
  readonly next: number
  readonly staged: StagedWindow | null
}

const FILE = 'cursor.json'
const STAGING = 'staging'
const STAGED_NAME = /^\d+-\d+\.ndjson\.gz$/

/** The digest of staged bytes, under the collector's name so two collectors never share one. */
export function stagedDigest(collector: string, sha256: Buffer): string {
  return `${collector}-${sha256.toString('base64url')}`
}

export function sha256(): ReturnType<typeof createHash> { return createHash('sha256') }

export class CursorStore {
  readonly path: string
  readonly stagingDir: string
  private state: CursorState | null = null

  /** `fs`: the injectable file system of every state file (tests pass a failing one). */
  constructor (readonly dir: string, readonly fs: SpoolFs = realFs) {
    this.path = join(dir, FILE)
    this.stagingDir = join(dir, STAGING)
  }

  /** The file name a window is staged under. */
  stagingFile(w: Window): string { return `${w.start}-${w.end}.ndjson.gz` }

  stagingPath(file: string): string { return join(this.stagingDir, file) }

  /**
   * Reads the cursor (or starts one at `initialNext`), and deletes the staging files the cursor
   * does not name: windows fetched but never recorded, or already ingested.
   */
  async load(initialNext: number): Promise<{ state: CursorState, fresh: boolean, removed: string[] }> {
    await this.fs.mkdir(this.stagingDir, { recursive: true })
    let fresh = false
    let text: string | null = null
    try {
      text = await this.fs.readFile(this.path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new CollectorCursorUnreadable(this.path, (err as NodeJS.ErrnoException).code ?? 'error', '')
    }
    if (text === null) {
      fresh = true
      // Written at once: a restart before the first window must not start again from a later "now".
      await this.write({ next: initialNext, staged: null })
    } else {
      this.state = parse(this.path, text)
    }
    // A temp file of an interrupted write (writeAtomic's) is never the cursor.
    await this.fs.rm(`${this.path}.tmp`, { force: true })
    const state = this.current
    const removed: string[] = []
    for (const f of await this.fs.readdir(this.stagingDir)) {
      if (f === state.staged?.file) continue
      await this.fs.rm(join(this.stagingDir, f), { force: true })
      removed.push(f)
    }
    if (state.staged && !(await this.fs.readdir(this.stagingDir)).includes(state.staged.file)) {
      // Step 2 comes after the file's fsync: a staged window without its file is a broken disk, not a crash.
      throw new CollectorCursorUnreadable(this.path, 'ENOENT', `the staged file ${state.staged.file} is missing`)
    }
    return { state, fresh, removed }
  }

  get loaded(): boolean { return this.state !== null }

  get current(): CursorState {
    if (!this.state) throw new Error('cursor not loaded')
    return this.state
  }

  /** Records a staged window (step 2). */
  async stage(staged: StagedWindow): Promise<void> {
    await this.write({ next: this.current.next, staged })
  }

  /** Moves the cursor past the window (step 4) and deletes its file (step 5). */
  async advance(next: number): Promise<void> {
    const staged = this.current.staged
    await this.write({ next, staged: null })
    if (staged) await this.fs.rm(this.stagingPath(staged.file), { force: true })
  }

  private async write(state: CursorState): Promise<void> {
    await writeAtomic(this.path, JSON.stringify(state) + '\n', this.fs)
    this.state = state
  }
}

function parse(path: string, text: string): CursorState {
  let v: unknown
  try { v = JSON.parse(text) } catch (err) { throw new CollectorCursorUnreadable(path, 'EINVAL', (err as Error).message) }
  const s = v as Partial<CursorState>
  const staged = s.staged as Partial<StagedWindow> | null | undefined
  const okStaged = staged === null || (typeof staged === 'object' && staged !== undefined &&
    typeof staged.file === 'string' && STAGED_NAME.test(staged.file) && typeof staged.digest === 'string' &&
    typeof staged.records === 'number' && typeof staged.window?.start === 'number' && typeof staged.window.end === 'number')
  if (typeof s.next !== 'number' || !Number.isFinite(s.next) || !okStaged) throw new CollectorCursorUnreadable(path, 'EINVAL', 'not a cursor')
  return { next: s.next, staged: staged as StagedWindow | null }
}
