// A bucket source: lists the open {DATE} prefixes of a bucket Logpush writes to, and reads each
// object it has not settled yet into the spool.
//
// Why full listings, not a "start after the last key" cursor: objects arrive late and out of
// order (a slow upload lands after later-named ones, a late batch lands in yesterday's prefix),
// and a cursor skips them for good. Each poll lists every open date prefix in full and diffs it
// against the progress record, keyed by (key, ETag). A day's prefix stays open until
// closeAfterHours after the day ended (24 h: today and yesterday); once a listing begun after that
// found everything settled, the day is closed and its rows pruned, so the record stays small.
//
// Exactly once: an object is marked done only after its batch is durable in the spool. The batch
// carries the object's identity as its re-send digest, so an object read again after a crash
// between the two is recognised by the spool and stored once.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Readable } from 'node:stream'
import type { Logger } from 'pino'
import type { BucketSourceConfig } from '../../config/index.js'
import { redactSecret, type SourceGauges } from '../../observability/index.js'
import { backoffMs } from '../failure-policy.js'
import type { SpoolFs } from '../../spool/fs.js'
import { classify, type Failure } from './classify.js'
import type { BucketClient, ListedObject } from './client.js'
import { objectDigest, type ObjectOutcome } from './ingest-object.js'
import { addDays, bareEtag, challengePrefix, closesAt, datePrefix, dayOf, daysBetween, isChallenge } from './keys.js'
import { ProgressRecord } from './progress.js'

export interface BucketSourceOptions {
  readonly config: BucketSourceConfig
  readonly client: BucketClient
  /** DATA_DIR/sources/<name>: the progress record. */
  readonly dir: string
  /** Reads one object body into the spool (ingestObject, bound to the spool and the dataset). */
  readonly ingest: (body: Readable, digest: string, label: string) => Promise<ObjectOutcome>
  /** Why the spool takes nothing now (watermark, disk), or null. */
  readonly refusal?: () => string | null
  readonly onChallenge: (c: { source: string, dataset: string, key: string, token: string }) => void
  readonly log: Logger
  /** The clock that says which days are open; tests drive it. */
  readonly now?: () => number
  /** First pause after a throttled or local failure (doubles per failure in a row, capped at pollSeconds). */
  readonly backoffBaseMs?: number
  /** The file system of the progress record (tests pass a failing one). */
  readonly fs?: SpoolFs
}

// What /metrics reads of a source; the shape belongs to observability (a leaf every room may use).
export type { SourceGauges }

const CHALLENGE_MAX_BYTES = 4096
const FAILURES_KEPT = 10
const BACKOFF_BASE_MS = 1000

export class BucketSource {
  readonly name: string
  private readonly progress: ProgressRecord
  private readonly now: () => number
  private readonly abort = new AbortController()
  private running: Promise<void> | null = null
  private wake = new AbortController()
  /** Objects read but not settled (a passing failure): attempts so far. Cleared when settled. */
  private readonly attempts = new Map<string, number>()
  private readonly shownChallenges = new Set<string>()
  private readonly recentFailures: Array<{ key: string, code: string, message: string, at: string }> = []
  private inflight = 0
  private slotWaiters: Array<() => void> = []
  private jobs = new Set<Promise<void>>()
  private unsettled = new Set<string>()
  private pauseUntil = 0
  /** Throttled or local failures in a row: the pause doubles with each. */
  private pauses = 0
  /** Set when init failed (an unreadable progress record): the source never starts. */
  private stopped: { code: string, message: string, at: string } | null = null
  private listError: (Failure & { at: string }) | null = null
  private objectError: (Failure & { at: string, key: string }) | null = null
  private lastListedAt: number | null = null
  private newestDone: { key: string, lastModified: number } | null = null
  seen = 0
  done = 0
  failed = 0
  duplicates = 0
  challenges = 0

  constructor (private readonly opts: BucketSourceOptions) {
    this.name = opts.config.name
    this.progress = new ProgressRecord(opts.dir, opts.fs)
    this.now = opts.now ?? Date.now
  }

