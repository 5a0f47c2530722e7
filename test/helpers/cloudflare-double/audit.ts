/**
 * Account audit logs in the Cloudflare API double, v1 and v2. Sources:
 *   [V1]  cloudflare/api-schemas openapi.json operation `audit-logs-get-account-audit-logs`
 *         (GET /accounts/{account_id}/audit_logs; query since, before (RFC 3339 date or date-time),
 *         direction desc (default) | asc, per_page default 100, min 1, max 1000, page default 1;
 *         result_info {page, per_page, count, total_count}); cloudflare/cloudflare-typescript
 *         src/resources/audit-logs.ts and src/resources/shared.ts (AuditLog: id, action {type, result},
 *         actor {id, email, ip, type}, interface, metadata, newValue, oldValue, owner {id},
 *         resource {id, type}, when) and src/core/pagination.ts (V4PagePaginationArray: page+1).
 *   [V2]  openapi.json operation `audit-logs-v2-get-account-audit-logs` (GET
 *         /accounts/{account_id}/logs/audit; since and before required; limit default 100, min 1,
 *         max 1000; direction desc | asc; cursor, an opaque token from the previous answer's
 *         result_info; "available only for the past 30 days"); cloudflare/cloudflare-typescript
 *         src/resources/accounts/logs/audit.ts (AuditListResponse: id, account, action {description,
 *         result, time, type}, actor {id, context, email, ip_address, token_id, token_name, type},
 *         raw, resource, zone). The schema's `aaa_result_info` is {count (a string), cursor}; the
 *         SDK's CursorPaginationAfter reads result_info.cursors.after: the double sends both.
 *   [AUTH] Both need Account Settings Read (or Write) for a token (openapi.json
 *         x-api-token-group), the double's permission 'audit:read'.
 *   [LATE] Records may show up in the API some time after the action: the docs state no bound
 *         (developers.cloudflare.com/fundamentals/account/account-security/audit-logs/ describes
 *         a streaming pipeline; v2 is beta and "may have gaps"). Each record here carries its own
 *         `visibleAt`, so a test chooses the delay; the collector's delaySeconds must cover it.
 * Whether since/before are inclusive is not documented: the double takes since inclusive and
 * before exclusive, and the collector does not depend on it (it asks a second more on each side
 * and keeps [start, end) itself).
 */
import { fail, ok, type CloudflareDouble, type DoubleRequest, type Reply, type Route } from './server.js'

export interface AuditEntry<R> {
  readonly record: R
  /** When (double's clock, ms) the record starts to appear in answers. */
  readonly visibleAt: number
  /** The record's time (ms): v1 `when`, v2 `action.time`. */
  readonly at: number
}

export interface AuditV1Record {
  id: string
  action: { type: string, result: boolean }
  actor: { id: string, email: string, ip: string, type: 'user' | 'admin' | 'Cloudflare' }
  interface: string
  metadata: Record<string, unknown>
  newValue: string
  oldValue: string
  owner: { id: string }
  resource: { id: string, type: string }
  when: string
}

export interface AuditV2Record {
  id: string
  account: { id: string, name: string }
  action: { description: string, result: string, time: string, type: string }
  actor: { id: string, context: string, email: string, ip_address: string, token_id?: string, token_name?: string, type: string }
  raw: { cf_ray_id: string, method: string, status_code: number, uri: string, user_agent: string }
  resource: { id: string, product: string, request: Record<string, unknown>, response: Record<string, unknown>, scope: string, type: string }
  zone?: { id: string, name: string }
}

export interface AuditState {
  readonly v1: Map<string, Array<AuditEntry<AuditV1Record>>>
  readonly v2: Map<string, Array<AuditEntry<AuditV2Record>>>
}

export function auditState(double: CloudflareDouble): AuditState {
  return double.area<AuditState>('audit', () => ({ v1: new Map(), v2: new Map() }))
}

