// The Logpull fetcher: reads one window of a zone's HTTP request logs from Cloudflare's legacy,
// Enterprise-only Logpull API (`GET /zones/{zone_id}/logs/received`) into the collector's staging
// stream, line by line as the bytes came, never whole in memory.
//
// Facts it relies on (research/logpush.md §7.2 has them together):
//   - `start` inclusive, `end` exclusive; end − start ≤ 1 hour. CF docs logs/logpull/requesting-logs.mdx.
//   - `end` must lag now: "at least 1 minute earlier than now" (requesting-logs.mdx) but "at least five
//     minutes earlier than now" in the OpenAPI description of the operation (cloudflare/api-schemas
//     openapi.json, logs-received-get-logs-received; the same text in the cloudflare SDK's
//     ReceivedGetParams.end and cloudflare-python received_get_params.py). The logs FAQ says logs
//     "become available in approximately one to five minutes". We keep the safe one, 5 minutes, as
//     the default lag, and never go below the 1 minute the API enforces.
//   - `start` no more than 7 days back ("at least 3 days and up to 7 days": understanding-the-basics.mdx;
//     the API's own refusal says "logs older than 168h0m0s are not available", as seen by
//     grafana/loki clients/pkg/promtail/targets/cloudflare/target.go).
//   - Rates: 15 requests/min per zone and 180/min per user, then 429. additional-details.mdx "Limits".
//   - A failed stream still answers 200 and ends with the non-JSON line `Error streaming data.`;
//     "A response is successful if it does not end with" it. additional-details.mdx "Successful requests".
//   - gzip by default. additional-details.mdx "Compression".
import { once } from 'node:events'
import { request as httpRequest, type IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { pipeline, type Readable, type Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { createGunzip } from 'node:zlib'
import { apiFailure, apiStatus, authHeaders, type CloudflareCredentials } from '../../cloudflare-api/client.js'
import { SourceLogpullRetention, SourceLogpullStream, SourceLogpullWindow } from '../../errors.js'
import { retryAfterMs } from '../failure-policy.js'
import { credentialKey, sharedLogpullLimiter, type LogpullRateLimiter } from './rate-limiter.js'
import type { RequestTimes } from './request-times.js'

export { LogpullRateLimiter, credentialKey, sharedLogpullLimiter } from './rate-limiter.js'
import type { Window, WindowFetcher } from './window.js'

export type LogpullTimestamps = 'unixnano' | 'unix' | 'rfc3339'

/** Logpull's documented rules, as named defaults (sources in the header). */
export const LOGPULL_DEFAULTS = {
  /** Longest window the API serves. */
  maxWindowMs: 3_600_000,
  /** How far `end` stays behind now by default: the OpenAPI's five minutes. */
  delayMs: 300_000,
  /** The least lag the API accepts at all (the docs' one minute); a configured delay below it is raised. */
  minDelayMs: 60_000,
  /** How far back `start` may go. */
  retentionMs: 7 * 24 * 3_600_000,
  /** Kept inside the retention horizon, so a request built now is still valid when Cloudflare reads it. */
  retentionMarginMs: 10 * 60_000,
  perZonePerMinute: 15,
  perUserPerMinute: 180,
  attempts: 5,
  backoffMs: 1000,
  maxBackoffMs: 60_000,
  /** The longest Retry-After obeyed unless configured (SOURCE_RETRY_AFTER_MAX_SECONDS's default). */
  retryAfterMaxMs: 300_000,
  idleTimeoutMs: 120_000,
  /** How much of a refusal's body is read for its message. */
  maxErrorBodyBytes: 64 * 1024,
  /** Cloudflare's default `timestamps`; also Logpush's default timestamp_format, so pulled and pushed lines look alike. */
  timestamps: 'unixnano' as LogpullTimestamps
} as const

export interface LogpullFetcherOptions {
  /** The API base URL (…/client/v4). */
  readonly baseUrl: string
  readonly zone: string
  readonly credentials: CloudflareCredentials
  /** The fields to ask for; omitted: Cloudflare's default set, which "may change at any time". */
  readonly fields?: readonly string[]
  readonly timestamps?: LogpullTimestamps
  /** 0 < sample ≤ 1; a random share of the records (then a window is no longer complete by RayID). */
  readonly sample?: number
  /** How far `end` must stay behind now (default 5 min, at least 1 min). */
  readonly delayMs?: number
  /** How far back `start` may go (default 7 days). */
  readonly retentionMs?: number
  readonly perZonePerMinute?: number
  readonly perUserPerMinute?: number
  readonly limiter?: LogpullRateLimiter
  readonly now?: () => number
  /** Told when part or all of a window lies beyond retention and is skipped (the runner moves on rather than loop). */
  readonly onSkipped?: (info: { zone: string, window: string, skippedMs: number, reason: string }) => void
  /** Attempts for 429 (waiting its Retry-After), 5xx and connection errors, as apiFetch does; then the window fails. */
  readonly attempts?: number
  /** First backoff; doubles per attempt up to maxBackoffMs; a Retry-After wins. */
  readonly backoffMs?: number
  readonly maxBackoffMs?: number
  /** A connection silent this long is dropped and the window failed (Cloudflare itself answers 408 after 30 s idle). */
  readonly idleTimeoutMs?: number
  /** The zone's request times kept across restarts (the collector's state directory); in memory only when absent. */
  readonly requestTimes?: RequestTimes
  /** The longest Retry-After obeyed (SOURCE_RETRY_AFTER_MAX_SECONDS); a longer one waits this long. */
  readonly retryAfterMaxMs?: number
}

const TRAILER = Buffer.from('Error streaming data.')
const NL = Buffer.from('\n')
const CR = 0x0d

function stripCr(b: Buffer): Buffer { return b.length > 0 && b[b.length - 1] === CR ? b.subarray(0, b.length - 1) : b }
/** Whether a line begun so far may still turn out to be the trailer. */
function mayBeTrailer(b: Buffer): boolean {
  const s = b.length === TRAILER.length + 1 ? stripCr(b) : b
  return s.length <= TRAILER.length && TRAILER.subarray(0, s.length).equals(s)
}
function isTrailer(line: Buffer): boolean { return stripCr(line).equals(TRAILER) }

/**
 * Passes a Logpull body through line by line, bytes untouched, except the trailer: a line that
 * could be `Error streaming data.` is held back until its end shows whether it is. Only such a
 * line (at most 23 bytes) is ever held; every other byte goes on at once. So the trailer never
 * reaches `out` as if it were a record; and since the fetch then rejects, the runner discards
 * whatever of the window was written anyway. A last line without its newline gets one.
 */
export class TrailerGate {
  /** The trailer was seen (the window failed). */
  trailer = false
  /** Non-empty lines passed on. */
  lines = 0
  private holding = true
  private held: Buffer = Buffer.alloc(0)
  private lineBytes = 0

  push(chunk: Buffer): Buffer[] {
    const out: Buffer[] = []
    let pos = 0
    while (pos < chunk.length) {
      // Bytes after the trailer: the answer is failed whatever they are; none is a record.
      if (this.trailer) return out
      const nl = chunk.indexOf(0x0a, pos)
      const stop = nl === -1 ? chunk.length : nl
      if (this.holding) {
        const piece = chunk.subarray(pos, stop)
        if (this.held.length + piece.length <= TRAILER.length + 1) {
          const line = Buffer.concat([this.held, piece])
          if (mayBeTrailer(line)) {
            if (nl === -1) { this.held = line; return out }
            this.held = Buffer.alloc(0)
            pos = nl + 1
            if (isTrailer(line)) { this.trailer = true; continue }
            out.push(line, NL)
            if (line.length > 0) this.lines++
            continue
          }
        }
        // Not the trailer: what was held goes on, and the rest of the line streams through.
        if (this.held.length > 0) out.push(this.held)
        this.lineBytes = this.held.length
        this.held = Buffer.alloc(0)
        this.holding = false
      }
      const end = nl === -1 ? chunk.length : nl + 1
      out.push(chunk.subarray(pos, end))
      this.lineBytes += stop - pos
      if (nl !== -1) {
        if (this.lineBytes > 0) this.lines++
        this.lineBytes = 0
        this.holding = true
      }
      pos = end
    }
    return out
  }

  /** At the end of the body: settles a held line and closes an unterminated last line. */
  end(): Buffer[] {
    if (this.trailer) return []
    if (this.holding) {
      const line = this.held
      this.held = Buffer.alloc(0)
      if (line.length === 0) return []
      if (isTrailer(line)) { this.trailer = true; return [] }
      this.lines++
      return [line, NL]
    }
    this.holding = true
    if (this.lineBytes > 0) this.lines++
    this.lineBytes = 0
    return [NL]
  }
}

/** RFC 3339 in UTC (the docs' examples; `Z` needs no URL-encoding, unlike `+hh:mm`). */
function rfc3339(ms: number): string { return new Date(ms).toISOString().replace('.000Z', 'Z') }
function label(w: Window): string { return `[${rfc3339(w.start)}, ${rfc3339(w.end)})` }

export class LogpullFetcher implements WindowFetcher {
  readonly zone: string
  private readonly o: LogpullFetcherOptions
  private readonly delayMs: number
  private readonly retentionMs: number
  private readonly limiter: LogpullRateLimiter
  private readonly now: () => number
  private readonly userKey: string
  private readonly zoneKey: string
  private restored: Promise<void> | null = null

  constructor(opts: LogpullFetcherOptions) {
    this.o = opts
    this.zone = opts.zone
    this.delayMs = Math.max(opts.delayMs ?? LOGPULL_DEFAULTS.delayMs, LOGPULL_DEFAULTS.minDelayMs)
    this.retentionMs = opts.retentionMs ?? LOGPULL_DEFAULTS.retentionMs
    this.limiter = opts.limiter ?? sharedLogpullLimiter
    this.now = opts.now ?? Date.now
    this.userKey = credentialKey(opts.credentials)
    this.zoneKey = `zone:${opts.zone}`
  }

  /** Once per process: the zone's request times of the last minute, from before a restart. */
  private async restore(): Promise<void> {
    const times = await this.o.requestTimes!.load()
    const perMinute = this.o.perZonePerMinute ?? LOGPULL_DEFAULTS.perZonePerMinute
    // Unreadable: count a whole minute's quota as used just now, rather than risk the 16th request.
    const now = this.now()
    this.limiter.seed(this.zoneKey, times ?? Array<number>(perMinute).fill(now))
  }

  /**
   * The window's records, each as its NDJSON line, into `out`. A window longer than an hour is
   * read as consecutive one-hour requests (all must succeed). The part of a window older than
   * retention is skipped with `onSkipped`: Cloudflare no longer has it, and asking would fail
   * forever. A window ending closer to now than the delay is refused (the runner asks again later).
   */
  async fetch(window: Window, out: Writable, signal: AbortSignal): Promise<{ records: number }> {
    const now = this.now()
    if (!(window.end > window.start)) throw new SourceLogpullWindow(this.zone, label(window), 'end is not after start')
    if (window.end > now - this.delayMs) {
      throw new SourceLogpullWindow(this.zone, label(window), `end must be at least ${this.delayMs / 1000} s before now; asked too early, read later`)
    }
    const horizon = now - this.retentionMs + LOGPULL_DEFAULTS.retentionMarginMs
    let start = window.start
    if (start < horizon) {
      const to = Math.min(horizon, window.end)
      this.o.onSkipped?.({ zone: this.zone, window: label({ start, end: to }), skippedMs: to - start, reason: `older than Logpull retention (${this.retentionMs / 3_600_000} h)` })
      if (window.end <= horizon) return { records: 0 }
      start = horizon
    }
    let records = 0
    for (let s = start; s < window.end; s += LOGPULL_DEFAULTS.maxWindowMs) {
      records += await this.one({ start: s, end: Math.min(s + LOGPULL_DEFAULTS.maxWindowMs, window.end) }, out, signal)
    }
    return { records }
  }

  private async one(w: Window, out: Writable, signal: AbortSignal): Promise<number> {
    const q = new URLSearchParams({ start: rfc3339(w.start), end: rfc3339(w.end), timestamps: this.o.timestamps ?? LOGPULL_DEFAULTS.timestamps })
    if (this.o.fields !== undefined && this.o.fields.length > 0) q.set('fields', this.o.fields.join(','))
    if (this.o.sample !== undefined) q.set('sample', String(this.o.sample))
    const res = await this.open(`/zones/${encodeURIComponent(this.zone)}/logs/received?${q.toString()}`, w, signal)
    const encoding = String(res.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
    if (encoding !== 'gzip' && encoding !== 'x-gzip' && encoding !== 'identity' && encoding !== '') {
      res.destroy()
      throw new SourceLogpullStream(this.zone, label(w), `unexpected Content-Encoding "${encoding}"`)
    }
    // Our own gunzip, not fetch()'s: fetch decodes leniently and takes a gzip stream cut short for
    // a complete one, which here would store a partial window as whole. zlib's gunzip errors on it.
    const body: Readable = encoding === 'identity' || encoding === '' ? res : pipeline(res, createGunzip(), () => {})
    const gate = new TrailerGate()
    try {
      for await (const chunk of body) {
        for (const b of gate.push(chunk as Buffer)) await write(out, b, signal)
        if (gate.trailer) break
      }
      for (const b of gate.end()) await write(out, b, signal)
    } catch (err) {
      if (signal.aborted) throw err
      throw new SourceLogpullStream(this.zone, label(w), `the answer broke off (${(err as Error).message})`)
    } finally {
      res.destroy()
    }
    if (gate.trailer) throw new SourceLogpullStream(this.zone, label(w), 'Cloudflare ended the answer with "Error streaming data."')
    return gate.lines
  }

  /**
   * The GET, retried as apiFetch retries (429 after its Retry-After, 5xx and connection errors with
   * backoff), each attempt first cleared by the rate limiter since Cloudflare counts them all.
   * Resolves with a 2xx answer whose body is unread; a refusal rejects with the API's text.
   */
  private async open(path: string, w: Window, signal: AbortSignal): Promise<IncomingMessage> {
    const attempts = this.o.attempts ?? LOGPULL_DEFAULTS.attempts
    const maxBackoff = this.o.maxBackoffMs ?? LOGPULL_DEFAULTS.maxBackoffMs
    let backoff = this.o.backoffMs ?? LOGPULL_DEFAULTS.backoffMs
    const url = new URL(this.o.baseUrl.replace(/\/$/, '') + path)
    const headers = { ...authHeaders(this.o.credentials), 'accept-encoding': 'gzip' }
    if (this.o.requestTimes) {
      this.restored ??= this.restore().catch((err: unknown) => { this.restored = null; throw err })
      await this.restored
    }
    for (let attempt = 1; ; attempt++) {
      await this.limiter.acquire([
        { key: this.zoneKey, perMinute: this.o.perZonePerMinute ?? LOGPULL_DEFAULTS.perZonePerMinute },
        { key: this.userKey, perMinute: this.o.perUserPerMinute ?? LOGPULL_DEFAULTS.perUserPerMinute }
      ], signal)
      // Durable before the request goes out: a restart right after still counts it.
      await this.o.requestTimes?.save(this.limiter.recent(this.zoneKey))
      let res: IncomingMessage
      try {
        res = await get(url, headers, signal, this.o.idleTimeoutMs ?? LOGPULL_DEFAULTS.idleTimeoutMs)
      } catch (err) {
        if (signal.aborted) throw err
        if (attempt >= attempts) throw new SourceLogpullStream(this.zone, label(w), `could not reach the API (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
        await sleep(backoff, undefined, { signal })
        backoff = Math.min(backoff * 2, maxBackoff)
        continue
      }
      const status = res.statusCode ?? 0
      if (status >= 200 && status < 300) return res
      const text = await readCapped(res, LOGPULL_DEFAULTS.maxErrorBodyBytes)
      const retryAfter = res.headers['retry-after'] ?? null
      if (!(status === 429 || status >= 500) || attempt >= attempts) throw this.refusal(apiFailure(status, text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter), w)
      await sleep(retryAfterMs(retryAfter) !== null ? Math.min(retryAfterMs(retryAfter)!, this.o.retryAfterMaxMs ?? LOGPULL_DEFAULTS.retryAfterMaxMs) : backoff, undefined, { signal })
      backoff = Math.min(backoff * 2, maxBackoff)
    }
  }

  /** Logpull's own refusals (plain text, not the v4 envelope) as typed errors; anything else as apiFailure made it (an auth failure stays one for isAuthFailure). */
  private refusal(err: unknown, w: Window): unknown {
    if (apiStatus(err) !== 400) return err
    const said = (err as Error).message
    if (/retention/i.test(said)) return Object.assign(new SourceLogpullRetention(this.zone, said, this.zone), { status: 400 })
    if (/time range|error parsing (start |end )?time/i.test(said)) return Object.assign(new SourceLogpullWindow(this.zone, label(w), said), { status: 400 })
    return err
  }
}

/** One GET; resolves at the answer's head. The socket timeout also guards the body, which is read on the same socket. */
function get(url: URL, headers: Record<string, string>, signal: AbortSignal, idleMs: number): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, { method: 'GET', headers, signal }, resolve)
    req.setTimeout(idleMs, () => req.destroy(new Error(`no data for ${idleMs} ms`)))
    req.on('error', reject)
    req.end()
  })
}

async function readCapped(res: IncomingMessage, max: number): Promise<string> {
  const chunks: Buffer[] = []
  let n = 0
  try {
    for await (const c of res) {
      if (n < max) chunks.push((c as Buffer).subarray(0, max - n))
      n += (c as Buffer).length
    }
  } catch { /* what arrived is enough for the message */ }
  return Buffer.concat(chunks).toString('utf8')
}

async function write(out: Writable, b: Buffer, signal: AbortSignal): Promise<void> {
  if (b.length === 0) return
  if (!out.write(b)) await once(out, 'drain', { signal })
}
