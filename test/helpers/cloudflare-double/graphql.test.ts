// The Cloudflare API double's GraphQL Analytics endpoint and its job-failure simulation, tested on
// their own: the watchdog's tests are only as good as what the double answers.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { AUTH_ERRORS, addJob, startCloudflareDouble, type CloudflareDouble } from './index.js'
import { healthState, parseQuery, recordUpload, recordUploads } from './graphql.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'analytics-token'
const MIN = 60_000

async function start(t: TestContext): Promise<{ double: CloudflareDouble, base: string }> {
  const started = await startCloudflareDouble()
  t.after(() => started.double.stop())
  started.double.accounts.add(ACCOUNT)
  started.double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  started.double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read', 'analytics:read'] })
  return started
}

async function gql(base: string, query: string, variables: Record<string, unknown> = {}, token = TOKEN): Promise<{ status: number, body: any }> {
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) })
  return { status: res.status, body: await res.json() }
}

const ZONE_QUERY = `query ($tag: string!, $since: Time!, $until: Time!) {
  viewer { zones(filter: {zoneTag: $tag}) {
    logpushHealthAdaptiveGroups(filter: {datetime_geq: $since, datetime_lt: $until}, limit: 100, orderBy: [datetimeMinute_ASC]) {
      count
      dimensions { jobId status final datetimeMinute }
      sum { uploads records }
    }
  } }
}`

test('the reader takes queries with variables, lists, objects, aliases and comments, and refuses what it does not implement', () => {
  const op = parseQuery('query Q($a: [uint64!], $b: string = "x") { # comment\n viewer { z: zones(filter: {zoneTag: $b, n: -1.5e2, l: [1, 2], e: ENUM}) { zoneTag } } }')
  assert.deepEqual([...op.variables.keys()], ['a', 'b'])
  assert.equal(op.variables.get('a')!.type, '[uint64!]')
  const zones = op.selections[0]!.selections![0]!
  assert.equal(zones.alias, 'z')
  assert.equal(zones.name, 'zones')
  assert.throws(() => parseQuery('mutation { x }'), /only queries/)
  assert.throws(() => parseQuery('{ viewer { ...F } }'), /fragments/)
  assert.throws(() => parseQuery('{ viewer { zones }'), /Unexpected <EOF>/)
})

test('upload health by job, status, final and minute, for a zone and an account, within the filter', async (t) => {
  const { double, base } = await start(t)
  const zoneJob = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'https://logs.example.com/logpush/http_requests', dataset: 'http_requests', enabled: true })
  const accountJob = addJob(double, { kind: 'accounts', id: ACCOUNT }, { destination_conf: 'https://logs.example.com/logpush/audit_logs', dataset: 'audit_logs', enabled: true })
  const t0 = Math.floor(Date.now() / MIN) * MIN - 10 * MIN
  recordUpload(double, zoneJob, { ok: true, records: 10 }, t0)
  recordUpload(double, zoneJob, { ok: true, records: 5 }, t0 + 1000)
  recordUpload(double, zoneJob, { ok: false, status: 503, message: 'error 503: error pushing' }, t0 + MIN)
  recordUpload(double, zoneJob, { ok: false, status: 1105, message: 'DNS', final: true }, t0 + 2 * MIN)
  recordUpload(double, accountJob, { ok: true }, t0)
  recordUpload(double, zoneJob, { ok: true }, t0 - 60 * MIN) // before the window
  const vars = { tag: ZONE, since: new Date(t0).toISOString(), until: new Date(t0 + 5 * MIN).toISOString() }
  const r = await gql(base, ZONE_QUERY, vars)
  assert.equal(r.status, 200)
  assert.equal(r.body.errors, null)
  const minute = (ms: number): string => new Date(ms).toISOString().replace('.000Z', 'Z')
  assert.deepEqual(r.body.data.viewer.zones[0].logpushHealthAdaptiveGroups, [
    { count: 2, dimensions: { jobId: zoneJob.id, status: 200, final: 1, datetimeMinute: minute(t0) }, sum: { uploads: 2, records: 15 } },
    { count: 1, dimensions: { jobId: zoneJob.id, status: 503, final: 0, datetimeMinute: minute(t0 + MIN) }, sum: { uploads: 1, records: 0 } },
    { count: 1, dimensions: { jobId: zoneJob.id, status: 1105, final: 1, datetimeMinute: minute(t0 + 2 * MIN) }, sum: { uploads: 1, records: 0 } }
  ])
  const failures = await gql(base, 'query ($tag: string!) { viewer { accounts(filter: {accountTag: $tag}) { accountTag logpushHealthAdaptiveGroups(filter: {status_neq: 200}, limit: 10) { count } } } }', { tag: ACCOUNT })
  assert.deepEqual(failures.body.data.viewer.accounts, [{ accountTag: ACCOUNT, logpushHealthAdaptiveGroups: [] }])
  const byJob = await gql(base, `query { viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(filter: {jobId_in: [${zoneJob.id}], status_neq: 200}, limit: 10) { count } } } }`)
  assert.deepEqual(byJob.body.data.viewer.zones[0].logpushHealthAdaptiveGroups, [{ count: 2 }])
  assert.deepEqual(double.violations, [])
})

