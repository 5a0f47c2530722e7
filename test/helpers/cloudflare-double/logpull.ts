/**
 * Logpull in the Cloudflare API double: `GET /zones/{zone_id}/logs/received`, its field list and
 * the retention flag. Each behaviour cites its source:
 *
 *   [REQ]   CF docs src/content/docs/logs/logpull/requesting-logs.mdx: `start` inclusive and no more
 *           than 7 days back; `end` exclusive, later than start and "at least 1 minute earlier than
 *           now"; end − start ≤ 1 hour; `count`, `sample` (0 < x ≤ 1), `fields` (comma-separated;
 *           default set when empty), `timestamps` unixnano (default) | unix | rfc3339, integers for
 *           unix/unixnano, strings for rfc3339. start/end as Unix s, Unix ns or RFC 3339.
 *   [OAS]   cloudflare/api-schemas openapi.json, operation logs-received-get-logs-received (its text
 *           is in the cloudflare SDK's ReceivedGetParams and cloudflare-python
 *           src/cloudflare/types/logs/received_get_params.py): `end` "at least five minutes earlier
 *           than now"; `fields` "without any whitespaces, and all fields must exist"; `count` > 0.
 *   [BASIC] understanding-the-basics.mdx: records are selected by the time Cloudflare's log system
 *           received them; the default fields (ClientIP … RayID) and the sample record;
 *           NDJSON; retention "at least 3 days and up to 7 days".
 *   [MORE]  additional-details.mdx: gzip by default; a failing stream answers 200 and ends with the
 *           non-JSON line "Error streaming data."; 15 requests/min per zone and 180/min per user,
 *           then 429; "terminated with a 408 error response if the connection is idle for 30s";
 *           "frequent timeouts (> 12/hr) will result in subsequent queries to be blocked with status
 *           code 429 for 1hr"; repeated successful queries return the same records in any order.
 *   [RET]   enabling-log-retention.mdx: retention is off by default; GET/POST
 *           /logs/control/retention/flag with `{"flag": bool}` (openapi.json operations
 *           logs-received-get-log-retention-flag / -update-log-retention-flag); POST needs edit rights.
 *   [FAQ]   developers.cloudflare.com/logs/faq: Logpull logs "become available in approximately one
 *           to five minutes": a record can show up after its minute is already queryable (`visibleAt`).
 *   [TEXT]  Logpull's refusals are plain text, not the v4 envelope. Seen verbatim:
 *           "bad query: error parsing time: invalid time range: too early: logs older than 168h0m0s
 *           are not available" (grafana/loki clients/pkg/promtail/targets/cloudflare/target.go and
 *           its tests); "…: too recent: minimum delay in serving logs is 1m0s", "…: start not before
 *           end", "Retention is not turned on. Please enable log retention" (the test double of
 *           BitGo/cloudflare-logpull-exporter logpull_test.go, copied from real answers).
 *           INFERRED in the same style (no public text found): the > 1 h refusal, an unknown field,
 *           a bad `timestamps`/`count`/`sample`; the 408 and 12-timeouts 429 bodies.
 *   [RATE]  A 429 as the core's rateLimited() gives it (code 971 with Retry-After in seconds; its
 *           sources in server.ts).
 *
 * Records live per zone in area state: `receivedAt` (what start/end select on), `visibleAt` (when
 * the double starts serving it; default receivedAt) and field values, the timestamps stored once
 * as bigint nanoseconds and rendered in the requested format.
 */
import { readFileSync } from 'node:fs'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { constants as zlib, createGzip } from 'node:zlib'
import { fail, ok, rateLimited, type CloudflareDouble, type DoubleRequest, type Reply, type Route } from './server.js'

export interface LogpullRecord {
  /** When Cloudflare's log system received it (ms): what start/end select on [BASIC]. */
  readonly receivedAt: number
  /** From when the double serves it (ms); default receivedAt [FAQ]. */
  readonly visibleAt?: number
  /** Field values; timestamps (EdgeStartTimestamp, EdgeEndTimestamp) as bigint ns. */
  readonly fields: Readonly<Record<string, unknown>>
}

