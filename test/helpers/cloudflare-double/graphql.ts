/**
 * The GraphQL Analytics API in the Cloudflare API double, for Logpush job health, and a simulation
 * of a job's uploads that feeds it and the job's own status fields.
 *
 * Endpoint and wire format:
 *   [GQL-EP]  `POST /client/v4/graphql`, body `{"query": "...", "variables": {...}}`, the usual API
 *             credentials (`Authorization: Bearer <token>`). CF docs
 *             analytics/graphql-api/getting-started/execute-graphql-query.mdx. Not an OpenAPI
 *             operation: the route has no operationId, so the schema check skips it.
 *   [GQL-ERR] Answers are `{data, errors}`; `errors` is null without errors, else objects with
 *             `message`, `path` and `extensions.timestamp`. "A 200 response can contain an error";
 *             the documented statuses: parse errors and `unknown field...` 400, `limit must be
 *             positive number and not greater than...` 400, `cannot request data older than...` 400,
 *             `zones [...] are not authorized` / `not authorized for that account` 403,
 *             `does not have access to the path...` 403 (a token without Analytics Read).
 *             CF docs analytics/graphql-api/errors.mdx.
 *   [GQL-Q]   `viewer { zones(filter: {zoneTag: $tag}) {...} }` and `viewer { accounts(filter:
 *             {accountTag: $tag}) {...} }`; dataset filters `k: v` and `k_op: v` with the scalar
 *             operators gt, lt, geq, leq, neq, in (CF docs analytics/graphql-api/features/
 *             filtering.mdx); `limit`; `orderBy: [<field>_ASC|_DESC]` (execute-graphql-query.mdx
 *             example: `orderBy: [datetime_DESC]`).
 *   [LPH]     Dataset `logpushHealthAdaptiveGroups` (CF docs logs/logpush/logpush-health.mdx: "the
 *             raw health metrics can be queried via the logpushHealthAdaptiveGroups dataset";
 *             30 days of health data in the dashboard). Its fields are published only through the
 *             schema (introspection); the ones served here are those public collectors query:
 *             `count`, `dimensions { jobId status final datetime destinationType }`
 *             (lablabs/cloudflare-exporter cloudflare.go, FetchLogpushZone/FetchLogpushAccount),
 *             `datetimeMinute`, and `sum { uploads records bytes bytesCompressed }` (a collector's
 *             dataset registry generated from introspection, 2026-03). `status` is the upload's
 *             HTTP status, or one of Cloudflare's synthetic codes 1101-1108/1201 (cloudflare-docs PR
 *             20684, 32514); `final` is 1 on the attempt after which the batch is given up or
 *             delivered, 0 on an attempt that will be retried (health page: "Retry attempts").
 *
 * Job status fields and auto-disable (the simulation):
 *   [JOB]     A failed upload sets `last_error` (time) and `error_message` (e.g. `error 415: error
 *             pushing: error uploading to https: 415 {...}`, elastic/integrations#8342); a success sets
 *             `last_complete` and resets both error fields to null (cloudflare-typescript
 *             src/resources/logpush/jobs.ts).
 *   [DIS]     After about 24 hours of continuous failure the job is disabled (cloudflare-docs PR
 *             32514); `disableAfterMs` (default 24 h) sets that time here.
 *
 * Not implemented (honestly): fragments, directives, mutations, `AND`/`OR` and `like` in filters,
 * `zoneTag_in`/`zoneTag_gt` and omitting the zone filter (all zones), any
 * dataset but logpushHealthAdaptiveGroups, any other field of it (destinationType's values are not
 * published: asking for it gets a "not implemented by the double" error, distinct from the real
 * API's `unknown field` error for fields the schema does not have), `avg`/`max`/`quantiles`,
 * introspection, and the API's rate limits (300 queries per 5 minutes, CF docs analytics/graphql-api/limits.mdx).
 */
import { type CloudflareDouble, type DoubleRequest, type Reply, type Route } from './server.js'
import { jobsState, type DoubleJob } from './jobs.js'

// ---------------------------------------------------------------------------------------------
// A small GraphQL reader: enough of the June 2018 grammar for the queries above.

type Value =
  | { kind: 'var', name: string }
  | { kind: 'int' | 'float', value: number }
  | { kind: 'string', value: string }
  | { kind: 'bool', value: boolean }
  | { kind: 'null' }
  | { kind: 'enum', value: string }
  | { kind: 'list', items: Value[] }
  | { kind: 'object', fields: Map<string, Value> }

