// The Cloudflare double's Logpull routes behave as the docs say (logpull.ts cites each source):
// the window rules and their plain-text refusals, fields and timestamps, gzip, the trailer switch,
// late records, rates, the 408 idle rule and its hour-long block, the retention flag, permissions.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { request } from 'node:http'
import { gunzipSync } from 'node:zlib'
import { startCloudflareDouble, type CloudflareDouble } from './index.js'
import { addLogpullRecords, logpullState, logpullZone, parseLogpullTime } from './logpull.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const OTHER = '9a7806061c88ada191ed06f989cc3dac'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'logpull-token'
const NOW = Date.parse('2026-11-28T12:00:00Z')
const T0 = Date.parse('2026-11-28T11:00:00Z')
const NS = 1_000_000n

async function start(t: TestContext): Promise<{ double: CloudflareDouble, base: string }> {
  const d = await startCloudflareDouble()
  t.after(() => d.double.stop())
  d.double.now = () => NOW
  d.double.accounts.add(ACCOUNT)
  d.double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  d.double.zones.set(OTHER, { account: ACCOUNT, name: 'example.net' })
  d.double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read'] })
  return d
}

interface Raw { status: number, headers: Record<string, string | string[] | undefined>, body: Buffer, text: string }

/** A GET with node:http, so the raw body (gzip or not) is seen as sent. */
function get(base: string, path: string, headers: Record<string, string> = { authorization: `Bearer ${TOKEN}` }): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const req = request(base + path, { headers }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const body = Buffer.concat(chunks)
        const text = res.headers['content-encoding'] === 'gzip' ? gunzipSync(body).toString('utf8') : body.toString('utf8')
        resolve({ status: res.statusCode!, headers: res.headers, body, text })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}

const iso = (ms: number): string => new Date(ms).toISOString()
const received = (zone: string, start: number, end: number, extra = ''): string => `/zones/${zone}/logs/received?start=${iso(start)}&end=${iso(end)}${extra}`

function rec(ray: string, receivedAt: number, extra: Partial<{ visibleAt: number }> = {}): Parameters<typeof addLogpullRecords>[2] {
  const ns = BigInt(receivedAt) * NS + 123_456_789n
  return {
    receivedAt,
    ...extra,
    fields: { ClientIP: '192.0.2.1', ClientRequestHost: 'example.com', ClientRequestMethod: 'GET', ClientRequestURI: '/', EdgeEndTimestamp: ns + 5_000_000n, EdgeResponseBytes: 69045, EdgeResponseStatus: 200, EdgeStartTimestamp: ns, RayID: ray, ZoneName: 'example.com' }
  }
}

const rays = (text: string): string[] => text.split('\n').filter((l) => l !== '').map((l) => (JSON.parse(l) as { RayID: string }).RayID).sort()

test('start is inclusive and end exclusive, by the time Cloudflare received the record; gzip NDJSON of the default fields', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true })
  addLogpullRecords(double, ZONE, rec('a1', T0 - 1), rec('a2', T0), rec('a3', T0 + 59_999), rec('a4', T0 + 60_000))
  const r = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.equal(r.status, 200)
  assert.equal(r.headers['content-encoding'], 'gzip')
  assert.deepEqual(rays(r.text), ['a2', 'a3'])
  const first = JSON.parse(r.text.split('\n')[0]) as Record<string, unknown>
  assert.deepEqual(Object.keys(first).sort(), ['ClientIP', 'ClientRequestHost', 'ClientRequestMethod', 'ClientRequestURI', 'EdgeEndTimestamp', 'EdgeResponseBytes', 'EdgeResponseStatus', 'EdgeStartTimestamp', 'RayID'])
  assert.ok(r.text.endsWith('\n'))
  assert.deepEqual(double.violations, [])
})

test('the window rules answer 400 with Logpull\'s plain-text refusals; retention off is refused too', async (t) => {
  const { double, base } = await start(t)
  const off = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.equal(off.status, 400)
  assert.equal(off.text, 'Retention is not turned on. Please enable log retention')
  logpullZone(double, ZONE, { retention: true })
  const cases: Array<[number, number, RegExp]> = [
    [T0, T0 - 60_000, /start not before end/],
    [T0 - 3_600_000, T0 + 1, /too long/],
    [NOW - 8 * 86_400_000, NOW - 8 * 86_400_000 + 60_000, /too early: logs older than 168h0m0s are not available/],
    [NOW - 120_000, NOW - 59_999, /too recent: minimum delay in serving logs is 1m0s/]
  ]
  for (const [s, e, re] of cases) {
    const r = await get(base, received(ZONE, s, e))
    assert.equal(r.status, 400, `${iso(s)}..${iso(e)}`)
    assert.match(r.text, re)
    assert.match(r.text, /^bad query: /)
  }
  assert.equal((await get(base, received(ZONE, T0 - 3_600_000, T0))).status, 200, 'exactly one hour is allowed')
  assert.equal((await get(base, received(ZONE, NOW - 120_000, NOW - 60_000))).status, 200, 'exactly one minute behind now is allowed')
  assert.equal((await get(base, `/zones/${ZONE}/logs/received?end=${iso(T0)}`)).status, 400, 'start is required')
  assert.deepEqual(double.violations, [])
})