  /**
   * Loads the progress record. One that cannot be read stops this source (shown in /health and as
   * lpr_source_up 0), never the service and never the other sources; it is never rewritten.
   */
  async init(): Promise<void> {
    const { config } = this.opts
    // First start: the look-back days, and today. closedThrough is the day before the first one read.
    try {
      await this.progress.load(config.bucket, config.prefix, addDays(dayOf(this.now()), -config.startLookbackDays - 1))
    } catch (err) {
      const code = (err as { code?: unknown })?.code
      this.stopped = { code: typeof code === 'string' && code.startsWith('LPR_ERR_') ? code : 'LPR_ERR_SOURCE_STATE_UNREADABLE', message: (err as Error).message, at: new Date().toISOString() }
      this.opts.log.error({ source: this.name, code: this.stopped.code }, `Bucket source stopped: ${this.stopped.message}`)
      return
    }
    if (this.progress.fresh) this.opts.log.info({ source: this.name, from: addDays(this.progress.closedThrough, 1) }, 'Bucket source starts without a progress record: reading from this day on.')
  }

  start(): void {
    if (!this.stopped) this.running = this.loop()
  }

  async stop(): Promise<void> {
    this.abort.abort()
    this.wake.abort()
    await this.running?.catch(() => {})
    await Promise.allSettled([...this.jobs])
    await this.progress.closeFile()
    this.opts.client.destroy()
  }

  /** Asks for a poll now instead of at the end of the wait. */
  poke(): void { this.wake.abort() }

  private async loop(): Promise<void> {
    const { config, log } = this.opts
    let failures = 0
    while (!this.abort.signal.aborted) {
      try {
        await this.pollOnce()
        if (this.listError) log.info({ source: this.name }, 'Bucket listing works again.')
        this.listError = null
        failures = 0
      } catch (err) {
        if (this.abort.signal.aborted) break
        const f = classify(err, `list s3://${config.bucket}/${config.prefix}`)
        // Logged when it starts or changes, not at every poll of a long outage.
        if (this.listError?.code !== f.code) log.error({ source: this.name, code: f.code, err: { message: f.message } }, 'Bucket listing failed; retrying with backoff.')
        this.listError = { ...f, at: new Date().toISOString() }
        failures++
      }
      const wait = failures > 0 ? backoffMs(failures, { baseMs: this.opts.backoffBaseMs ?? BACKOFF_BASE_MS, capMs: config.pollSeconds * 1000, retryAfterMaxMs: 0 }) : config.pollSeconds * 1000
      if (this.wake.signal.aborted) this.wake = new AbortController()
      await sleep(wait, undefined, { signal: AbortSignal.any([this.abort.signal, this.wake.signal]) }).catch(() => {})
    }
  }

  /** One poll: list every open date prefix, read what is new, close the days that are over. */
  async pollOnce(): Promise<void> {
    const startedAt = this.now()
    const today = dayOf(startedAt)
    this.unsettled = new Set()
    try {
      await this.scanChallenges()
      const days = daysBetween(this.progress.closedThrough, today)
      for (const day of days) await this.scan(day)
      this.lastListedAt = Date.now()
    } finally {
      // Whatever happened to the listing, the objects already handed out finish first.
      await Promise.allSettled([...this.jobs])
    }
    for (const day of daysBetween(this.progress.closedThrough, today)) {
      if (closesAt(day, this.opts.config.closeAfterHours) > startedAt || this.unsettled.has(day)) break
      await this.progress.close(day)
      for (const id of this.attempts.keys()) if (id.startsWith(`${day}\0`)) this.attempts.delete(id)
      this.opts.log.info({ source: this.name, day }, 'Bucket date prefix closed: every object settled, progress rows pruned.')
    }
  }

  private async * listAll(prefix: string): AsyncGenerator<ListedObject> {
    let token: string | undefined
    do {
      const page = await this.opts.client.list(prefix, token, this.abort.signal)
      yield * page.objects
      token = page.next
    } while (token)
  }

  private async scanChallenges(): Promise<void> {
    for await (const o of this.listAll(challengePrefix(this.opts.config.prefix))) {
      if (isChallenge(o.key)) await this.schedule(null, o)
    }
  }

  private async scan(day: string): Promise<void> {
    for await (const o of this.listAll(datePrefix(this.opts.config.prefix, day))) {
      if (o.key.endsWith('/')) continue
      const row = this.progress.get(day, o.key)
      if (row && row.etag === bareEtag(o.etag)) continue
      await this.schedule(day, o)
    }
  }