export interface LogpullZone {
  /** The retention flag [RET]; off by default as at Cloudflare. */
  retention: boolean
  readonly records: LogpullRecord[]
  /** End the next `times` answers with "Error streaming data." after `afterRecords` records [MORE]. */
  trailer?: { afterRecords: number, times: number }
  /** How many answers the double ended with the trailer so far. */
  trailersSent?: number
  /** Time to the first byte of an answer; at or above idleTimeoutMs the answer is a 408 [MORE]. */
  firstByteDelayMs?: number
  /** gzip the body (Cloudflare's default [MORE]); false sends identity. */
  gzip: boolean
  /** Records per written chunk, so a body arrives in many pieces. */
  chunkRecords: number
}

export interface LogpullState {
  readonly zones: Map<string, LogpullZone>
  /** `end` must be this far behind now [REQ] (the docs' 1 minute; our fetcher keeps the OpenAPI's 5). */
  minDelayMs: number
  retentionMs: number
  maxWindowMs: number
  perZonePerMinute: number
  perUserPerMinute: number
  idleTimeoutMs: number
  /** More timeouts than this in an hour block the zone with 429 for blockMs [MORE]. */
  timeoutsPerHour: number
  blockMs: number
  readonly zoneRequests: Map<string, number[]>
  readonly userRequests: Map<string, number[]>
  readonly timeouts: Map<string, number[]>
  readonly blockedUntil: Map<string, number>
}

/** The default fields [BASIC] (the sample record and the docs' curl example). */
export const LOGPULL_DEFAULT_FIELDS = ['ClientIP', 'ClientRequestHost', 'ClientRequestMethod', 'ClientRequestURI', 'EdgeEndTimestamp', 'EdgeResponseBytes', 'EdgeResponseStatus', 'EdgeStartTimestamp', 'RayID'] as const

/** Field names and descriptions: the project's http_requests schema, built from Cloudflare's field reference. */
const FIELD_CATALOGUE: Readonly<Record<string, string>> = (() => {
  const schema = JSON.parse(readFileSync(new URL('../../../../schemas/http_requests.json', import.meta.url), 'utf8')) as { properties: Record<string, { description?: string }> }
  return Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, v.description ?? '']))
})()

export function logpullState(double: CloudflareDouble): LogpullState {
  return double.area<LogpullState>('logpull', () => ({
    zones: new Map(),
    minDelayMs: 60_000,
    retentionMs: 7 * 24 * 3_600_000,
    maxWindowMs: 3_600_000,
    perZonePerMinute: 15,
    perUserPerMinute: 180,
    idleTimeoutMs: 30_000,
    timeoutsPerHour: 12,
    blockMs: 3_600_000,
    zoneRequests: new Map(),
    userRequests: new Map(),
    timeouts: new Map(),
    blockedUntil: new Map()
  }))
}

/** A zone's Logpull state, created with retention off as at Cloudflare [RET]; `init` changes it. */
export function logpullZone(double: CloudflareDouble, zone: string, init: Partial<Omit<LogpullZone, 'records'>> = {}): LogpullZone {
  const state = logpullState(double)
  let z = state.zones.get(zone)
  if (!z) {
    z = { retention: false, records: [], gzip: true, chunkRecords: 2 }
    state.zones.set(zone, z)
  }
  Object.assign(z, init)
  return z
}

export function addLogpullRecords(double: CloudflareDouble, zone: string, ...records: LogpullRecord[]): void {
  logpullZone(double, zone).records.push(...records)
}

function text(status: number, body: string, headers: Record<string, string> = {}): Reply {
  return { status, headers: { 'content-type': 'text/plain; charset=utf-8', ...headers }, stream: Readable.from([Buffer.from(body)]) }
}
const badQuery = (what: string): Reply => text(400, `bad query: ${what}`)

/** Unix s, Unix ns or RFC 3339 [REQ], as ms; null when none of them. */
export function parseLogpullTime(v: string | null): number | null {
  if (v === null || v === '') return null
  if (/^\d+$/.test(v)) {
    const n = BigInt(v)
    return n > 100_000_000_000n ? Number(n / 1_000_000n) : Number(n) * 1000
  }
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/.test(v)) return null
  const t = Date.parse(v)
  return Number.isNaN(t) ? null : t
}

/** A stored value rendered for the line: bigint ns timestamps in the requested format [REQ]. */
function render(v: unknown, timestamps: string): string {
  if (typeof v === 'bigint') {
    if (timestamps === 'unix') return (v / 1_000_000_000n).toString()
    if (timestamps === 'rfc3339') return JSON.stringify(new Date(Number(v / 1_000_000n)).toISOString().replace(/\.\d{3}Z$/, 'Z'))
    return v.toString()
  }
  return JSON.stringify(v)
}