test('a failed upload sets last_error and error_message, a success resets them and sets last_complete', async (t) => {
  const { double } = await start(t)
  const job = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'https://logs.example.com/logpush/http_requests', enabled: true })
  const t0 = Date.now() - 10 * MIN
  recordUpload(double, job, { ok: false, status: 415, message: 'error 415: error pushing: error uploading to https: 415 {"message":"wrong"}' }, t0)
  assert.equal(job.last_error, new Date(t0).toISOString())
  assert.match(job.error_message!, /^error 415/)
  assert.deepEqual(healthState(double).attempts.get(job.id)!.map((a) => [a.status, a.final, a.message]), [[415, 0, job.error_message]])
  assert.equal(job.last_complete, null)
  recordUpload(double, job, { ok: true }, t0 + MIN)
  assert.equal(job.last_complete, new Date(t0 + MIN).toISOString())
  assert.equal(job.last_error, null)
  assert.equal(job.error_message, null)
  assert.deepEqual(double.violations, [])
})

test('a job failing without a success for disableAfterMs is disabled, not before', async (t) => {
  const { double } = await start(t)
  const job = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'https://logs.example.com/logpush/http_requests', enabled: true })
  const t0 = Date.now() - 30 * 3600_000
  recordUpload(double, job, { ok: true }, t0)
  const fail = { ok: false, status: 1102, message: 'ConnectionTimeout' } as const
  recordUploads(double, job, fail, t0 + MIN, t0 + MIN + 23 * 3600_000, 10 * MIN)
  assert.equal(job.enabled, true, 'not yet: 23 hours of failures')
  recordUploads(double, job, fail, t0 + MIN + 23 * 3600_000, t0 + 30 * 3600_000, 10 * MIN)
  assert.equal(job.enabled, false, 'disabled after 24 hours')
  const lastAttempt = healthState(double).attempts.get(job.id)!.at(-1)!.at
  assert.ok(lastAttempt - (t0 + MIN) >= 24 * 3600_000 && lastAttempt - (t0 + MIN) < 24 * 3600_000 + 10 * MIN, 'no attempt after the job was disabled')
  // A shorter setting, as a test may choose.
  const other = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'https://logs.example.com/logpush/dns_logs', enabled: true })
  healthState(double).disableAfterMs = 5 * MIN
  recordUploads(double, other, fail, t0, t0 + 6 * MIN, MIN)
  assert.equal(other.enabled, false)
  assert.deepEqual(double.violations, [])
})

