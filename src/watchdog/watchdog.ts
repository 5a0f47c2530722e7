// The Logpush job watchdog. Every WATCHDOG_POLL_SECONDS it lists the Logpush jobs of the watched
// zones and accounts, keeps those that point at this service, reads their upload health for the
// last WATCHDOG_WINDOW_SECONDS, and judges each job (judge.ts). It warns before Cloudflare gives up:
// Logpush disables a job after about 24 hours of failures (cloudflare-docs PR 32514), and batches
// it cannot deliver are dropped for good (logs/logpush/logpush-health.mdx). Failures that never
// reach this service (DNS, TLS, a balancer in front) are seen only here.
//
// Memory: the jobs listed (a few per zone) and one line of error per scope. failingSince lives in
// memory only; a restart re-learns it from last_complete and the window (judge.ts).
//
// Logging: a job's alert state (ok, failing too long, lagging, disabled) is logged when it
// changes, never once per poll; a scope the API refuses is logged when its error changes. An auth
// failure in one scope stops nothing else: the other scopes, intake and delivery go on.
import type { Logger } from 'pino'
import type Cloudflare from 'cloudflare'
import { describeApiError, sdkClient, type CloudflareCredentials } from '../cloudflare-api/client.js'
import { redactDestinationSecrets } from '../cloudflare-api/redact.js'
import type { WatchdogGauges } from '../observability/index.js'
import { pointsAtService } from './destination.js'
import { judge, type AlertState, type JobState, type Judged } from './judge.js'
import { readUploadHealth, type Scope, type UploadHealth } from './upload-health.js'

export interface WatchdogOptions {
  readonly baseUrl: string
  readonly credentials: CloudflareCredentials
  readonly zones: readonly string[]
  readonly accounts: readonly string[]
  readonly publicUrl: string
  /** Watch every job of the scopes, not only this service's. */
  readonly allJobs: boolean
  readonly pollMs: number
  readonly windowMs: number
  readonly failingMs: number
  readonly lagMs: number
  readonly log: Logger
  /** One API request's timeout, ms. */
  readonly requestTimeoutMs?: number
  /** GraphQL rows asked for per scope and poll (the API's own cap on `limit` is 10000). */
  readonly maxRows?: number
  readonly now?: () => number
}

export interface WatchedJob {
  readonly id: number
  readonly name: string | null
  readonly dataset: string | null
  readonly scope: Scope['kind']
  readonly scopeId: string
  /** Scheme, host and path of destination_conf: never its query, which carries the token header. */
  readonly destination: string
  readonly enabled: boolean
  readonly lastComplete: string | null
  readonly lastError: string | null
  readonly errorMessage: string | null
  /** Upload attempts in the window; null when the health data could not be read. */
  readonly uploadsOk: number | null
  readonly uploadsRetried: number | null
  readonly uploadsFailed: number | null
  /** Failed attempts by status code in the window (HTTP statuses, or Cloudflare's 1101-1108/1201). */
  readonly failedStatuses: Readonly<Record<string, number>>
  readonly lagSeconds: number | null
  readonly lagging: boolean
  readonly state: JobState
  readonly failingSince: string | null
  /** Failing for longer than WATCHDOG_FAILING_SECONDS: the error is logged and lpr_logpush_job_failing is 1. */
  readonly failingTooLong: boolean
}

export interface WatchdogStatus {
  readonly enabled: true
  readonly zones: readonly string[]
  readonly accounts: readonly string[]
  readonly pollIntervalSeconds: number
  readonly windowSeconds: number
  readonly failingThresholdSeconds: number
  readonly lagThresholdSeconds: number
  /** End of the last poll, and of the last one in which every scope answered. */
  readonly lastPollAt: string | null
  readonly lastCompletePollAt: string | null
  readonly pollErrors: number
  /** The API's words per scope that failed at the last poll ("zone/<id>": "HTTP 403: ..."). */
  readonly errors: Readonly<Record<string, string>>
  readonly jobs: readonly WatchedJob[]
}

// What /metrics reads of the watchdog; the shape belongs to observability (a leaf every room may use).
export type { WatchdogGauges }

interface Tracked {
  job: WatchedJob
  failingSince: number | null
  alert: AlertState
}

const key = (scope: Scope, id: number): string => `${scope.kind}/${scope.id}/${id}`

/** Logpush error messages may quote a URL; a header_* parameter in it is a credential. */
export function redactConf(text: string): string {
  return redactDestinationSecrets(text)
}

/**
 * Where a job pushes, for /health (which is open): this service's own path, but only the scheme and
 * host of any other destination, whose path may be its secret (a Sumo Logic source URL, a
 * webhook's token). Seen with WATCHDOG_ALL_JOBS.
 */
function destinationOf(conf: string, ours: boolean): string {
  try {
    const u = new URL(conf)
    return `${u.protocol}//${u.host}${ours ? u.pathname : ''}`
  } catch {
    return '(not a URL)'
  }
}

