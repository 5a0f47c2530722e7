// The Cloudflare API double's core: both auth schemes and each refusal, the 404/405 envelopes,
// injected answers, and the official SDK listing jobs against it without a schema violation.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { addJob, AUTH_ERRORS, rateLimited, startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { sdkClient } from '../../src/cloudflare-api/client.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const OTHER_ZONE = '9a7806061c88ada191ed06f989cc3dac'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'YQSn-xWAQiiEh9qM58wZNnyQS7FUdoqGIUAbrh7T'
const EMAIL = 'user@example.com'
// 37 lowercase hex characters, the shape of a Global API Key.
const KEY = '144c9defac04969c7bfad8efaa8ea194ab3cc'

async function start(t: TestContext): Promise<{ double: CloudflareDouble, base: string }> {
  const started = await startCloudflareDouble()
  t.after(() => started.double.stop())
  const { double } = started
  double.accounts.add(ACCOUNT)
  double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  double.zones.set(OTHER_ZONE, { account: ACCOUNT, name: 'example.net' })
  double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: '*' })
  double.keys.set(`${EMAIL}\0${KEY}`, { accounts: '*', zones: '*', permissions: '*' })
  return started
}

async function call(base: string, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number, json: any, headers: Headers }> {
  const res = await fetch(base + path, { method, headers })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

const JOBS = `/zones/${ZONE}/logpush/jobs`

test('auth: a token and an email + Global API Key both get through; each refusal is the status and envelope Cloudflare answers with', async (t) => {
  const { double, base } = await start(t)
  double.tokens.set('OnlyOtherZone0000000000000000000000000000', { accounts: '*', zones: [OTHER_ZONE], permissions: '*' })
  double.tokens.set('NoLogsPermission000000000000000000000000', { accounts: '*', zones: '*', permissions: ['audit:read'] })

  assert.equal((await call(base, 'GET', JOBS, { authorization: `Bearer ${TOKEN}` })).status, 200)
  assert.equal((await call(base, 'GET', JOBS, { 'x-auth-email': EMAIL, 'x-auth-key': KEY })).status, 200)

  const refusals: Array<[string, Record<string, string>, { status: number, errors: readonly unknown[] }]> = [
    ['no credential', {}, AUTH_ERRORS.missing],
    ['an email without a key', { 'x-auth-email': EMAIL }, AUTH_ERRORS.missing],
    ['not a Bearer header', { authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }, AUTH_ERRORS.badBearer],
    ['a token Cloudflare does not know', { authorization: 'Bearer UnknownToken0000000000000000000000000000' }, AUTH_ERRORS.unknownToken],
    ['a well-formed key that does not match', { 'x-auth-email': EMAIL, 'x-auth-key': 'f'.repeat(37) }, AUTH_ERRORS.unknownKey],
    ['an API token sent as X-Auth-Key', { 'x-auth-email': EMAIL, 'x-auth-key': TOKEN }, AUTH_ERRORS.badKeyFormat],
    ['a malformed X-Auth-Email', { 'x-auth-email': 'nobody', 'x-auth-key': 'f'.repeat(37) }, AUTH_ERRORS.badEmailFormat],
    ['a token without this zone', { authorization: 'Bearer OnlyOtherZone0000000000000000000000000000' }, AUTH_ERRORS.forbidden],
    ['a token without the permission', { authorization: 'Bearer NoLogsPermission000000000000000000000000' }, AUTH_ERRORS.forbidden]
  ]
  for (const [what, headers, expected] of refusals) {
    const r = await call(base, 'GET', JOBS, headers)
    assert.equal(r.status, expected.status, what)
    assert.deepEqual(r.json, { success: false, errors: expected.errors, messages: [], result: null }, what)
  }
  assert.deepEqual(AUTH_ERRORS.missing.errors.map((e) => e.code), [9106])
  assert.deepEqual([AUTH_ERRORS.unknownToken.status, AUTH_ERRORS.unknownToken.errors[0].code], [403, 9109])
  // Every refusal is a documented 4XX failure envelope of the operation.
  assert.deepEqual(double.violations, [])
})

test('unknown paths and methods get the gateway envelopes (404 7003+7000, 405 7001), unchecked', async (t) => {
  const { double, base } = await start(t)
  const auth = { authorization: `Bearer ${TOKEN}` }
  const missing = await call(base, 'GET', `/zones/${ZONE}/no/such/thing`, auth)
  assert.equal(missing.status, 404)
  assert.deepEqual(missing.json.errors.map((e: { code: number }) => e.code), [7003, 7000])
  assert.equal(missing.json.success, false)
  const wrongMethod = await call(base, 'PATCH', JOBS, auth)
  assert.equal(wrongMethod.status, 405)
  assert.deepEqual(wrongMethod.json.errors, [{ code: 7001, message: 'Method PATCH not available for that URI.' }])
  assert.equal(double.requests.length, 2)
  assert.deepEqual(double.violations, [])
})

test('injected answers: a 429 with Retry-After goes to as many matching requests as asked, then the route answers again', async (t) => {
  const { double, base } = await start(t)
  const auth = { authorization: `Bearer ${TOKEN}` }
  double.inject({ method: 'GET', path: /\/logpush\/jobs$/, times: 2, reply: rateLimited(7) })
  const first = await call(base, 'GET', JOBS, auth)
  assert.equal(first.status, 429)
  assert.equal(first.headers.get('retry-after'), '7')
  assert.deepEqual(first.json.errors, [{ code: 971, message: 'Please wait and consider throttling your request speed' }])
  assert.equal((await call(base, 'GET', `/zones/${ZONE}/logpush/jobs/1`, auth)).status, 404, 'another path is not affected')
  assert.equal((await call(base, 'GET', JOBS, auth)).status, 429)
  assert.equal((await call(base, 'GET', JOBS, auth)).status, 200)
  assert.deepEqual(double.requestsTo('get-zones-zone_identifier-logpush-jobs').map((r) => r.status), [429, 429, 200])
  // Injected answers are checked like the routes' own: a 429 is a documented 4XX failure envelope.
  assert.deepEqual(double.violations, [])

  // ... and an injected answer the schema does not allow is reported.
  double.inject({ path: /\/logpush\/jobs$/, reply: { status: 429, json: { success: false } } })
  assert.equal((await call(base, 'GET', JOBS, auth)).status, 429)
  assert.equal(double.violations.length, 1)
  assert.match(double.violations[0], /^get-zones-zone_identifier-logpush-jobs answer 429: .*must have required property 'errors'/)
})

test('the cloudflare SDK lists and reads jobs of a zone and of an account against the double, with a token and with a key, without a violation', async (t) => {
  const { double, base } = await start(t)
  const full = {
    dataset: 'http_requests',
    destination_conf: 'https://logs.example.com/cloudflare/http_requests?header_Authorization=Bearer%20abc',
    enabled: true,
    name: 'example.com',
    output_options: { field_names: ['RayID', 'EdgeStartTimestamp'], output_type: 'ndjson', timestamp_format: 'rfc3339' },
    max_upload_bytes: 5_000_000,
    max_upload_records: 100_000,
    max_upload_interval_seconds: 30,
    last_complete: '2026-11-28T10:01:00Z',
    last_error: '2026-11-28T10:05:00Z',
    error_message: 'error uploading to destination: 502 Bad Gateway'
  } as const
  const zoneJob = addJob(double, { kind: 'zones', id: ZONE }, full)
  const accountJob = addJob(double, { kind: 'accounts', id: ACCOUNT }, { destination_conf: 's3://bucket/logs?region=us-east-1', dataset: 'audit_logs' })

  for (const creds of [{ kind: 'token', token: TOKEN } as const, { kind: 'key', email: EMAIL, key: KEY } as const]) {
    const sdk = sdkClient(base, creds, { maxRetries: 0 })
    const zoneJobs = []
    for await (const j of sdk.logpush.jobs.list({ zone_id: ZONE })) zoneJobs.push(j)
    assert.deepEqual(zoneJobs.map((j) => j?.id), [zoneJob.id], creds.kind)
    assert.equal(zoneJobs[0]?.error_message, full.error_message)
    const accountJobs = []
    for await (const j of sdk.logpush.jobs.list({ account_id: ACCOUNT })) accountJobs.push(j)
    assert.deepEqual(accountJobs.map((j) => j?.id), [accountJob.id], creds.kind)
    assert.equal((await sdk.logpush.jobs.get(zoneJob.id, { zone_id: ZONE }))?.destination_conf, full.destination_conf)
  }
  assert.deepEqual(double.requests.map((r) => r.status), [200, 200, 200, 200, 200, 200])
  assert.deepEqual(double.violations, [])
})
