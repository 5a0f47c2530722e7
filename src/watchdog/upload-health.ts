// Upload health of Logpush jobs from Cloudflare's GraphQL Analytics API: the dataset
// `logpushHealthAdaptiveGroups`, the one behind the dashboard's Logpush Health tab (CF docs
// logs/logpush/logpush-health.mdx: "the raw health metrics can be queried via the
// logpushHealthAdaptiveGroups dataset in the GraphQL API").
//
// The request is `POST /graphql` with `{query, variables}` and the usual API credentials (CF docs
// analytics/graphql-api/getting-started/execute-graphql-query.mdx). The answer is `{data, errors}`;
// "a 200 response can contain an error" (analytics/graphql-api/errors.mdx), so `errors` is checked
// whatever the status. The SDK does not cover GraphQL, hence apiFetch.
//
// What a row says. Cloudflare documents the dataset only through its schema (introspection); the
// fields read here are the ones public collectors query: `count` and `dimensions { jobId status
// final }` (lablabs/cloudflare-exporter cloudflare.go, FetchLogpushZone/FetchLogpushAccount, which
// filters `status_neq: 200` to count failures), plus `datetimeMinute`. One row is the upload
// attempts of one job in one minute with one status: 200 is a successful upload; anything else
// failed (an HTTP status of the destination, or Cloudflare's own codes 1101-1108 and 1201 for
// connection, DNS, TLS and timeout failures: cloudflare-docs PR 20684 and 32514). `final` tells an
// attempt after which the batch is given up (the health page's "Failed": the batch's logs are
// dropped) from one that will be retried (its "Retry attempts").
import { CloudflareApiFailed } from '../errors.js'
import { apiErrors, apiFetch, type CloudflareCredentials } from '../cloudflare-api/client.js'

export interface Scope {
  readonly kind: 'zone' | 'account'
  readonly id: string
}

/** What one job's uploads did in the window read. */
export interface UploadHealth {
  /** Successful upload attempts (status 2xx). */
  ok: number
  /** Failed attempts that will be retried. */
  retried: number
  /** Failed attempts after which the batch was dropped. */
  failed: number
  /** Failed attempts (retried or not) by status code: "503", "1105", ... */
  readonly statuses: Record<string, number>
  /** Start of the newest minute with a successful upload, ms; null when none in the window. */
  lastOkAt: number | null
  /** Start of the newest minute with a failed attempt, ms; null when none. */
  lastFailedAt: number | null
  /** Start of the oldest minute with a failed attempt after the last success, ms. */
  firstFailedAfterOkAt: number | null
}

interface Row {
  readonly count?: unknown
  readonly dimensions?: { readonly jobId?: unknown, readonly status?: unknown, readonly final?: unknown, readonly datetimeMinute?: unknown }
}

interface GraphQLAnswer {
  readonly data?: { readonly viewer?: Record<string, Array<{ logpushHealthAdaptiveGroups?: Row[] }> | undefined> } | null
  readonly errors?: Array<{ message?: unknown, path?: unknown }> | null
}

/** The query, for a zone (`zones`/`zoneTag`) or an account (`accounts`/`accountTag`). */
export function healthQuery(kind: Scope['kind']): string {
  const [node, tag] = kind === 'zone' ? ['zones', 'zoneTag'] : ['accounts', 'accountTag']
  return `query LogpushHealth($tag: string!, $since: Time!, $until: Time!, $jobIds: [uint64!], $limit: uint64!) {
  viewer {
    ${node}(filter: {${tag}: $tag}) {
      logpushHealthAdaptiveGroups(filter: {datetime_geq: $since, datetime_lt: $until, jobId_in: $jobIds}, limit: $limit, orderBy: [datetimeMinute_ASC]) {
        count
        dimensions { jobId status final datetimeMinute }
      }
    }
  }
}`
}

function graphQLFailure(status: number, errors: ReadonlyArray<{ message?: unknown, path?: unknown }>): Error {
  const said = errors.map((e) => `${String(e.message)}${Array.isArray(e.path) ? ` (at ${e.path.join('.')})` : ''}`).join('; ')
  return Object.assign(new CloudflareApiFailed(status, said), { status, apiErrors: [] })
}