export class Watchdog {
  private readonly client: Cloudflare
  private readonly now: () => number
  private readonly scopes: Scope[]
  private readonly tracked = new Map<string, Tracked>()
  private readonly scopeErrors = new Map<string, string>()
  private pollErrors = 0
  private lastPollAt: number | null = null
  private lastCompletePollAt: number | null = null
  private timer: NodeJS.Timeout | null = null
  private running: Promise<void> | null = null
  private readonly abort = new AbortController()
  private stopped = false

  constructor(private readonly o: WatchdogOptions) {
    this.client = sdkClient(o.baseUrl, o.credentials, { maxRetries: 2, timeoutMs: o.requestTimeoutMs ?? 30_000 })
    this.now = o.now ?? Date.now
    this.scopes = [...o.zones.map((id): Scope => ({ kind: 'zone', id })), ...o.accounts.map((id): Scope => ({ kind: 'account', id }))]
  }

  /** Polls now, then every pollMs after the previous poll ended. */
  start(): void {
    const loop = (): void => {
      if (this.stopped) return
      this.running = this.poll().catch((err: unknown) => { this.o.log.error({ err }, 'Watchdog poll failed.') }).finally(() => {
        this.running = null
        if (!this.stopped) this.timer = setTimeout(loop, this.o.pollMs)
      })
    }
    loop()
  }

  async stop(): Promise<void> {
    this.stopped = true
    if (this.timer) clearTimeout(this.timer)
    this.abort.abort()
    await this.running
  }

  /** One poll of every scope; never throws (each scope's failure is recorded and logged). */
  async poll(): Promise<void> {
    let complete = true
    for (const scope of this.scopes) {
      if (this.stopped) return
      try {
        if (!(await this.pollScope(scope))) complete = false
      } catch (err) {
        // An answer of a shape nobody expected must not end the loop (or the process).
        this.failed(scope, 'reading the answers', err)
        complete = false
      }
    }
    this.lastPollAt = this.now()
    if (complete) this.lastCompletePollAt = this.lastPollAt
  }

  private failed(scope: Scope, what: string, err: unknown): void {
    this.pollErrors++
    const said = `${what}: ${describeApiError(err)}`
    const name = `${scope.kind}/${scope.id}`
    if (this.scopeErrors.get(name) !== said) {
      this.o.log.error({ scope: scope.kind, scopeId: scope.id, code: (err as { code?: unknown }).code }, `Watchdog cannot read ${name}: ${said}`)
    }
    this.scopeErrors.set(name, said)
  }

  /** True when the scope answered both questions. */
  private async pollScope(scope: Scope): Promise<boolean> {
    const name = `${scope.kind}/${scope.id}`
    // Each call gets its own timeout; stop() aborts whichever is under way.
    const signal = (): AbortSignal => AbortSignal.any([this.abort.signal, AbortSignal.timeout(this.o.requestTimeoutMs ?? 30_000)])
    const listed = []
    try {
      const params = scope.kind === 'zone' ? { zone_id: scope.id } : { account_id: scope.id }
      for await (const job of this.client.logpush.jobs.list(params, { signal: signal() })) if (job) listed.push(job)
    } catch (err) {
      if (this.stopped) return false
      this.failed(scope, 'listing Logpush jobs', err)
      // What was known stays shown, marked unknown: the facts are no longer current.
      for (const [k, t] of this.tracked) if (k.startsWith(name + '/')) t.job = { ...t.job, state: 'unknown' }
      return false
    }
    const watched = listed.filter((j) => j.id !== undefined && (this.o.allJobs || pointsAtService(this.o.publicUrl, j.destination_conf ?? '')))
    const now = this.now()
    let health: Map<number, UploadHealth> | null = new Map()
    let ok = true
    if (watched.length > 0) {
      try {
        const read = await readUploadHealth({
          baseUrl: this.o.baseUrl,
          credentials: this.o.credentials,
          scope,
          jobIds: watched.map((j) => j.id!),
          since: new Date(now - this.o.windowMs),
          until: new Date(now),
          limit: this.o.maxRows ?? 10_000,
          signal: signal()
        })
        health = read.byJob
        if (read.truncated) this.o.log.warn({ scope: scope.kind, scopeId: scope.id }, `Watchdog: ${name} has more upload-health rows than ${this.o.maxRows ?? 10_000} in the window; counts are partial.`)
      } catch (err) {
        if (this.stopped) return false
        // The job fields alone still tell failing and disabled jobs.
        this.failed(scope, 'reading upload health (GraphQL)', err)
        health = null
        ok = false
      }
    }
    const seen = new Set<string>()
    for (const j of watched) {
      const k = key(scope, j.id!)
      seen.add(k)
      const before = this.tracked.get(k)
      const h = health === null ? null : (health.get(j.id!) ?? { ok: 0, retried: 0, failed: 0, statuses: {}, lastOkAt: null, lastFailedAt: null, firstFailedAfterOkAt: null })
      const facts = { enabled: j.enabled === true, lastComplete: j.last_complete ?? null, lastError: j.last_error ?? null }
      const judged = judge(facts, h, before?.failingSince ?? null, now, { failingMs: this.o.failingMs, lagMs: this.o.lagMs })
      const job: WatchedJob = {
        id: j.id!,
        name: j.name ?? null,
        dataset: j.dataset ?? null,
        scope: scope.kind,
        scopeId: scope.id,
        destination: destinationOf(j.destination_conf ?? '', pointsAtService(this.o.publicUrl, j.destination_conf ?? '')),
        enabled: facts.enabled,
        lastComplete: facts.lastComplete,
        lastError: facts.lastError,
        errorMessage: j.error_message ? redactConf(j.error_message) : null,
        uploadsOk: h?.ok ?? null,
        uploadsRetried: h?.retried ?? null,
        uploadsFailed: h?.failed ?? null,
        failedStatuses: h?.statuses ?? {},
        lagSeconds: judged.lagSeconds,
        lagging: judged.lagging,
        state: judged.state,
        failingSince: judged.failingSince === null ? null : new Date(judged.failingSince).toISOString(),
        failingTooLong: judged.failingTooLong
      }
      if (!before) this.o.log.info({ jobId: job.id, scope: scope.kind, scopeId: scope.id, dataset: job.dataset }, `Watchdog: watching Logpush job ${job.id}${job.name ? ` (${job.name})` : ''} of ${name}.`)
      this.report(job, judged, before?.alert ?? 'ok')
      this.tracked.set(k, { job, failingSince: judged.failingSince, alert: judged.alert })
    }
    for (const k of [...this.tracked.keys()]) {
      if (k.startsWith(name + '/') && !seen.has(k)) {
        this.o.log.info({ scope: scope.kind, scopeId: scope.id }, `Watchdog: Logpush job ${k.slice(name.length + 1)} of ${name} is gone or no longer points here.`)
        this.tracked.delete(k)
      }
    }
    if (ok && this.scopeErrors.delete(name)) this.o.log.info({ scope: scope.kind, scopeId: scope.id }, `Watchdog reads ${name} again.`)
    return ok
  }