/** One record's line. The field order of an answer is unspecified [REQ]; the docs' sample record is alphabetical, and so is the double. */
export function logpullLine(r: LogpullRecord, fields: readonly string[], timestamps: string): string {
  const parts: string[] = []
  for (const f of [...fields].sort()) if (f in r.fields) parts.push(`${JSON.stringify(f)}:${render(r.fields[f], timestamps)}`)
  return `{${parts.join(',')}}`
}

/** Sliding one-minute count; true when one more request fits (and takes it), else the seconds to wait. */
function take(times: number[], now: number, perMinute: number): true | number {
  while (times.length > 0 && times[0] <= now - 60_000) times.shift()
  if (times.length >= perMinute) return Math.max(1, Math.ceil((times[times.length - perMinute] + 60_000 - now) / 1000))
  times.push(now)
  return true
}

function userOf(req: DoubleRequest): string {
  return req.auth.kind === 'token' ? `token:${req.auth.token}` : `email:${req.auth.email.toLowerCase()}`
}

const tooMany = rateLimited

async function received(req: DoubleRequest, double: CloudflareDouble): Promise<Reply> {
  const state = logpullState(double)
  const zoneId = req.params.zone_id
  if (!double.zones.has(zoneId)) return fail(403, [{ code: 10000, message: 'Authentication error' }])
  const zone = logpullZone(double, zoneId)
  const now = double.now()

  // [MORE] a zone with too many timeouts is blocked for an hour.
  const blocked = state.blockedUntil.get(zoneId) ?? 0
  if (blocked > now) return tooMany(Math.ceil((blocked - now) / 1000))
  // [MORE] per-zone and per-user rates.
  const zoneTimes = state.zoneRequests.get(zoneId) ?? []
  state.zoneRequests.set(zoneId, zoneTimes)
  const userTimes = state.userRequests.get(userOf(req)) ?? []
  state.userRequests.set(userOf(req), userTimes)
  const z = take(zoneTimes, now, state.perZonePerMinute)
  if (z !== true) return tooMany(z)
  const u = take(userTimes, now, state.perUserPerMinute)
  if (u !== true) { zoneTimes.pop(); return tooMany(u) }

  if (!zone.retention) return text(400, 'Retention is not turned on. Please enable log retention') // [RET] [TEXT]
  const q = req.query
  const start = parseLogpullTime(q.get('start'))
  if (start === null) return badQuery('error parsing start time: must be unix timestamp or rfc3339 string')
  const end = parseLogpullTime(q.get('end'))
  if (end === null) return badQuery('error parsing end time: must be unix timestamp or rfc3339 string')
  if (!(start < end)) return badQuery('error parsing time: invalid time range: start not before end')
  if (end - start > state.maxWindowMs) return badQuery('error parsing time: invalid time range: too long: maximum time range is 1h0m0s') // INFERRED
  if (start < now - state.retentionMs) return badQuery('error parsing time: invalid time range: too early: logs older than 168h0m0s are not available')
  if (end > now - state.minDelayMs) return badQuery(`error parsing time: invalid time range: too recent: minimum delay in serving logs is ${state.minDelayMs / 60_000}m0s`)

  const timestamps = q.get('timestamps') ?? 'unixnano'
  if (!['unixnano', 'unix', 'rfc3339'].includes(timestamps)) return badQuery(`unknown timestamps format: ${timestamps}`) // INFERRED
  let fields: readonly string[] = LOGPULL_DEFAULT_FIELDS
  const asked = q.get('fields')
  if (asked !== null && asked !== '') {
    if (/\s/.test(asked)) return badQuery('fields must be a comma separated list without whitespace') // [OAS], text INFERRED
    fields = asked.split(',')
    const unknown = fields.find((f) => !(f in FIELD_CATALOGUE))
    if (unknown !== undefined) return badQuery(`unknown field: ${unknown}`) // [OAS], text INFERRED
  }
  let count = Infinity
  if (q.has('count')) {
    count = Number(q.get('count'))
    if (!Number.isInteger(count) || count <= 0) return badQuery('count must be an integer > 0') // [OAS], text INFERRED
  }
  let sample = 1
  if (q.has('sample')) {
    sample = Number(q.get('sample'))
    if (!(sample > 0 && sample <= 1)) return badQuery('sample must be > 0 and <= 1') // [REQ], text INFERRED
  }

  // [MORE] 408 when the answer stays idle for the idle timeout; more than N an hour block the zone.
  const delay = zone.firstByteDelayMs ?? 0
  if (delay >= state.idleTimeoutMs) {
    await sleep(state.idleTimeoutMs)
    const t = (state.timeouts.get(zoneId) ?? []).filter((x) => x > double.now() - 3_600_000)
    t.push(double.now())
    state.timeouts.set(zoneId, t)
    if (t.length > state.timeoutsPerHour) state.blockedUntil.set(zoneId, double.now() + state.blockMs)
    return text(408, 'request timeout: the query was idle for too long; request fewer fields or a shorter time range') // INFERRED text
  }
  if (delay > 0) await sleep(delay)

  // [BASIC] selected by received time, start inclusive, end exclusive; [FAQ] only what is visible yet.
  let selected = zone.records.filter((r) => r.receivedAt >= start && r.receivedAt < end && (r.visibleAt ?? r.receivedAt) <= now)
  if (sample < 1) selected = selected.filter(() => Math.random() < sample)
  if (selected.length > count) selected = selected.slice(0, count)
  // [MORE] the order may differ between calls: the double reverses it on every other call.
  if (zoneTimes.length % 2 === 0) selected = [...selected].reverse()
  let trailerAfter = Infinity
  if (zone.trailer && zone.trailer.times > 0) {
    zone.trailer.times--
    zone.trailersSent = (zone.trailersSent ?? 0) + 1
    trailerAfter = zone.trailer.afterRecords
  }
  const body = Readable.from(chunks(selected, fields, timestamps, zone.chunkRecords, trailerAfter))
  const headers: Record<string, string> = { 'content-type': 'application/x-ndjson' }
  if (!zone.gzip) return { status: 200, headers, stream: body }
  return { status: 200, headers: { ...headers, 'content-encoding': 'gzip' }, stream: body.pipe(createGzip({ flush: zlib.Z_SYNC_FLUSH /* each chunk leaves at once */ })) }
}

