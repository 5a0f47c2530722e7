// Logpull's request rates (15 a minute per zone, 180 per user; logpull.ts's header has the sources)
// as a sliding one-minute limiter the fetchers wait on before each request.
import { createHash } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CloudflareCredentials } from '../../cloudflare-api/client.js'

const MINUTE_MS = 60_000

/**
 * A sliding one-minute request limiter shared by every Logpull fetcher of the process, keyed by
 * zone and by credential, so two collectors on one user stay under the per-user rate together.
 * Keys are in memory only; a credential's key is a digest, never the secret.
 */
export class LogpullRateLimiter {
  private readonly used = new Map<string, number[]>()
  private readonly now: () => number
  private readonly wait: (ms: number, signal?: AbortSignal) => Promise<void>

  constructor(opts: { now?: () => number, sleep?: (ms: number, signal?: AbortSignal) => Promise<void> } = {}) {
    this.now = opts.now ?? Date.now
    this.wait = opts.sleep ?? ((ms, signal) => sleep(ms, undefined, { signal }))
  }

  /** Adds request times made before (by an earlier process, from the collector's state) to a key. */
  seed(key: string, times: readonly number[]): void {
    // As multisets (requests made in one millisecond count each), and a time known to both once.
    const count = (list: readonly number[]): Map<number, number> => {
      const m = new Map<number, number>()
      for (const t of list) m.set(t, (m.get(t) ?? 0) + 1)
      return m
    }
    const mine = count(this.used.get(key) ?? [])
    // No request was made after now: a later time means the clock stepped back since it was
    // kept (or a damaged record). Taken as made now, it holds its slot for a minute, not until
    // the clock catches up (an hour of no requests after an hour's step).
    const now = this.now()
    for (const [t, n] of count(times.map((t) => Math.min(t, now)))) mine.set(t, Math.max(n, mine.get(t) ?? 0))
    this.used.set(key, [...mine].flatMap(([t, n]) => Array<number>(n).fill(t)).sort((a, b) => a - b))
  }

  /** The request times of a key within the last minute (what the collector keeps across restarts). */
  recent(key: string): number[] {
    const now = this.now()
    return (this.used.get(key) ?? []).filter((t) => t > now - MINUTE_MS)
  }

  /** Waits until every slot has room in the last minute, then takes one request in each. */
  async acquire(slots: ReadonlyArray<{ readonly key: string, readonly perMinute: number }>, signal?: AbortSignal): Promise<void> {
    for (;;) {
      signal?.throwIfAborted()
      const now = this.now()
      let waitMs = 0
      for (const s of slots) {
        const times = (this.used.get(s.key) ?? []).filter((t) => t > now - MINUTE_MS)
        this.used.set(s.key, times)
        if (times.length >= s.perMinute) waitMs = Math.max(waitMs, times[times.length - s.perMinute] + MINUTE_MS - now)
      }
      if (waitMs <= 0) {
        for (const s of slots) this.used.get(s.key)!.push(now)
        return
      }
      await this.wait(waitMs, signal)
    }
  }
}

/** The process-wide limiter the collectors share unless a test gives its own. */
export const sharedLogpullLimiter = new LogpullRateLimiter()

/** The per-user key of a credential: a short digest of the token or of the email (Cloudflare counts per user, i.e. per email). */
export function credentialKey(c: CloudflareCredentials): string {
  const who = c.kind === 'token' ? `token:${c.token}` : `email:${c.email.toLowerCase()}`
  return 'user:' + createHash('sha256').update(who).digest('hex').slice(0, 16)
}