  /** Logs a change of a job's alert state, once. */
  private report(job: WatchedJob, judged: Judged, before: AlertState): void {
    if (judged.alert === before) return
    const fields = { jobId: job.id, name: job.name, dataset: job.dataset, scope: job.scope, scopeId: job.scopeId, lastComplete: job.lastComplete, lastError: job.lastError, errorMessage: job.errorMessage, failedStatuses: job.failedStatuses }
    const which = `Logpush job ${job.id}${job.name ? ` (${job.name})` : ''} of ${job.scope}/${job.scopeId}`
    const says = job.errorMessage ? `: ${job.errorMessage}` : ''
    if (judged.alert === 'disabled') this.o.log.error(fields, `${which} is disabled; Cloudflare disables a job after about a day of failures, and pushes nothing while it is disabled${says}`)
    else if (judged.alert === 'failing') this.o.log.error({ ...fields, failingSince: job.failingSince }, `${which} has been failing since ${job.failingSince}; Cloudflare drops batches it cannot deliver and disables the job after about a day${says}`)
    else if (judged.alert === 'lagging') this.o.log.error(fields, `${which} is lagging: its last complete upload covers logs up to ${job.lastComplete} (${job.lagSeconds} s ago)`)
    else this.o.log.info(fields, `${which} is healthy again.`)
  }

  status(): WatchdogStatus {
    const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString())
    return {
      enabled: true,
      zones: this.o.zones,
      accounts: this.o.accounts,
      pollIntervalSeconds: this.o.pollMs / 1000,
      windowSeconds: this.o.windowMs / 1000,
      failingThresholdSeconds: this.o.failingMs / 1000,
      lagThresholdSeconds: this.o.lagMs / 1000,
      lastPollAt: iso(this.lastPollAt),
      lastCompletePollAt: iso(this.lastCompletePollAt),
      pollErrors: this.pollErrors,
      errors: Object.fromEntries(this.scopeErrors),
      jobs: [...this.tracked.values()].map((t) => t.job)
    }
  }

  gauges(): WatchdogGauges {
    return {
      jobs: [...this.tracked.values()].map(({ job, alert }) => ({
        labels: { job_id: String(job.id), dataset: job.dataset ?? '', scope: job.scope, scope_id: job.scopeId },
        enabled: job.enabled,
        // An unknown job keeps its last judgement: losing sight of a failing job must not resolve its alert.
        failing: alert === 'failing',
        lagging: alert === 'lagging',
        uploads: job.uploadsOk === null ? null : { ok: job.uploadsOk, retried: job.uploadsRetried ?? 0, failed: job.uploadsFailed ?? 0 },
        lastCompleteSeconds: job.lastComplete === null || !Number.isFinite(Date.parse(job.lastComplete)) ? null : Date.parse(job.lastComplete) / 1000,
        lagSeconds: job.lagSeconds
      })),
      pollErrors: this.pollErrors,
      lastPollSeconds: this.lastCompletePollAt === null ? null : this.lastCompletePollAt / 1000
    }
  }
}
