// The double's OpenAPI check (test/helpers/cloudflare-double/openapi.ts against the committed extract
// test/fixtures/cloudflare-openapi/subset.json): it must catch bad requests and bad answers, not only
// pass good ones. Routes here are test routes that answer what each case needs.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { CloudflareDouble, ok, fail, type Route, type Reply } from '../helpers/cloudflare-double/server.js'
import { attachOpenApi, compileOpenApi, loadSubset, ERRATA } from '../helpers/cloudflare-double/openapi.js'
import { startCloudflareDouble } from '../helpers/cloudflare-double/index.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'YQSn-xWAQiiEh9qM58wZNnyQS7FUdoqGIUAbrh7T'
const AUTH = { authorization: `Bearer ${TOKEN}` }

/** A double with the given routes and the OpenAPI check; `answer` is what the routes reply next. */
async function doubleWith(t: TestContext, routes: Array<Omit<Route, 'handle'>>): Promise<{ double: CloudflareDouble, base: string, answer: (r: Reply) => void }> {
  let next: Reply = ok([])
  const double = new CloudflareDouble().use(...routes.map((r) => ({ ...r, handle: () => next })))
  attachOpenApi(double)
  double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: '*' })
  const base = await double.start()
  t.after(() => double.stop())
  return { double, base, answer: (r) => { next = r } }
}

/** Sends a request and returns the violations it caused (and clears them). */
async function violations(double: CloudflareDouble, base: string, method: string, path: string, body?: unknown): Promise<string[]> {
  const res = await fetch(base + path, {
    method,
    headers: { ...AUTH, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
  })
  await res.arrayBuffer()
  return double.violations.splice(0)
}

const job = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  id: 7, dataset: 'http_requests', destination_conf: 'https://logs.example.com/x?header_Authorization=Bearer%20abc', enabled: true,
  name: 'example.com', kind: '', filter: null, logpull_options: null, output_options: { field_names: ['RayID'], timestamp_format: 'rfc3339' },
  max_upload_bytes: null, max_upload_interval_seconds: null, max_upload_records: null,
  last_complete: '2026-11-28T10:01:00Z', last_error: null, error_message: null, ...over
})

test('every route the double starts with names an operation of the subset, with its method and a path of its template', async (t) => {
  const { double } = await startCloudflareDouble()
  t.after(() => double.stop())
  // eager: every schema of the subset compiles under ajv's strict mode, not only those a test touches.
  const checker = compileOpenApi(loadSubset(), { eager: true })
  const shape = (p: string): string => p.replace(/\{[^}]+\}|:[a-z_]+/g, '*')
  const withIds = double.routeTable.filter((r) => r.operationId !== undefined)
  assert.ok(withIds.length > 0)
  for (const r of withIds) {
    const op = checker.operations.get(r.operationId!)
    assert.ok(op, `${r.operationId} is not in subset.json`)
    assert.equal(op.method, r.method, r.operationId)
    assert.equal(shape(r.pattern), shape(op.template), r.operationId)
  }
})

test('query parameters are typed from their strings per schema; bad values, unknown names and missing required ones are violations', async (t) => {
  const { double, base } = await doubleWith(t, [
    { method: 'GET', pattern: '/accounts/:account_id/audit_logs', operationId: 'audit-logs-get-account-audit-logs' },
    { method: 'GET', pattern: '/accounts/:account_id/logs/audit', operationId: 'audit-logs-v2-get-account-audit-logs' },
    { method: 'GET', pattern: '/zones/:zone_id/logs/received', operationId: 'logs-received-get-logs-received' }
  ])
  const v1 = `/accounts/${ACCOUNT}/audit_logs`
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?since=2026-11-28T00:00:00Z&before=2026-11-28T01:00:00Z&direction=asc&per_page=1000&page=2&hide_user_logs=false&actor.email=a%40example.com`), [])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?per_page=abc`), ['audit-logs-get-account-audit-logs query: /per_page must be number'])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?per_page=1001`), ['audit-logs-get-account-audit-logs query: /per_page must be <= 1000'])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?direction=up`), ['audit-logs-get-account-audit-logs query: /direction must be equal to one of the allowed values: ["desc","asc"]'])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?since=yesterday`), ['audit-logs-get-account-audit-logs query: /since must match format "date-time"'])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?hide_user_logs=maybe`), ['audit-logs-get-account-audit-logs query: /hide_user_logs must be boolean'])
  assert.deepEqual(await violations(double, base, 'GET', `${v1}?perpage=10`), ["audit-logs-get-account-audit-logs query: has 'perpage', which the schema does not allow"])

  // Audit logs v2: repeated names are arrays (form style), since/before are required.
  const v2 = `/accounts/${ACCOUNT}/logs/audit`
  assert.deepEqual(await violations(double, base, 'GET', `${v2}?since=2026-11-28&before=2026-11-29&action_type=create&action_type=delete&raw_status_code=403&limit=100&cursor=abc&direction=asc`), [])
  assert.deepEqual(await violations(double, base, 'GET', `${v2}?since=2026-11-28&before=2026-11-29&raw_status_code=forbidden`), ['audit-logs-v2-get-account-audit-logs query: /raw_status_code/0 must be integer'])
  assert.deepEqual(await violations(double, base, 'GET', `${v2}?before=2026-11-29`), ["audit-logs-v2-get-account-audit-logs query: must have required property 'since'"])

  // Logpull: end is required; timestamps is an enum; count an integer > 0.
  const lp = `/zones/${ZONE}/logs/received`
  assert.deepEqual(await violations(double, base, 'GET', `${lp}?start=2026-11-28T10:00:00Z&end=2026-11-28T11:00:00Z&fields=RayID,ClientIP&timestamps=rfc3339&count=10`), [])
  assert.deepEqual(await violations(double, base, 'GET', `${lp}?start=1764324000&end=1764327600`), [])
  assert.deepEqual(await violations(double, base, 'GET', `${lp}?start=2026-11-28T10:00:00Z&timestamps=iso&count=0`).then((v) => v.sort()), [
    'logs-received-get-logs-received query: must have required property \'end\'; /timestamps must be equal to one of the allowed values: ["unix","unixnano","rfc3339"]; /count must be >= 1'
  ])
})