/** Adds a v1 record of `account` at time `at` (ms), visible from `visibleAt` (default: now). */
export function addAuditV1(double: CloudflareDouble, account: string, at: number, fields: Partial<AuditV1Record> & { id: string }, visibleAt = double.now()): AuditV1Record {
  const record: AuditV1Record = {
    action: { type: 'update', result: true },
    actor: { id: 'f6b5de0326bb5182b8a4840ee01ec774', email: 'admin@example.com', ip: '198.51.100.7', type: 'user' },
    interface: 'API',
    metadata: {},
    newValue: '{"enabled":true}',
    oldValue: '{"enabled":false}',
    owner: { id: 'f6b5de0326bb5182b8a4840ee01ec774' },
    resource: { id: 'c1a7d0f7e3b14f3c9a2f0d64a0f4b1aa', type: 'zone.settings' },
    when: new Date(at).toISOString(),
    ...fields
  }
  const list = auditState(double).v1.get(account) ?? []
  list.push({ record, visibleAt, at })
  auditState(double).v1.set(account, list)
  return record
}

/** Adds a v2 record of `account` at time `at` (ms), visible from `visibleAt` (default: now). */
export function addAuditV2(double: CloudflareDouble, account: string, at: number, fields: Partial<AuditV2Record> & { id: string }, visibleAt = double.now()): AuditV2Record {
  const record: AuditV2Record = {
    account: { id: account, name: 'Example account' },
    action: { description: 'Update zone setting', result: 'success', time: new Date(at).toISOString(), type: 'update' },
    actor: { id: 'f6b5de0326bb5182b8a4840ee01ec774', context: 'api_token', email: 'admin@example.com', ip_address: '198.51.100.7', token_id: 'b0f3e7c4c0a24c8d9e1f2a3b4c5d6e7f', token_name: 'terraform', type: 'user' },
    raw: { cf_ray_id: '8e8b1c2d3e4f5a6b', method: 'PATCH', status_code: 200, uri: '/client/v4/zones/x/settings/ssl', user_agent: 'terraform' },
    resource: { id: 'ssl', product: 'zones', request: { value: 'strict' }, response: { value: 'strict' }, scope: 'zones', type: 'zone.setting' },
    zone: { id: '023e105f4ecef8ad9ca31a8372d0c353', name: 'example.com' },
    ...fields
  }
  const list = auditState(double).v2.get(account) ?? []
  list.push({ record, visibleAt, at })
  auditState(double).v2.set(account, list)
  return record
}

/** An RFC 3339 date (2019-04-30, UTC) or date-time, as ms; NaN otherwise [V1][V2]. */
function parseTime(s: string | null): number {
  if (s === null) return NaN
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) return Date.parse(s + 'T00:00:00Z')
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/i.test(s)) return NaN
  return Date.parse(s)
}

// A malformed query gets a 400 with the v4 envelope; the API's exact codes for these are not
// documented, so the double uses the generic "bad request" 400 and its own message.
function badRequest(message: string): Reply { return fail(400, [{ code: 10400, message }]) }

/** The visible entries of the window, sorted by time in the asked direction (id breaks ties). */
function select<R>(double: CloudflareDouble, list: ReadonlyArray<AuditEntry<R>> | undefined, since: number, before: number, direction: string, id: (r: R) => string): Array<AuditEntry<R>> {
  const now = double.now()
  const out = (list ?? []).filter((e) => e.visibleAt <= now && (Number.isNaN(since) || e.at >= since) && (Number.isNaN(before) || e.at < before))
  out.sort((a, b) => a.at - b.at || (id(a.record) < id(b.record) ? -1 : 1))
  return direction === 'asc' ? out : out.reverse()
}

function intParam(q: URLSearchParams, name: string, dflt: number, min: number, max: number): number | Reply {
  const raw = q.get(name)
  if (raw === null) return dflt
  const n = Number(raw)
  if (!Number.isInteger(n) || n < min || n > max) return badRequest(`${name} must be an integer from ${min} to ${max}`)
  return n
}