  /** Waits for a free slot (and out a throttling pause), then reads the object in the background. */
  private async schedule(day: string | null, o: ListedObject): Promise<void> {
    const id = `${day ?? '-'}\0${o.key}\0${bareEtag(o.etag)}`
    if (day !== null && !this.attempts.has(id)) {
      this.seen++
      this.attempts.set(id, 0)
    }
    while (this.inflight >= this.opts.config.concurrency) await new Promise<void>((resolve) => this.slotWaiters.push(resolve))
    const pause = this.pauseUntil - Date.now()
    if (pause > 0) await sleep(pause, undefined, { signal: this.abort.signal }).catch(() => {})
    if (this.abort.signal.aborted) throw this.abort.signal.reason
    this.inflight++
    const job = this.read(day, o, id).finally(() => {
      this.inflight--
      this.jobs.delete(job)
      this.slotWaiters.shift()?.()
    })
    this.jobs.add(job)
  }

  private async read(day: string | null, o: ListedObject, id: string): Promise<void> {
    const { config, log } = this.opts
    const etag = bareEtag(o.etag)
    if (isChallenge(o.key)) return await this.challenge(day, o, id)
    const refusal = this.opts.refusal?.()
    if (refusal) {
      // The spool is full: the object waits for a later poll, without counting an attempt.
      this.unsettled.add(day!)
      return
    }
    let outcome: ObjectOutcome
    try {
      const body = await this.opts.client.get(o.key, this.abort.signal)
      outcome = await this.opts.ingest(body, objectDigest(config.bucket, o.key, etag), `${this.name}:${o.key}`)
    } catch (err) {
      return await this.failedRead(day!, o, id, err)
    }
    const lines = outcome.kind === 'stored' ? outcome.accepted : 0
    try {
      await this.progress.mark(day!, o.key, { etag, status: 'done', lastModified: o.lastModified, lines })
    } catch (err) {
      // Stored but not recorded: the next poll reads it again and the spool recognises it.
      this.unsettled.add(day!)
      log.error({ source: this.name, key: o.key, err: { message: (err as Error).message } }, 'Could not record a bucket object as done; it is checked again at the next poll.')
      return
    }
    this.attempts.delete(id)
    this.pauses = 0
    if (this.objectError) this.objectError = null
    this.done++
    if (outcome.kind === 'duplicate') this.duplicates++
    if (!this.newestDone || o.lastModified > this.newestDone.lastModified) this.newestDone = { key: o.key, lastModified: o.lastModified }
    if (outcome.kind === 'stored') {
      log.info({ source: this.name, dataset: config.dataset, key: o.key, lines: outcome.lines, accepted: outcome.accepted, rejected: outcome.rejected, inflatedBytes: outcome.inflatedBytes }, 'Bucket object accepted.')
    } else if (outcome.kind === 'duplicate') {
      log.info({ source: this.name, key: o.key }, 'Bucket object already in the spool (read again after a restart); not stored again.')
    }
  }

  private async failedRead(day: string, o: ListedObject, id: string, err: unknown): Promise<void> {
    const { config, log } = this.opts
    this.unsettled.add(day)
    if (this.abort.signal.aborted) return
    const f = classify(err, `read s3://${config.bucket}/${o.key}`)
    const at = new Date().toISOString()
    if (f.throttled || f.local || f.permission) {
      // Not the object's fault (the store asked us to slow down, our own budget, disk or parse
      // worker failed, or the reader's policy lacks s3:GetObject): the whole source pauses with
      // backoff, and no attempt is counted: a missing permission, once granted, finds every object
      // still unread (shown as failing until a read works).
      this.pauses++
      const pauseMs = backoffMs(this.pauses, { baseMs: this.opts.backoffBaseMs ?? BACKOFF_BASE_MS, capMs: config.pollSeconds * 1000, retryAfterMaxMs: config.pollSeconds * 1000 })
      this.pauseUntil = Math.max(this.pauseUntil, Date.now() + pauseMs)
      this.objectError = { ...f, at, key: o.key }
      if (f.throttled) log.warn({ source: this.name, key: o.key, code: f.code, pauseMs }, 'Bucket throttled reads; pausing this source.')
      else if (f.permission) log.error({ source: this.name, key: o.key, code: f.code, pauseMs, err: { message: f.message } }, 'The bucket refused to read an object; pausing this source until it is allowed.')
      else log.warn({ source: this.name, key: o.key, code: f.code, pauseMs, err: { message: f.message } }, 'Local trouble while reading a bucket object; pausing this source, the object is read again.')
      return
    }
    const n = (this.attempts.get(id) ?? 0) + 1
    if (!f.permanent && n < config.maxAttempts) {
      this.attempts.set(id, n)
      log.warn({ source: this.name, key: o.key, code: f.code, attempt: n, maxAttempts: config.maxAttempts, err: { message: f.message } }, 'Could not read a bucket object; it is tried again at the next poll.')
      return
    }
    // Given up: recorded so that it is not read again (a new ETag, i.e. a rewritten object, is).
    try {
      await this.progress.mark(day, o.key, { etag: bareEtag(o.etag), status: 'failed', lastModified: o.lastModified, lines: 0, code: f.code })
    } catch {
      return
    }
    this.unsettled.delete(day)
    this.attempts.delete(id)
    this.failed++
    this.recentFailures.push({ key: o.key, code: f.code, message: f.message, at })
    while (this.recentFailures.length > FAILURES_KEPT) this.recentFailures.shift()
    log.error({ source: this.name, dataset: config.dataset, key: o.key, code: f.code, attempts: n, err: { message: f.message } }, 'Bucket object refused; it is not read again. See /health.')
  }