function * chunks(records: LogpullRecord[], fields: readonly string[], timestamps: string, per: number, trailerAfter: number): Generator<Buffer> {
  let buf = ''
  for (let i = 0; i < records.length; i++) {
    if (i === trailerAfter) break
    buf += logpullLine(records[i], fields, timestamps) + '\n'
    if ((i + 1) % per === 0) { yield Buffer.from(buf); buf = '' }
  }
  if (trailerAfter <= records.length) buf += 'Error streaming data.\n' // [MORE]
  if (buf !== '') yield Buffer.from(buf)
}

export const logpullRoutes: Route[] = [
  { method: 'GET', pattern: '/zones/:zone_id/logs/received', operationId: 'logs-received-get-logs-received', permission: 'logs:read', handle: received },
  {
    // requesting-logs.mdx "Fields": a JSON object of field name → description (not the v4 envelope).
    method: 'GET',
    pattern: '/zones/:zone_id/logs/received/fields',
    operationId: 'logs-received-list-fields',
    permission: 'logs:read',
    handle: (req, double) => double.zones.has(req.params.zone_id) ? { status: 200, json: FIELD_CATALOGUE } : fail(403, [{ code: 10000, message: 'Authentication error' }])
  },
  {
    method: 'GET',
    pattern: '/zones/:zone_id/logs/control/retention/flag',
    operationId: 'logs-received-get-log-retention-flag',
    permission: 'logs:read',
    handle: (req, double) => double.zones.has(req.params.zone_id)
      ? ok({ flag: logpullState(double).zones.get(req.params.zone_id)?.retention ?? false })
      : fail(403, [{ code: 10000, message: 'Authentication error' }])
  },
  {
    method: 'POST',
    pattern: '/zones/:zone_id/logs/control/retention/flag',
    operationId: 'logs-received-update-log-retention-flag',
    permission: 'logs:write',
    handle: (req, double) => {
      if (!double.zones.has(req.params.zone_id)) return fail(403, [{ code: 10000, message: 'Authentication error' }])
      const flag = (req.json as { flag?: unknown } | undefined)?.flag
      if (typeof flag !== 'boolean') return fail(400, [{ code: 1004, message: 'flag must be a boolean' }]) // text INFERRED
      logpullZone(double, req.params.zone_id).retention = flag
      return ok({ flag })
    }
  }
]