export interface ReadOptions {
  readonly baseUrl: string
  readonly credentials: CloudflareCredentials
  readonly scope: Scope
  readonly jobIds: readonly number[]
  readonly since: Date
  readonly until: Date
  /** Rows asked for; more would be cut off by the API (the answer says so: `truncated`). */
  readonly limit: number
  readonly signal?: AbortSignal
}

/**
 * Upload health per job id over [since, until). Throws CloudflareApiFailed with the API's own
 * messages (GraphQL errors, at any HTTP status), or what apiFetch throws.
 */
export async function readUploadHealth(o: ReadOptions): Promise<{ byJob: Map<number, UploadHealth>, truncated: boolean }> {
  let res: Response
  try {
    res = await apiFetch(o.baseUrl, '/graphql', o.credentials, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        query: healthQuery(o.scope.kind),
        variables: { tag: o.scope.id, since: o.since.toISOString(), until: o.until.toISOString(), jobIds: o.jobIds, limit: o.limit }
      }),
      signal: o.signal,
      attempts: 3
    })
  } catch (err) {
    // A GraphQL error body has messages but no codes: shown as messages, not "(code NaN)".
    const items = apiErrors(err)
    const status = (err as { status?: unknown }).status
    if (typeof status === 'number' && items.length > 0 && items.some((e) => !Number.isFinite(e.code))) throw graphQLFailure(status, items)
    throw err
  }
  let answer: GraphQLAnswer
  try {
    answer = await res.json() as GraphQLAnswer
  } catch (err) {
    throw Object.assign(new CloudflareApiFailed(res.status, `the GraphQL answer is not JSON (${(err as Error).message})`), { status: res.status, apiErrors: [] })
  }
  if (Array.isArray(answer.errors) && answer.errors.length > 0) throw graphQLFailure(res.status, answer.errors)
  const nodes = answer.data?.viewer?.[o.scope.kind === 'zone' ? 'zones' : 'accounts']
  if (!Array.isArray(nodes)) throw Object.assign(new CloudflareApiFailed(res.status, 'the GraphQL answer has no data.viewer'), { status: res.status, apiErrors: [] })
  const rows = nodes.flatMap((n) => n.logpushHealthAdaptiveGroups ?? [])
  return { byJob: summarise(rows), truncated: rows.length >= o.limit }
}

/** Rows to per-job counts; rows that do not parse are skipped (a field renamed must not crash a poll). */
export function summarise(rows: readonly Row[]): Map<number, UploadHealth> {
  const byJob = new Map<number, UploadHealth>()
  const failedMinutes = new Map<number, number[]>()
  for (const row of rows) {
    const d = row.dimensions ?? {}
    const jobId = Number(d.jobId)
    const status = Number(d.status)
    const count = Number(row.count)
    const at = Date.parse(String(d.datetimeMinute))
    if (!Number.isInteger(jobId) || !Number.isFinite(status) || !Number.isFinite(count) || !Number.isFinite(at)) continue
    let h = byJob.get(jobId)
    if (!h) byJob.set(jobId, (h = { ok: 0, retried: 0, failed: 0, statuses: {}, lastOkAt: null, lastFailedAt: null, firstFailedAfterOkAt: null }))
    if (status >= 200 && status < 300) {
      h.ok += count
      h.lastOkAt = Math.max(h.lastOkAt ?? at, at)
    } else {
      if (Number(d.final) === 1 || d.final === true) h.failed += count
      else h.retried += count
      h.statuses[String(status)] = (h.statuses[String(status)] ?? 0) + count
      h.lastFailedAt = Math.max(h.lastFailedAt ?? at, at)
      const list = failedMinutes.get(jobId) ?? []
      list.push(at)
      failedMinutes.set(jobId, list)
    }
  }
  for (const [jobId, minutes] of failedMinutes) {
    const h = byJob.get(jobId)!
    for (const m of minutes) {
      if ((h.lastOkAt === null || m > h.lastOkAt) && (h.firstFailedAfterOkAt === null || m < h.firstFailedAfterOkAt)) h.firstFailedAfterOkAt = m
    }
  }
  return byJob
}
