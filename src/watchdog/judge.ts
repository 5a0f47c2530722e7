// How the watchdog judges one job at one poll, from the job's own fields and its upload health.
// Pure, so the rules can be tested as a table.
//
// The job fields (cloudflare-typescript src/resources/logpush/jobs.ts, LogpushJob): `last_error`
// "if not null, the job is currently failing"; `last_complete` the last time (of log data) pushed
// successfully; both error fields reset to null after a success. The job fields can lag what the
// health dataset already shows, and the other way round, so either one failing makes the job failing.
import type { UploadHealth } from './upload-health.js'

export type JobState = 'ok' | 'failing' | 'disabled' | 'unknown'
/** What the log and the 0/1 metrics report: changes of it are logged once. */
export type AlertState = 'ok' | 'failing' | 'lagging' | 'disabled'

export interface JobFacts {
  readonly enabled: boolean
  readonly lastComplete: string | null
  readonly lastError: string | null
}

export interface Thresholds {
  /** Failing at least this long raises the alert, ms. */
  readonly failingMs: number
  /** last_complete older than this on an enabled job is lagging, ms. */
  readonly lagMs: number
}

export interface Judged {
  readonly state: Exclude<JobState, 'unknown'>
  /** When the failure run began (ms), null while not failing. */
  readonly failingSince: number | null
  /** Failing for at least Thresholds.failingMs. */
  readonly failingTooLong: boolean
  readonly lagSeconds: number | null
  readonly lagging: boolean
  readonly alert: AlertState
}

function time(iso: string | null): number | null {
  if (iso === null) return null
  const t = Date.parse(iso)
  return Number.isFinite(t) ? t : null
}

/**
 * `failingSince` is the previous poll's value while the run goes on. A run first seen (also after a
 * restart, when memory is empty) is dated back as far as the facts allow: to the first failed
 * minute after the last success in the window, and when the window has no success at all, to
 * last_complete, the last data the job pushed. So a restart re-learns an old failure instead of
 * starting its clock again.
 */
export function judge(facts: JobFacts, health: UploadHealth | null, previousFailingSince: number | null, now: number, t: Thresholds): Judged {
  const lastComplete = time(facts.lastComplete)
  const lastError = time(facts.lastError)
  const lagSeconds = lastComplete === null ? null : Math.max(0, Math.round((now - lastComplete) / 1000))
  if (!facts.enabled) return { state: 'disabled', failingSince: null, failingTooLong: false, lagSeconds, lagging: false, alert: 'disabled' }
  const failingByJob = facts.lastError !== null
  const failingByHealth = health !== null && health.lastFailedAt !== null && (health.lastOkAt === null || health.lastFailedAt > health.lastOkAt)
  const lagging = lagSeconds !== null && lagSeconds * 1000 > t.lagMs
  if (!failingByJob && !failingByHealth) return { state: 'ok', failingSince: null, failingTooLong: false, lagSeconds, lagging, alert: lagging ? 'lagging' : 'ok' }
  let since = previousFailingSince
  if (since === null) {
    since = Math.min(now, health?.firstFailedAfterOkAt ?? now, lastError ?? now)
    if ((health === null || health.lastOkAt === null) && lastComplete !== null) since = Math.min(since, lastComplete)
  }
  const failingTooLong = now - since >= t.failingMs
  return { state: 'failing', failingSince: since, failingTooLong, lagSeconds, lagging, alert: failingTooLong ? 'failing' : lagging ? 'lagging' : 'ok' }
}