test('start and end as Unix seconds, Unix nanoseconds or RFC 3339', () => {
  assert.equal(parseLogpullTime('1500415200'), Date.parse('2017-07-18T22:00:00Z'))
  assert.equal(parseLogpullTime('1500415200000000000'), Date.parse('2017-07-18T22:00:00Z'))
  assert.equal(parseLogpullTime('2017-07-18T22:00:00Z'), Date.parse('2017-07-18T22:00:00Z'))
  assert.equal(parseLogpullTime('2024-08-07T07:00:00+08:00'), Date.parse('2024-08-06T23:00:00Z'))
  assert.equal(parseLogpullTime('yesterday'), null)
})

test('fields and timestamps: one stored time rendered as unixnano (default), unix or rfc3339; unknown fields refused', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true })
  addLogpullRecords(double, ZONE, rec('b1', T0))
  const want = BigInt(T0) * NS + 123_456_789n
  const fields = '&fields=RayID,EdgeStartTimestamp,ZoneName'
  const nano = await get(base, received(ZONE, T0, T0 + 60_000, fields))
  assert.equal(nano.text, `{"EdgeStartTimestamp":${want},"RayID":"b1","ZoneName":"example.com"}\n`)
  const unix = await get(base, received(ZONE, T0, T0 + 60_000, fields + '&timestamps=unix'))
  assert.equal(unix.text, `{"EdgeStartTimestamp":${T0 / 1000},"RayID":"b1","ZoneName":"example.com"}\n`)
  const rfc = await get(base, received(ZONE, T0, T0 + 60_000, fields + '&timestamps=rfc3339'))
  assert.equal(rfc.text, '{"EdgeStartTimestamp":"2026-11-28T11:00:00Z","RayID":"b1","ZoneName":"example.com"}\n')
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000, '&fields=RayID,NoSuchField'))).status, 400)
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000, '&fields=RayID,%20ZoneName'))).status, 400)
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000, '&timestamps=iso'))).status, 400)
  // Our code never sends that: the OpenAPI check says so.
  assert.deepEqual(double.violations.splice(0), ['logs-received-get-logs-received query: /timestamps must be equal to one of the allowed values: ["unix","unixnano","rfc3339"]'])
  const list = await get(base, `/zones/${ZONE}/logs/received/fields`)
  assert.equal(list.status, 200)
  assert.equal(typeof (JSON.parse(list.text) as Record<string, string>).RayID, 'string')
  assert.deepEqual(double.violations, [])
})

test('identity when the zone is set so; the body comes in several chunks; count caps the records', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true, gzip: false, chunkRecords: 1 })
  addLogpullRecords(double, ZONE, rec('c1', T0), rec('c2', T0 + 1), rec('c3', T0 + 2))
  const r = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.equal(r.headers['content-encoding'], undefined)
  assert.deepEqual(rays(r.text), ['c1', 'c2', 'c3'])
  assert.equal(rays((await get(base, received(ZONE, T0, T0 + 60_000, '&count=2'))).text).length, 2)
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000, '&sample=0'))).status, 400)
  assert.deepEqual(double.violations, [])
})

test('the trailer switch: a 200 that ends with "Error streaming data." after N records, then whole answers again', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true, trailer: { afterRecords: 2, times: 1 } })
  addLogpullRecords(double, ZONE, rec('d1', T0), rec('d2', T0 + 1), rec('d3', T0 + 2))
  const bad = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.equal(bad.status, 200)
  const lines = bad.text.split('\n').filter((l) => l !== '')
  assert.equal(lines.length, 3)
  assert.equal(lines[2], 'Error streaming data.')
  const good = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.deepEqual(rays(good.text), ['d1', 'd2', 'd3'])
  assert.deepEqual(double.violations, [])
})