function timeParams(q: URLSearchParams, required: boolean): { since: number, before: number } | Reply {
  const out = { since: NaN, before: NaN }
  for (const name of ['since', 'before'] as const) {
    const raw = q.get(name)
    if (raw === null) {
      if (required) return badRequest(`${name} is required`)
      continue
    }
    out[name] = parseTime(raw)
    if (Number.isNaN(out[name])) return badRequest(`${name} must be an RFC 3339 date or date-time`)
  }
  return out
}

function direction(q: URLSearchParams): string | Reply {
  const d = q.get('direction') ?? 'desc'
  return d === 'asc' || d === 'desc' ? d : badRequest('direction must be asc or desc')
}

function accountKnown(double: CloudflareDouble, req: DoubleRequest): Reply | null {
  // An account the credential may not see answers like a missing permission [AUTH].
  return double.accounts.has(req.params.account_id!) ? null : fail(403, [{ code: 10000, message: 'Authentication error' }])
}

/** What both versions ask of a list: a known account, the time bounds (required in v2), a direction. */
function listQuery(req: DoubleRequest, double: CloudflareDouble, v2: boolean): { since: number, before: number, dir: string } | Reply {
  const unknown = accountKnown(double, req)
  if (unknown) return unknown
  const t = timeParams(req.query, v2)
  if ('status' in t) return t
  const dir = direction(req.query)
  if (typeof dir !== 'string') return dir
  return { ...t, dir }
}

const listV1: Route['handle'] = (req, double) => {
  const q = listQuery(req, double, false)
  if ('status' in q) return q
  const { since, before, dir } = q
  const perPage = intParam(req.query, 'per_page', 100, 1, 1000)
  if (typeof perPage !== 'number') return perPage
  const page = intParam(req.query, 'page', 1, 1, Number.MAX_SAFE_INTEGER)
  if (typeof page !== 'number') return page
  const all = select(double, auditState(double).v1.get(req.params.account_id!), since, before, dir, (r) => r.id)
  const slice = all.slice((page - 1) * perPage, page * perPage).map((e) => e.record)
  return ok(slice, { page, per_page: perPage, count: slice.length, total_count: all.length })
}

/** The v2 cursor: opaque to clients; here the position after the last record answered, with the query it belongs to. */
function encodeCursor(offset: number, key: string): string {
  return Buffer.from(JSON.stringify({ o: offset, k: key })).toString('base64url')
}

function decodeCursor(cursor: string, key: string): number | null {
  try {
    const c = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as { o?: unknown, k?: unknown }
    return typeof c.o === 'number' && c.k === key ? c.o : null
  } catch { return null }
}

const listV2: Route['handle'] = (req, double) => {
  const q = listQuery(req, double, true)
  if ('status' in q) return q
  const { since, before, dir } = q
  const limit = intParam(req.query, 'limit', 100, 1, 1000)
  if (typeof limit !== 'number') return limit
  // A cursor belongs to the query it came from.
  const key = `${req.params.account_id}|${req.query.get('since')}|${req.query.get('before')}|${dir}`
  const raw = req.query.get('cursor')
  const offset = raw === null ? 0 : decodeCursor(raw, key)
  if (offset === null) return badRequest('invalid cursor')
  const all = select(double, auditState(double).v2.get(req.params.account_id!), since, before, dir, (r) => r.id)
  const slice = all.slice(offset, offset + limit).map((e) => e.record)
  const more = offset + limit < all.length
  const cursor = more ? encodeCursor(offset + limit, key) : undefined
  return ok(slice, { count: String(slice.length), ...(cursor ? { cursor, cursors: { after: cursor } } : {}) })
}

export const auditRoutes: Route[] = [
  { method: 'GET', pattern: '/accounts/:account_id/audit_logs', operationId: 'audit-logs-get-account-audit-logs', permission: 'audit:read', handle: listV1 },
  { method: 'GET', pattern: '/accounts/:account_id/logs/audit', operationId: 'audit-logs-v2-get-account-audit-logs', permission: 'audit:read', handle: listV2 }
]
