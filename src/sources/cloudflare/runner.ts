// One pull collector: reads its API window by window, each window durable in the spool before the
// cursor moves past it (the order and why: cursor.ts). One window at a time; back to back while
// behind, pollSeconds apart once caught up.
//
// Failures: a credential Cloudflare refuses (401/403, 6003) stops this collector, with the API's
// message in /health and one log line: retrying cannot help, and other collectors and the intake
// go on. Anything else (429, 5xx the SDK gave up on, a window cut short, the spool refusing, our
// own disk or parse workers failing) is retried with the sources' backoff (../failure-policy.ts),
// honouring a Retry-After up to SOURCE_RETRY_AFTER_MAX_SECONDS, and shown in /health until it works
// again. A window is never failed for good: that would be time skipped.
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { createGzip } from 'node:zlib'
import type { Logger } from 'pino'
import type { CollectorConfig } from '../../config/index.js'
import { apiStatus, describeApiError, isAuthFailure } from '../../cloudflare-api/client.js'
import { CloudflareError } from 'cloudflare'
import { CollectorAuthFailed, CollectorCursorUnreadable, CollectorWindowIncomplete } from '../../errors.js'
import type { CollectorGauges } from '../../observability/index.js'
import { fsyncDir, type SpoolFs } from '../../spool/fs.js'
import { fileReadStream, fileWriteStream } from '../state-streams.js'
import type { ObjectOutcome } from '../bucket/index.js'
import { backoffMs, retryAfterMs } from '../failure-policy.js'
import { CursorStore, sha256, stagedDigest, type StagedWindow } from './cursor.js'
import { describeWindow, nextWindow, type Window, type WindowFetcher } from './window.js'

export interface CollectorOptions {
  readonly config: CollectorConfig
  /** The dataset the records are validated and delivered as. */
  readonly dataset: string
  readonly fetcher: WindowFetcher
  /** DATA_DIR/collectors/<name>: the cursor and the staging files. */
  readonly dir: string
  /** Reads a gzip NDJSON body into the spool under a digest (ingestObject, bound to the spool and the dataset). */
  readonly ingest: (body: Readable, digest: string, label: string) => Promise<ObjectOutcome>
  /** Why the spool takes nothing now (watermark, disk), or null: no window is fetched meanwhile. */
  readonly refusal?: () => string | null
  readonly log: Logger
  /** The clock windows are cut by; tests drive it. */
  readonly now?: () => number
  /** First backoff after a failure (doubles per failure, capped at max(pollSeconds, 60 s)). */
  readonly backoffBaseMs?: number
  /** The longest Retry-After obeyed (SOURCE_RETRY_AFTER_MAX_SECONDS); default 300 s. */
  readonly retryAfterMaxMs?: number
  /** The file system of the cursor and the staging files (tests pass a failing one). */
  readonly fs?: SpoolFs
}

export type CollectorState = 'running' | 'stopped' | 'failing'

export interface CollectorError { readonly code: string, readonly message: string, readonly at: string }

export interface CollectorStatus {
  readonly type: string
  readonly dataset: string
  readonly state: CollectorState
  /** Start of the next window to read (ISO). */
  readonly cursor: string | null
  /** How far the cursor is behind now, in seconds. */
  readonly lagSeconds: number
  readonly lastWindow: { readonly start: string, readonly end: string, readonly records: number, readonly at: string } | null
  /** Records stored in the spool since this start. */
  readonly records: number
  readonly lastError: CollectorError | null
}

// What /metrics reads of a collector; the shape belongs to observability (a leaf every room may use).
export type { CollectorGauges }

class Counted extends Transform {
  readonly hash = sha256()
  bytes = 0
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk)
    this.bytes += chunk.length
    cb(null, chunk)
  }
}

function errorCode(err: unknown): string {
  const c = (err as { code?: unknown })?.code
  if (typeof c === 'string' && c.startsWith('LPR_ERR_')) return c
  // The SDK's own errors (APIError and its subclasses, connection errors) carry no code of ours.
  if (err instanceof CloudflareError) return 'LPR_ERR_CLOUDFLARE_API'
  // Anything else (the staging disk, a stream) left the window unread.
  return new CollectorWindowIncomplete('', '').code
}

export class Collector {
  readonly name: string
  readonly dataset: string
  private readonly cursor: CursorStore
  private readonly now: () => number
  private readonly abort = new AbortController()
  private running: Promise<void> | null = null
  private state: CollectorState = 'running'
  private lastError: CollectorError | null = null
  private lastWindow: CollectorStatus['lastWindow'] = null
  private readonly errors = new Map<string, number>()
  records = 0