test('path parameters and request bodies: a missing required field, a wrong type or format, a body where none is taken are violations', async (t) => {
  const { double, base, answer } = await doubleWith(t, [
    { method: 'POST', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'post-zones-zone_identifier-logpush-jobs' },
    { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs/:job_id', operationId: 'get-zones-zone_identifier-logpush-jobs-job_identifier' }
  ])
  answer(ok(job()))
  const jobs = `/zones/${ZONE}/logpush/jobs`
  const good = { destination_conf: 'https://logs.example.com/cloudflare/http_requests?header_Authorization=Bearer%20abc', dataset: 'http_requests', enabled: false, name: 'example.com', output_options: { field_names: ['RayID', 'EdgeStartTimestamp'], timestamp_format: 'rfc3339' }, max_upload_records: 1000 }
  assert.deepEqual(await violations(double, base, 'POST', jobs, good), [])
  assert.deepEqual(await violations(double, base, 'POST', jobs, { dataset: 'http_requests' }), ["post-zones-zone_identifier-logpush-jobs request body: must have required property 'destination_conf'"])
  assert.deepEqual(await violations(double, base, 'POST', jobs, { ...good, enabled: 'yes' }), ['post-zones-zone_identifier-logpush-jobs request body: /enabled must be boolean'])
  assert.deepEqual(await violations(double, base, 'POST', jobs, { ...good, destination_conf: 'https://logs.example.com/x?header_Authorization=Bearer abc' }), ['post-zones-zone_identifier-logpush-jobs request body: /destination_conf must match format "cloudflare-destination-conf"'])
  // Cloudflare's documented {DATE} placeholder is not a URI character, yet a valid destination.
  assert.deepEqual(await violations(double, base, 'POST', jobs, { ...good, destination_conf: 's3://bucket/logs/{DATE}?region=us-east-1' }), [])
  assert.deepEqual(await violations(double, base, 'POST', jobs, { ...good, max_upload_bytes: 1000 }), ['post-zones-zone_identifier-logpush-jobs request body: /max_upload_bytes must be >= 5000000'])
  assert.deepEqual(await violations(double, base, 'POST', jobs, { ...good, output_options: { timestamp_format: 'iso8601' } }), ['post-zones-zone_identifier-logpush-jobs request body: /output_options/timestamp_format must be equal to one of the allowed values: ["unixnano","unix","rfc3339"]'])
  assert.deepEqual(await violations(double, base, 'POST', jobs, '{"destination_conf":'), ['post-zones-zone_identifier-logpush-jobs request body: is not JSON'])
  assert.deepEqual(await violations(double, base, 'POST', jobs), ['post-zones-zone_identifier-logpush-jobs request body: missing; the operation requires one'])
  assert.deepEqual(await violations(double, base, 'GET', `${jobs}/7`), [])
  assert.deepEqual(await violations(double, base, 'GET', `${jobs}/seven`), ['get-zones-zone_identifier-logpush-jobs-job_identifier path: /job_id must be integer'])
  assert.deepEqual(await violations(double, base, 'GET', `/zones/${'0'.repeat(33)}/logpush/jobs/7`), ['get-zones-zone_identifier-logpush-jobs-job_identifier path: /zone_id must NOT have more than 32 characters'])
})

test('answers are checked by status (exact, then 4XX, else undocumented); error answers as the failure envelope', async (t) => {
  const { double, base, answer } = await doubleWith(t, [
    { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'get-zones-zone_identifier-logpush-jobs' },
    { method: 'GET', pattern: '/accounts/:account_id/audit_logs', operationId: 'audit-logs-get-account-audit-logs' }
  ])
  const list = `/zones/${ZONE}/logpush/jobs`
  const check = async (reply: Reply, path = list): Promise<string[]> => { answer(reply); return await violations(double, base, 'GET', path) }

  assert.deepEqual(await check(ok([job(), job({ id: 8, enabled: false, kind: 'edge', last_error: '2026-11-28T10:05:00Z', error_message: 'upload failed: 502' })])), [])
  assert.deepEqual(await check(ok([job({ id: 'seven' })])), ['get-zones-zone_identifier-logpush-jobs answer 200: /result/0/id must be integer'])
  assert.deepEqual(await check(ok([job({ last_complete: 'yesterday' })])), ['get-zones-zone_identifier-logpush-jobs answer 200: /result/0/last_complete must match format "date-time"'])
  assert.deepEqual(await check(ok([job({ max_upload_records: 10 })])), ['get-zones-zone_identifier-logpush-jobs answer 200: /result/0/max_upload_records must be >= 1000'])
  assert.deepEqual(await check(ok({ id: 7 })), ['get-zones-zone_identifier-logpush-jobs answer 200: /result must be array'])
  assert.deepEqual(await check({ status: 200, json: { success: false, errors: [], messages: [], result: [] } }), ['get-zones-zone_identifier-logpush-jobs answer 200: /success must be equal to one of the allowed values: [true]'])
  // 4XX: the failure envelope alone (the schema's allOf with the success envelope could never hold).
  assert.deepEqual(await check(fail(404, [{ code: 1002, message: 'job not found' }])), [])
  assert.deepEqual(await check({ status: 400, json: { success: false, messages: [], result: null } }), ["get-zones-zone_identifier-logpush-jobs answer 400: must have required property 'errors'"])
  assert.deepEqual(await check({ status: 403, json: { success: false, errors: [{ message: 'no code' }], messages: [], result: null } }), ["get-zones-zone_identifier-logpush-jobs answer 403: /errors/0 must have required property 'code'"])
  assert.deepEqual(await check(fail(500, [{ code: 10001, message: 'boom' }])), ['get-zones-zone_identifier-logpush-jobs answer 500: status not documented (documented: 200, 4XX)'])

  // Audit logs v1: a success answer passes (the erratum turns the schema's impossible oneOf into allOf),
  // and the audit record schema is still enforced.
  const audit = `/accounts/${ACCOUNT}/audit_logs`
  const record = { id: 'd5b0f326-1232-4452-8858-1089bd7168ef', action: { type: 'change_setting', result: true }, actor: { id: 'f6b5de0326bb5182b8a4840ee01ec774', email: 'michelle@example.com', ip: '198.41.129.166', type: 'user' }, interface: 'API', metadata: {}, newValue: 'low', oldValue: 'high', owner: { id: ACCOUNT }, resource: { id: ZONE, type: 'zone' }, when: '2026-11-28T10:00:00Z' }
  assert.deepEqual(await check(ok([record], { page: 1, per_page: 100, count: 1, total_count: 1 }), audit), [])
  const bad = await check(ok([{ ...record, actor: { ...record.actor, type: 'robot' } }]), audit)
  assert.equal(bad.length, 1)
  assert.match(bad[0], /^audit-logs-get-account-audit-logs answer 200: .*\/result\/0\/actor\/type must be equal to one of the allowed values/)
})

test('a route without an operationId is not checked; an id the subset lacks, or a path outside its template, is a violation', async (t) => {
  const { double, base } = await doubleWith(t, [
    { method: 'POST', pattern: '/graphql' },
    { method: 'GET', pattern: '/zones/:zone_id/logpush/jobz', operationId: 'get-zones-zone_identifier-logpush-jobs' },
    { method: 'GET', pattern: '/zones/:zone_id/nothing', operationId: 'no-such-operation' },
    { method: 'POST', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'get-zones-zone_identifier-logpush-jobs' }
  ])
  assert.deepEqual(await violations(double, base, 'POST', '/graphql', { query: '{ viewer { zones { zoneTag } } }' }), [])
  assert.deepEqual(await violations(double, base, 'GET', `/zones/${ZONE}/logpush/jobz`), [`get-zones-zone_identifier-logpush-jobs path: /zones/${ZONE}/logpush/jobz does not match /zones/{zone_id}/logpush/jobs`])
  assert.deepEqual(await violations(double, base, 'GET', `/zones/${ZONE}/nothing`), ['no-such-operation: not in the OpenAPI subset (test/fixtures/cloudflare-openapi/subset.json)'])
  assert.deepEqual(await violations(double, base, 'POST', `/zones/${ZONE}/logpush/jobs`), ['get-zones-zone_identifier-logpush-jobs method: POST sent, the operation is GET /zones/{zone_id}/logpush/jobs'])
  assert.deepEqual(await violations(double, base, 'POST', `/zones/${ZONE}/logpush/jobs`, { destination_conf: 'x' }), [
    'get-zones-zone_identifier-logpush-jobs method: POST sent, the operation is GET /zones/{zone_id}/logpush/jobs',
    'get-zones-zone_identifier-logpush-jobs request body: 24 bytes sent, the operation takes no body'
  ])
})

test('each erratum names a schema of the subset and says why', () => {
  const names = Object.keys(loadSubset().components.schemas)
  for (const e of ERRATA) {
    assert.ok(names.some((n) => typeof e.schema === 'string' ? n === e.schema : e.schema.test(n)), String(e.schema))
    assert.ok(e.why.length > 40, String(e.schema))
  }
})