test('a record received in a window is served only once it is visible (late arrival within the delay)', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true })
  addLogpullRecords(double, ZONE, rec('e1', NOW - 180_000), rec('e2', NOW - 170_000, { visibleAt: NOW + 60_000 }))
  const w = received(ZONE, NOW - 180_000, NOW - 120_000)
  assert.deepEqual(rays((await get(base, w)).text), ['e1'])
  double.now = () => NOW + 60_000
  assert.deepEqual(rays((await get(base, w)).text), ['e1', 'e2'])
  assert.deepEqual(double.violations, [])
})

test('15 requests a minute per zone and 180 per user, then 429 with Retry-After', async (t) => {
  const { double, base } = await start(t)
  let now = NOW
  double.now = () => now
  const zones: string[] = []
  for (let i = 0; i < 13; i++) {
    const z = `${i.toString(16).padStart(2, '0')}${ZONE.slice(2)}`
    double.zones.set(z, { account: ACCOUNT, name: `z${i}.example` })
    logpullZone(double, z, { retention: true })
    zones.push(z)
  }
  const w = (z: string): string => received(z, T0, T0 + 60_000)
  for (let i = 0; i < 15; i++) assert.equal((await get(base, w(zones[0]))).status, 200)
  const limited = await get(base, w(zones[0]))
  assert.equal(limited.status, 429)
  assert.equal(limited.headers['retry-after'], '60')
  assert.equal((JSON.parse(limited.text) as { errors: Array<{ code: number }> }).errors[0].code, 971)
  now += 30_000
  assert.equal((await get(base, w(zones[0]))).headers['retry-after'], '30')
  now += 30_000
  assert.equal((await get(base, w(zones[0]))).status, 200, 'a minute later the zone may ask again')
  // The user's 180: 15 per zone over 12 zones; the 13th zone is refused though it asked nothing yet.
  now += 60_000
  for (const z of zones.slice(0, 12)) for (let i = 0; i < 15; i++) assert.equal((await get(base, w(z))).status, 200)
  assert.equal((await get(base, w(zones[12]))).status, 429)
  const key = '0123456789abcdef0123456789abcdef01234'
  assert.equal((await get(base, w(zones[12]), { 'x-auth-email': 'other@example.com', 'x-auth-key': key })).status, 403, 'unknown key: an auth error, not a rate')
  double.keys.set(`other@example.com\0${key}`, { accounts: '*', zones: '*', permissions: ['logs:read'] })
  assert.equal((await get(base, w(zones[12]), { 'x-auth-email': 'other@example.com', 'x-auth-key': key })).status, 200, 'another user has its own 180')
  assert.deepEqual(double.violations, [])
})

test('an answer idle for the idle timeout is a 408; more than 12 in an hour block the zone with 429 for an hour', async (t) => {
  const { double, base } = await start(t)
  const state = logpullState(double)
  state.idleTimeoutMs = 5
  logpullZone(double, ZONE, { retention: true, firstByteDelayMs: 10 })
  for (let i = 0; i < 13; i++) assert.equal((await get(base, received(ZONE, T0, T0 + 60_000))).status, 408)
  const blocked = await get(base, received(ZONE, T0, T0 + 60_000))
  assert.equal(blocked.status, 429)
  assert.equal(blocked.headers['retry-after'], '3600')
  assert.deepEqual(double.violations, [])
})

test('the retention flag: GET shows it, POST sets it (needs logs:write)', async (t) => {
  const { double, base } = await start(t)
  const flag = async (): Promise<unknown> => (JSON.parse((await get(base, `/zones/${ZONE}/logs/control/retention/flag`)).text) as { result: unknown }).result
  assert.deepEqual(await flag(), { flag: false })
  const post = async (token: string): Promise<number> => (await fetch(`${base}/zones/${ZONE}/logs/control/retention/flag`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{"flag":true}' })).status
  assert.equal(await post(TOKEN), 403)
  double.tokens.set('writer', { accounts: '*', zones: '*', permissions: ['logs:read', 'logs:write'] })
  assert.equal(await post('writer'), 200)
  assert.deepEqual(await flag(), { flag: true })
  assert.deepEqual(double.violations, [])
})

test('permission logs:read and the zone grant are required', async (t) => {
  const { double, base } = await start(t)
  logpullZone(double, ZONE, { retention: true })
  double.tokens.set('no-logs', { accounts: '*', zones: '*', permissions: ['audit:read'] })
  double.tokens.set('other-zone', { accounts: '*', zones: [OTHER], permissions: ['logs:read'] })
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000), { authorization: 'Bearer no-logs' })).status, 403)
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000), { authorization: 'Bearer other-zone' })).status, 403)
  assert.equal((await get(base, received(ZONE, T0, T0 + 60_000), { authorization: 'Bearer nope' })).status, 403)
  assert.deepEqual(double.violations, [])
})