  private async challenge(day: string | null, o: ListedObject, id: string): Promise<void> {
    const { config, log } = this.opts
    if (!this.shownChallenges.has(id)) {
      let text = ''
      try {
        const body = await this.opts.client.get(o.key, this.abort.signal)
        for await (const chunk of body) {
          text += (chunk as Buffer).toString('utf8')
          if (text.length >= CHALLENGE_MAX_BYTES) break
        }
        body.destroy()
      } catch (err) {
        if (day) this.unsettled.add(day)
        log.warn({ source: this.name, key: o.key, err: { message: (err as Error).message } }, 'Could not read the ownership-challenge file; trying again at the next poll.')
        return
      }
      const token = text.slice(0, CHALLENGE_MAX_BYTES).trim()
      this.opts.onChallenge({ source: this.name, dataset: config.dataset, key: o.key, token })
      this.shownChallenges.add(id)
      this.challenges++
      log.warn({ source: this.name, key: o.key, token: redactSecret(token) }, 'Ownership-challenge file in the bucket; not ingested. Read it at GET /logpush/challenges.')
    }
    if (day) {
      await this.progress.mark(day, o.key, { etag: bareEtag(o.etag), status: 'challenge', lastModified: o.lastModified, lines: 0 }).catch(() => this.unsettled.add(day))
      this.attempts.delete(id)
    }
  }

  /** Rows in the progress record, open days: the 60-day test watches these stay bounded. */
  recordSize(): { rows: number, openDays: number, closedThrough: string } {
    return { rows: this.progress.size(), openDays: this.progress.openDates().length, closedThrough: this.progress.closedThrough }
  }

  gauges(): SourceGauges {
    return {
      seen: this.seen,
      done: this.done,
      failed: this.failed,
      up: this.stopped === null && this.listError === null && !this.objectError?.permission,
      newestDoneLagSeconds: this.newestDone ? Math.max(0, Math.round((this.now() - this.newestDone.lastModified) / 1000)) : 0
    }
  }

  status(): Record<string, unknown> {
    const { config } = this.opts
    const error = this.stopped ?? this.listError ?? this.objectError
    return {
      kind: 's3',
      bucket: config.bucket,
      prefix: config.prefix,
      dataset: config.dataset,
      ...(config.endpoint ? { endpoint: config.endpoint } : {}),
      state: this.stopped ? 'stopped' : this.listError ? 'failing' : this.objectError?.permission ? 'failing' : this.objectError?.throttled ? 'throttled' : this.objectError?.local ? 'paused' : 'ok',
      lastError: error ? { code: error.code, message: error.message, at: error.at, ...('key' in error ? { key: error.key } : {}) } : null,
      lastListedAt: this.lastListedAt === null ? null : new Date(this.lastListedAt).toISOString(),
      objects: { seen: this.seen, done: this.done, failed: this.failed, duplicates: this.duplicates, challenges: this.challenges, inFlight: this.inflight, retrying: [...this.attempts.values()].filter((n) => n > 0).length },
      newestDone: this.newestDone ? { key: this.newestDone.key, lastModified: new Date(this.newestDone.lastModified).toISOString(), lagSeconds: this.gauges().newestDoneLagSeconds } : null,
      progress: this.stopped ? null : { closedThrough: this.progress.closedThrough, openDays: this.progress.openDates(), rows: this.progress.size() },
      failures: [...this.recentFailures].reverse()
    }
  }
}