  constructor (private readonly opts: CollectorOptions) {
    this.name = opts.config.name
    this.dataset = opts.dataset
    this.cursor = new CursorStore(opts.dir, opts.fs)
    this.now = opts.now ?? Date.now
  }

  /** Loads the cursor; a cursor it cannot read stops this collector (shown in /health), not the service. */
  async init(): Promise<void> {
    const { config, log } = this.opts
    // Whole seconds: Logpull reads start and end to the second, and a window edge with a fraction
    // would be sent as one (…:00.123Z) or rounded by the API, reading records twice or never.
    const initial = Math.floor((this.now() - config.startLookbackHours * 3600_000) / 1000) * 1000
    let loaded
    try {
      loaded = await this.cursor.load(initial)
    } catch (err) {
      const code = new CollectorCursorUnreadable('', '', '').code
      this.fail(code, (err as Error).message)
      this.state = 'stopped'
      log.error({ collector: this.name, code }, (err as Error).message)
      return
    }
    const { fresh, removed, state } = loaded
    if (fresh) log.info({ collector: this.name, from: new Date(initial).toISOString() }, 'Collector starts without a cursor: reading from this time on.')
    if (removed.length > 0) log.info({ collector: this.name, files: removed }, 'Collector removed staging files its cursor does not name (fetched before a crash, read again).')
    if (state.staged) log.info({ collector: this.name, window: describeWindow(state.staged.window) }, 'Collector resumes a staged window: ingesting it again from its file.')
  }

  start(): void {
    if (this.state !== 'stopped') this.running = this.loop()
  }

  async stop(): Promise<void> {
    this.abort.abort()
    await this.running?.catch(() => {})
  }

  /** One step: ingest the staged window, or fetch and ingest the next one. False when there is nothing to read yet. */
  async step(signal: AbortSignal = this.abort.signal): Promise<boolean> {
    const cur = this.cursor.current
    if (cur.staged) {
      await this.ingestStaged(cur.staged)
      return true
    }
    const { config } = this.opts
    const w = nextWindow(cur.next, this.now(), config.windowSeconds * 1000, config.delaySeconds * 1000)
    if (!w) return false
    const staged = await this.fetchWindow(w, signal)
    if (staged.records === 0) {
      // Nothing to store: the cursor moves on without a staged window.
      await this.cursor.advance(w.end)
      this.noteWindow(w, 0)
      return true
    }
    await this.cursor.stage(staged)
    await this.ingestStaged(staged)
    return true
  }

  /** Whether a full window (or a staged one) is ready to read now. */
  private behind(): boolean {
    const cur = this.cursor.current
    if (cur.staged) return true
    const { config } = this.opts
    const w = nextWindow(cur.next, this.now(), config.windowSeconds * 1000, config.delaySeconds * 1000)
    return w !== null && w.end - w.start === config.windowSeconds * 1000
  }

  /** Fetches a window into its staging file, fsync'd (step 1 in cursor.ts). */
  private async fetchWindow(w: Window, signal: AbortSignal): Promise<StagedWindow> {
    const file = this.cursor.stagingFile(w)
    const path = this.cursor.stagingPath(file)
    const gzip = createGzip()
    const counted = new Counted()
    const fs = this.cursor.fs
    // The file is fsync'd before the pipeline resolves (fileWriteStream's final).
    const written = pipeline(gzip, counted, fileWriteStream(fs, path))
    // The staging file can fail while the fetch still runs (ENOSPC, EIO): that rejection is
    // handled at once (an unhandled one would end the whole process, intake included) and stops
    // the fetch, which would otherwise wait for a drain that never comes.
    const fileFailed = new AbortController()
    written.catch((err: unknown) => fileFailed.abort(err))
    let records: number
    try {
      records = (await this.opts.fetcher.fetch(w, gzip, AbortSignal.any([signal, fileFailed.signal]))).records
      gzip.end()
      await written
    } catch (err) {
      gzip.destroy()
      await written.catch(() => {})
      await fs.rm(path, { force: true })
      throw err
    }
    if (records === 0) {
      await fs.rm(path, { force: true })
      return { window: w, file, digest: '', records }
    }
    await fsyncDir(fs, this.cursor.stagingDir)
    return { window: w, file, digest: stagedDigest(this.name, counted.hash.digest()), records }
  }