test('GraphQL errors as the API gives them: unknown fields, parse errors, limits, old data, missing variables', async (t) => {
  const { double, base } = await start(t)
  const cases: Array<[string, Record<string, unknown>, number, RegExp]> = [
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 10) { count nonsense } } } }`, {}, 400, /^unknown field "nonsense"$/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 10) { dimensions { jobId colour } } } } }`, {}, 400, /^unknown field "colour"$/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 10) { dimensions { destinationType } } } } }`, {}, 400, /not implemented by the double/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 10, filter: {colour: 1}) { count } } } }`, {}, 400, /unknown field "colour" in filter/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 10, filter: {OR: [{status: 200}]}) { count } } } }`, {}, 400, /not implemented by the double/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups { count } } } }`, {}, 400, /^limit must be positive number and not greater than 10000$/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 20000) { count } } } }`, {}, 400, /^limit must be positive/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 1, filter: {datetime_geq: "2020-01-01T00:00:00Z"}) { count } } } }`, {}, 400, /^cannot request data older than 2592000s$/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { count } } }`, {}, 400, /^unknown field "count"$/],
    [`{ viewer { zones(filter: {zoneTag: "${ZONE}"}) { logpushHealthAdaptiveGroups(limit: 1) { count { x } } } } }`, {}, 400, /^scalar fields must have no selections$/],
    ['query ($tag: string!) { viewer { zones(filter: {zoneTag: $tag}) { zoneTag } } }', {}, 400, /variable "\$tag" of type "string!" is required/],
    ['{ viewer { zones(filter: {zoneTag: "x"}) { zoneTag } ', {}, 400, /Syntax Error/],
    ['{ nobody }', {}, 400, /^unknown field "nobody"$/]
  ]
  for (const [query, vars, status, message] of cases) {
    const r = await gql(base, query, vars)
    assert.equal(r.status, status, query)
    assert.equal(r.body.data, null, query)
    assert.equal(r.body.errors.length, 1, query)
    assert.match(r.body.errors[0].message, message, query)
    assert.match(r.body.errors[0].extensions.timestamp, /^\d{4}-\d\d-\d\dT/)
  }
  assert.deepEqual(double.violations, [])
})

test('authorisation: a zone or account the token does not cover, a token without Analytics Read, an unknown token', async (t) => {
  const { double, base } = await start(t)
  const other = 'ffffffffffffffffffffffffffffffff'
  double.tokens.set('logs-only', { accounts: '*', zones: '*', permissions: ['logs:read'] })
  double.tokens.set('one-zone', { accounts: [], zones: [ZONE], permissions: ['analytics:read'] })
  const zoneQ = (z: string): string => `{ viewer { zones(filter: {zoneTag: "${z}"}) { zoneTag } } }`
  let r = await gql(base, zoneQ(other))
  assert.equal(r.status, 403)
  assert.equal(r.body.errors[0].message, `zones [${other}] are not authorized`)
  assert.deepEqual(r.body.errors[0].path, ['viewer', 'zones'])
  r = await gql(base, `{ viewer { accounts(filter: {accountTag: "${ACCOUNT}"}) { accountTag } } }`, {}, 'one-zone')
  assert.equal(r.status, 403)
  assert.equal(r.body.errors[0].message, 'not authorized for that account')
  r = await gql(base, zoneQ(ZONE), {}, 'one-zone')
  assert.equal(r.status, 200)
  assert.deepEqual(r.body.data.viewer.zones, [{ zoneTag: ZONE }])
  r = await gql(base, zoneQ(ZONE), {}, 'logs-only')
  assert.equal(r.status, 403)
  assert.equal(r.body.errors[0].message, 'does not have access to the path')
  r = await gql(base, zoneQ(ZONE), {}, 'no-such-token')
  assert.equal(r.status, AUTH_ERRORS.unknownToken.status)
  assert.equal(r.body.errors[0].message, 'Invalid access token')
  assert.deepEqual(double.violations, [])
})