export interface Field {
  readonly alias: string
  readonly name: string
  readonly args: Map<string, Value>
  readonly selections: Field[] | null
}

export interface Operation {
  readonly variables: Map<string, { type: string, defaultValue?: Value }>
  readonly selections: Field[]
}

export class GraphQLSyntaxError extends Error {}

const TOKEN = /\s*(?:#[^\n]*\n?\s*)*(\.\.\.|[{}()[\]:$!=@|,]|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|"(?:[^"\\\n]|\\.)*"|[_A-Za-z][_0-9A-Za-z]*)/y

function tokenize(text: string): string[] {
  const out: string[] = []
  TOKEN.lastIndex = 0
  let at = 0
  for (;;) {
    const trailing = /\s*(?:#[^\n]*(?:\n|$)\s*)*/y
    trailing.lastIndex = at
    trailing.exec(text)
    at = trailing.lastIndex
    if (at >= text.length) return out
    TOKEN.lastIndex = at
    const m = TOKEN.exec(text)
    if (!m) throw new GraphQLSyntaxError(`Syntax Error: Unexpected character "${text[at]}" at ${at}`)
    // Commas are insignificant in GraphQL.
    if (m[1] !== ',') out.push(m[1]!)
    at = TOKEN.lastIndex
  }
}

export function parseQuery(text: string): Operation {
  const t = tokenize(text)
  let i = 0
  const peek = (): string | undefined => t[i]
  const next = (): string => {
    if (i >= t.length) throw new GraphQLSyntaxError('Syntax Error: Unexpected <EOF>')
    return t[i++]!
  }
  const expect = (s: string): void => {
    const got = next()
    if (got !== s) throw new GraphQLSyntaxError(`Syntax Error: Expected "${s}", found "${got}"`)
  }
  const name = (): string => {
    const got = next()
    if (!/^[_A-Za-z]/.test(got)) throw new GraphQLSyntaxError(`Syntax Error: Expected Name, found "${got}"`)
    return got
  }
  const value = (): Value => {
    const tok = next()
    if (tok === '$') return { kind: 'var', name: name() }
    if (tok === '[') {
      const items: Value[] = []
      while (peek() !== ']') items.push(value())
      expect(']')
      return { kind: 'list', items }
    }
    if (tok === '{') {
      const fields = new Map<string, Value>()
      while (peek() !== '}') { const n = name(); expect(':'); fields.set(n, value()) }
      expect('}')
      return { kind: 'object', fields }
    }
    if (tok.startsWith('"')) return { kind: 'string', value: JSON.parse(tok) as string }
    if (/^-?\d/.test(tok)) return /[.eE]/.test(tok) ? { kind: 'float', value: Number(tok) } : { kind: 'int', value: Number(tok) }
    if (tok === 'true' || tok === 'false') return { kind: 'bool', value: tok === 'true' }
    if (tok === 'null') return { kind: 'null' }
    if (/^[_A-Za-z]/.test(tok)) return { kind: 'enum', value: tok }
    throw new GraphQLSyntaxError(`Syntax Error: Unexpected "${tok}"`)
  }
  const type = (): string => {
    if (peek() === '[') { next(); const inner = type(); expect(']'); return `[${inner}]${bang()}` }
    return name() + bang()
  }
  const bang = (): string => (peek() === '!' ? (next(), '!') : '')
  const selectionSet = (): Field[] => {
    expect('{')
    const fields: Field[] = []
    while (peek() !== '}') {
      if (peek() === '...') throw new GraphQLSyntaxError('double: fragments are not implemented')
      let alias = name()
      let fieldName = alias
      if (peek() === ':') { next(); fieldName = name() }
      const args = new Map<string, Value>()
      if (peek() === '(') {
        next()
        while (peek() !== ')') { const n = name(); expect(':'); args.set(n, value()) }
        expect(')')
      }
      if (peek() === '@') throw new GraphQLSyntaxError('double: directives are not implemented')
      fields.push({ alias, name: fieldName, args, selections: peek() === '{' ? selectionSet() : null })
      alias = ''
    }
    expect('}')
    return fields
  }
  const variables = new Map<string, { type: string, defaultValue?: Value }>()
  if (peek() !== '{') {
    const op = name()
    if (op !== 'query') throw new GraphQLSyntaxError(`double: only queries are implemented, not "${op}"`)
    if (peek() !== '(' && peek() !== '{') name()
    if (peek() === '(') {
      next()
      while (peek() !== ')') {
        expect('$')
        const n = name()
        expect(':')
        const ty = type()
        let defaultValue: Value | undefined
        if (peek() === '=') { next(); defaultValue = value() }
        variables.set(n, { type: ty, defaultValue })
      }
      expect(')')
    }
  }
  const selections = selectionSet()
  if (i !== t.length) throw new GraphQLSyntaxError('double: one operation per request is implemented')
  return { variables, selections }
}

// ---------------------------------------------------------------------------------------------
// The simulation: per job, upload attempts over time.

export interface UploadAttempt {
  /** ms since epoch */
  readonly at: number
  /** HTTP status of the destination's answer, or a synthetic code (1101-1108, 1201). */
  readonly status: number
  /** 1: the batch is delivered or given up; 0: the attempt will be retried. */
  readonly final: 0 | 1
  readonly records: number
  readonly bytes: number
  readonly bytesCompressed: number
  /** What the failure said (becomes the job's error_message); null for a success. */
  readonly message: string | null
}

export interface HealthState {
  readonly attempts: Map<number, UploadAttempt[]>
  /** [DIS] continuous failure after which the double disables a job. */
  disableAfterMs: number
  /** [LPH] how far back the dataset answers. */
  retentionMs: number
}

export function healthState(double: CloudflareDouble): HealthState {
  return double.area<HealthState>('logpushHealth', () => ({ attempts: new Map(), disableAfterMs: 24 * 3600_000, retentionMs: 30 * 24 * 3600_000 }))
}

export type UploadOutcome =
  | { readonly ok: true, readonly records?: number, readonly bytes?: number }
  | { readonly ok: false, readonly status: number, readonly message: string, readonly final?: boolean }

/**
 * One upload attempt of a job at `at` (the double's clock by default): recorded for the GraphQL
 * dataset, and applied to the job's fields [JOB]; a job failing without a success for
 * disableAfterMs is disabled [DIS].
 */
export function recordUpload(double: CloudflareDouble, job: DoubleJob, outcome: UploadOutcome, at = double.now()): void {
  const state = healthState(double)
  const list = state.attempts.get(job.id) ?? []
  state.attempts.set(job.id, list)
  if (outcome.ok) {
    const records = outcome.records ?? 1000
    const bytes = outcome.bytes ?? records * 500
    list.push({ at, status: 200, final: 1, records, bytes, bytesCompressed: Math.round(bytes / 10), message: null })
    job.last_complete = new Date(at).toISOString()
    job.last_error = null
    job.error_message = null
    return
  }
  list.push({ at, status: outcome.status, final: outcome.final === true ? 1 : 0, records: 0, bytes: 0, bytesCompressed: 0, message: outcome.message })
  job.last_error = new Date(at).toISOString()
  job.error_message = outcome.message
  const lastOk = Math.max(-Infinity, ...list.filter((a) => a.status >= 200 && a.status < 300).map((a) => a.at))
  const firstFailure = Math.min(...list.filter((a) => a.at > lastOk && !(a.status >= 200 && a.status < 300)).map((a) => a.at))
  if (at - firstFailure >= state.disableAfterMs) job.enabled = false
}

/** Attempts every `everyMs` from `from` to `to` (exclusive), each with `outcome`. */
export function recordUploads(double: CloudflareDouble, job: DoubleJob, outcome: UploadOutcome, from: number, to: number, everyMs: number): void {
  for (let at = from; at < to && job.enabled; at += everyMs) recordUpload(double, job, outcome, at)
}

// ---------------------------------------------------------------------------------------------
// Executing a query.

class QueryError extends Error {
  constructor(readonly status: number, message: string, readonly path?: Array<string | number>) { super(message) }
}

const DIMENSIONS = new Set(['jobId', 'status', 'final', 'datetime', 'datetimeMinute'])
const KNOWN_BUT_NOT_SERVED_DIMENSIONS = new Set(['destinationType', 'datetimeFiveMinutes', 'datetimeFifteenMinutes', 'datetimeHour', 'date'])
const SUMS = new Set(['uploads', 'records', 'bytes', 'bytesCompressed'])
const FILTERABLE: Record<string, (a: UploadAttempt, jobId: number) => number> = {
  datetime: (a) => a.at,
  datetimeMinute: (a) => Math.floor(a.at / 60_000) * 60_000,
  jobId: (_a, jobId) => jobId,
  status: (a) => a.status,
  final: (a) => a.final
}

function resolve(v: Value, vars: Record<string, unknown>, path: Array<string | number>): unknown {
  switch (v.kind) {
    case 'var':
      if (!(v.name in vars)) throw new QueryError(400, `error parsing args: variable "$${v.name}" has no value`, path)
      return vars[v.name]
    case 'int': case 'float': case 'string': case 'bool': case 'enum': return v.value
    case 'null': return null
    case 'list': return v.items.map((x) => resolve(x, vars, path))
    case 'object': return Object.fromEntries([...v.fields].map(([k, x]) => [k, resolve(x, vars, path)]))
  }
}

/** A filter value as a number to compare with (times as ms). */
function comparable(field: string, v: unknown, path: Array<string | number>): number {
  if (field.startsWith('datetime')) {
    const t = Date.parse(String(v))
    if (!Number.isFinite(t)) throw new QueryError(400, `error parsing args: ${field}: "${String(v)}" is not a Time`, path)
    return t
  }
  const n = Number(v)
  if (!Number.isFinite(n)) throw new QueryError(400, `error parsing args: ${field}: ${JSON.stringify(v)} is not a number`, path)
  return n
}

function matcher(filter: Record<string, unknown>, path: Array<string | number>): (a: UploadAttempt, jobId: number) => boolean {
  const tests: Array<(a: UploadAttempt, jobId: number) => boolean> = []
  for (const [key, raw] of Object.entries(filter)) {
    if (raw === null || raw === undefined) continue
    if (key === 'AND' || key === 'OR' || key.endsWith('_like')) throw new QueryError(400, `double: filter "${key}" is not implemented by the double`, path)
    const m = /^([A-Za-z]+?)(?:_(geq|gt|leq|lt|neq|in))?$/.exec(key)
    const get = m ? FILTERABLE[m[1]!] : undefined
    if (!m || !get) throw new QueryError(400, `unknown field "${key}" in filter`, path)
    const [, field, op] = m as unknown as [string, string, string | undefined]
    if (op === 'in') {
      if (!Array.isArray(raw)) throw new QueryError(400, `error parsing args: ${key} must be a list`, path)
      const set = new Set(raw.map((x) => comparable(field, x, path)))
      tests.push((a, j) => set.has(get(a, j)))
      continue
    }
    const want = comparable(field, raw, path)
    const cmp = { geq: (x: number) => x >= want, gt: (x: number) => x > want, leq: (x: number) => x <= want, lt: (x: number) => x < want, neq: (x: number) => x !== want }
    const f = op === undefined ? (x: number) => x === want : cmp[op as keyof typeof cmp]
    tests.push((a, j) => f(get(a, j)))
  }
  return (a, j) => tests.every((t) => t(a, j))
}

function groups(double: CloudflareDouble, jobs: DoubleJob[], field: Field, vars: Record<string, unknown>, path: Array<string | number>): unknown[] {
  const state = healthState(double)
  const known = new Set(['filter', 'limit', 'orderBy'])
  for (const a of field.args.keys()) if (!known.has(a)) throw new QueryError(400, `unknown argument "${a}" on field "logpushHealthAdaptiveGroups"`, path)
  const limit = field.args.has('limit') ? Number(resolve(field.args.get('limit')!, vars, path)) : NaN
  if (!Number.isInteger(limit) || limit <= 0 || limit > 10_000) throw new QueryError(400, 'limit must be positive number and not greater than 10000', path)
  const filter = (field.args.has('filter') ? resolve(field.args.get('filter')!, vars, path) : {}) as Record<string, unknown>
  if (typeof filter !== 'object' || filter === null || Array.isArray(filter)) throw new QueryError(400, 'error parsing args: filter must be an object', path)
  for (const k of ['datetime_geq', 'datetime_gt', 'datetimeMinute_geq', 'datetimeMinute_gt']) {
    if (filter[k] !== undefined && filter[k] !== null && double.now() - comparable('datetime', filter[k], path) > state.retentionMs) {
      throw new QueryError(400, `cannot request data older than ${state.retentionMs / 1000}s`, path)
    }
  }
  const match = matcher(filter, path)
  if (!field.selections) throw new QueryError(400, 'object field must have selections', path)
  // What each row is grouped by, and what it sums.
  const dims: string[] = []
  const sums: string[] = []
  const shape: Array<{ alias: string, kind: 'count' } | { alias: string, kind: 'dimensions' | 'sum', fields: Array<{ alias: string, name: string }> }> = []
  for (const s of field.selections) {
    if (s.name === 'count') { if (s.selections) throw new QueryError(400, 'scalar fields must have no selections', path); shape.push({ alias: s.alias, kind: 'count' }); continue }
    if (s.name === 'dimensions' || s.name === 'sum') {
      if (!s.selections) throw new QueryError(400, 'object field must have selections', path)
      const allowed = s.name === 'dimensions' ? DIMENSIONS : SUMS
      for (const f of s.selections) {
        if (s.name === 'dimensions' && KNOWN_BUT_NOT_SERVED_DIMENSIONS.has(f.name)) throw new QueryError(400, `double: dimension "${f.name}" of logpushHealthAdaptiveGroups is not implemented by the double`, path)
        if (!allowed.has(f.name)) throw new QueryError(400, `unknown field "${f.name}"`, [...path, s.alias])
        if (f.selections) throw new QueryError(400, 'scalar fields must have no selections', path)
        ;(s.name === 'dimensions' ? dims : sums).push(f.name)
      }
      shape.push({ alias: s.alias, kind: s.name, fields: s.selections.map((f) => ({ alias: f.alias, name: f.name })) })
      continue
    }
    if (s.name === 'avg' || s.name === 'max' || s.name === 'quantiles') throw new QueryError(400, `double: "${s.name}" of logpushHealthAdaptiveGroups is not implemented by the double`, path)
    throw new QueryError(400, `unknown field "${s.name}"`, path)
  }
  const dimValue = (name: string, a: UploadAttempt, jobId: number): unknown =>
    name === 'jobId' ? jobId : name === 'status' ? a.status : name === 'final' ? a.final
      : name === 'datetime' ? new Date(a.at).toISOString().replace(/\.\d{3}Z$/, 'Z') : new Date(Math.floor(a.at / 60_000) * 60_000).toISOString().replace(/\.\d{3}Z$/, 'Z')
  const rows = new Map<string, { dims: Record<string, unknown>, count: number, sum: Record<string, number> }>()
  for (const job of jobs) {
    for (const a of state.attempts.get(job.id) ?? []) {
      if (!match(a, job.id)) continue
      const d = Object.fromEntries(dims.map((n) => [n, dimValue(n, a, job.id)]))
      const k = JSON.stringify(d)
      let row = rows.get(k)
      if (!row) rows.set(k, (row = { dims: d, count: 0, sum: { uploads: 0, records: 0, bytes: 0, bytesCompressed: 0 } }))
      row.count++
      // Without a source telling `sum.uploads` from `count`, both are the attempts in the group.
      row.sum.uploads! += 1
      row.sum.records! += a.records
      row.sum.bytes! += a.bytes
      row.sum.bytesCompressed! += a.bytesCompressed
    }
  }
  let list = [...rows.values()]
  const orderBy = field.args.has('orderBy') ? resolve(field.args.get('orderBy')!, vars, path) : []
  for (const o of (Array.isArray(orderBy) ? orderBy : [orderBy]).reverse()) {
    const m = /^(\w+)_(ASC|DESC)$/.exec(String(o))
    if (!m || !dims.includes(m[1]!)) throw new QueryError(400, `error parsing args: cannot order by "${String(o)}" (order by a selected dimension)`, path)
    const sign = m[2] === 'ASC' ? 1 : -1
    list = list.sort((x, y) => (String(x.dims[m[1]!]) < String(y.dims[m[1]!]) ? -sign : String(x.dims[m[1]!]) > String(y.dims[m[1]!]) ? sign : 0))
  }
  return list.slice(0, limit).map((row) => Object.fromEntries(shape.map((s) => [
    s.alias,
    s.kind === 'count' ? row.count : Object.fromEntries(s.fields.map((f) => [f.alias, s.kind === 'dimensions' ? row.dims[f.name] : row.sum[f.name]]))
  ])))
}

function execute(double: CloudflareDouble, req: DoubleRequest, op: Operation, vars: Record<string, unknown>): unknown {
  for (const [name, def] of op.variables) {
    if (!(name in vars)) {
      if (def.defaultValue !== undefined) vars[name] = resolve(def.defaultValue, {}, [])
      else if (def.type.endsWith('!')) throw new QueryError(400, `error parsing args: variable "$${name}" of type "${def.type}" is required`)
    }
  }
  const data: Record<string, unknown> = {}
  for (const top of op.selections) {
    if (top.name !== 'viewer') throw new QueryError(400, `unknown field "${top.name}"`, [top.alias])
    if (!top.selections) throw new QueryError(400, 'object field must have selections', [top.alias])
    const viewer: Record<string, unknown> = {}
    for (const scopeField of top.selections) {
      const path: Array<string | number> = [top.alias, scopeField.alias]
      if (scopeField.name !== 'zones' && scopeField.name !== 'accounts') throw new QueryError(400, `unknown field "${scopeField.name}"`, path)
      const isZone = scopeField.name === 'zones'
      const tagName = isZone ? 'zoneTag' : 'accountTag'
      const filter = scopeField.args.has('filter') ? resolve(scopeField.args.get('filter')!, vars, path) as Record<string, unknown> : {}
      const extra = Object.keys(filter ?? {}).filter((k) => k !== tagName)
      if (extra.length > 0) throw new QueryError(400, `double: filter "${extra[0]}" on ${scopeField.name} is not implemented by the double`, path)
      const tag = filter?.[tagName]
      if (typeof tag !== 'string') throw new QueryError(400, `double: ${scopeField.name} without a filter {${tagName}: "..."} is not implemented by the double`, path)
      // [GQL-ERR] a credential without Analytics Read, or an account/zone it does not cover.
      if (req.grant.permissions !== '*' && !req.grant.permissions.includes('analytics:read')) throw new QueryError(403, `does not have access to the path`, path)
      const covered = isZone
        ? double.zones.has(tag) && double.allows(req.grant, { zone_id: tag })
        : double.accounts.has(tag) && double.allows(req.grant, { account_id: tag })
      if (!covered) throw new QueryError(403, isZone ? `zones [${tag}] are not authorized` : 'not authorized for that account', path)
      if (!scopeField.selections) throw new QueryError(400, 'object field must have selections', path)
      const jobs = [...jobsState(double).jobs.values()].filter((j) => j.scope.kind === scopeField.name && j.scope.id === tag)
      const node: Record<string, unknown> = {}
      for (const f of scopeField.selections) {
        if (f.name === tagName && !f.selections) { node[f.alias] = tag; continue }
        if (f.name !== 'logpushHealthAdaptiveGroups') {
          throw new QueryError(400, /AdaptiveGroups$|Groups$|Adaptive$/.test(f.name) ? `double: dataset "${f.name}" is not implemented by the double` : `unknown field "${f.name}"`, [...path, 0, f.alias])
        }
        node[f.alias] = groups(double, jobs, f, vars, [...path, 0, f.alias])
      }
      viewer[scopeField.alias] = [node]
    }
    data[top.alias] = viewer
  }
  return data
}

function answer(status: number, data: unknown, err?: QueryError | GraphQLSyntaxError): Reply {
  const errors = err ? [{ message: err.message, ...(err instanceof QueryError && err.path ? { path: err.path.map(String) } : {}), extensions: { timestamp: new Date().toISOString() } }] : null
  return { status, json: { data, errors } }
}

export function handleGraphQL(req: DoubleRequest, double: CloudflareDouble): Reply {
  const body = req.json as { query?: unknown, variables?: unknown } | undefined
  if (!body || typeof body.query !== 'string') return answer(400, null, new QueryError(400, 'query contains error, please review it and retry'))
  const vars = (body.variables && typeof body.variables === 'object' ? { ...body.variables as Record<string, unknown> } : {})
  try {
    return answer(200, execute(double, req, parseQuery(body.query), vars))
  } catch (err) {
    if (err instanceof QueryError) return answer(err.status, null, err)
    if (err instanceof GraphQLSyntaxError) return answer(400, null, err)
    throw err
  }
}

/** [GQL-EP] No operationId: GraphQL is not in the OpenAPI schema. Auth by the core [AUTH] (its v4 answer has `errors[].message` too). */
export const graphqlRoutes: Route[] = [
  { method: 'POST', pattern: '/graphql', handle: handleGraphQL }
]