  /** Steps 3 to 5 in cursor.ts. */
  private async ingestStaged(staged: StagedWindow): Promise<void> {
    const body = fileReadStream(this.cursor.fs, this.cursor.stagingPath(staged.file))
    const outcome = await this.opts.ingest(body, staged.digest, `collector:${this.name}:${staged.file}`)
    await this.cursor.advance(staged.window.end)
    // A duplicate was stored before a crash, and counted by that process.
    if (outcome.kind === 'stored') this.records += staged.records
    this.noteWindow(staged.window, staged.records)
  }

  private noteWindow(w: Window, records: number): void {
    this.lastWindow = { start: new Date(w.start).toISOString(), end: new Date(w.end).toISOString(), records, at: new Date().toISOString() }
  }

  private async loop(): Promise<void> {
    const { config, log } = this.opts
    const base = this.opts.backoffBaseMs ?? 1000
    const cap = Math.max(config.pollSeconds * 1000, 60_000)
    let failures = 0
    const signal = this.abort.signal
    while (!signal.aborted) {
      let wait = config.pollSeconds * 1000
      const refusal = this.opts.refusal?.() ?? null
      if (refusal === null) {
        try {
          const did = await this.step(signal)
          if (this.lastError) log.info({ collector: this.name }, 'Collector works again.')
          this.lastError = null
          this.state = 'running'
          failures = 0
          // Back to back only while a whole window is waiting (or a staged one); once caught up,
          // pollSeconds apart, so windows do not shrink to slivers at the edge of now.
          if (did && this.behind()) continue
        } catch (err) {
          if (signal.aborted) break
          if (isAuthFailure(err)) {
            const e = new CollectorAuthFailed(this.name, describeApiError(err))
            this.fail(e.code, e.message, apiStatus(err))
            this.state = 'stopped'
            log.error({ collector: this.name, code: e.code }, e.message)
            return
          }
          failures++
          const code = errorCode(err)
          const message = describeApiError(err)
          // Logged when it starts or changes, not at every retry of a long outage.
          if (this.lastError?.code !== code || this.lastError.message !== message) log.error({ collector: this.name, code }, `Collector failed; retrying with backoff: ${message}`)
          this.fail(code, message)
          this.state = 'failing'
          wait = backoffMs(failures, { baseMs: base, capMs: cap, retryAfterMs: retryAfterMs(err), retryAfterMaxMs: this.opts.retryAfterMaxMs ?? 300_000 })
        }
      }
      await sleep(wait, undefined, { signal }).catch(() => {})
    }
  }

  private fail(code: string, message: string, _status?: number): void {
    this.lastError = { code, message, at: new Date().toISOString() }
    this.errors.set(code, (this.errors.get(code) ?? 0) + 1)
  }

  /** Start of the next window to read (ms); null before the cursor could be read. */
  private next(): number | null {
    const cur = this.cursor.loaded ? this.cursor.current : null
    return cur ? cur.staged?.window.start ?? cur.next : null
  }

  private lagSeconds(): number {
    const next = this.next()
    return next === null ? 0 : Math.max(0, Math.round((this.now() - next) / 1000))
  }

  status(): CollectorStatus {
    const next = this.next()
    return {
      type: this.opts.config.type,
      dataset: this.dataset,
      state: this.state,
      cursor: next === null ? null : new Date(next).toISOString(),
      lagSeconds: this.lagSeconds(),
      lastWindow: this.lastWindow,
      records: this.records,
      lastError: this.lastError
    }
  }

  gauges(): CollectorGauges {
    return { dataset: this.dataset, records: this.records, lagSeconds: this.lagSeconds(), up: this.state !== 'stopped', errors: this.errors }
  }
}

/**
 * A collector that could not be built (a mapping missing from SCHEMAS_DIR, a secret file gone):
 * shown stopped with why, in /health and as lpr_collector_up 0, like one whose credentials
 * Cloudflare refused; the others are built and run regardless.
 */
export class UnbuiltCollector {
  private readonly error: CollectorError
  constructor (readonly name: string, private readonly type: string, private readonly dataset: string, err: unknown) {
    const code = (err as { code?: unknown })?.code
    this.error = { code: typeof code === 'string' ? code : 'LPR_ERR_CONFIG_INVALID', message: (err as Error)?.message ?? String(err), at: new Date().toISOString() }
  }

  async init(): Promise<void> {}
  start(): void {}
  async stop(): Promise<void> {}

  status(): CollectorStatus {
    return { type: this.type, dataset: this.dataset, state: 'stopped', cursor: null, lagSeconds: 0, lastWindow: null, records: 0, lastError: this.error }
  }

  gauges(): CollectorGauges {
    return { dataset: this.dataset, records: 0, lagSeconds: 0, up: false, errors: new Map([[this.error.code, 1]]) }
  }
}
