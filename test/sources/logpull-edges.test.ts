// Logpull's edges against the Cloudflare double: windows cut to whole seconds, and the per-zone
// limit (15 requests a minute) kept across a restart of the collector.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { Writable } from 'node:stream'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Collector, LogpullFetcher, LogpullRateLimiter, requestTimesFile, type RequestTimes } from '../../src/sources/cloudflare/index.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { createLogger } from '../../src/observability/index.js'
import { startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { logpullZone } from '../helpers/cloudflare-double/logpull.js'
import { fakeSpool } from '../helpers/collector-spool.js'
import { FaultFs, fsError } from '../helpers/fault-fs.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'logpull-edges-token'

interface Ctx { double: CloudflareDouble, base: string, clock: { now: number }, dir: string }

async function start(t: TestContext, now: number): Promise<Ctx> {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  const clock = { now }
  double.now = () => clock.now
  double.accounts.add(ACCOUNT)
  double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read'] })
  logpullZone(double, ZONE, { retention: true })
  return { double, base, clock, dir: await mkdtemp(join(tmpdir(), 'lpr-logpull-edges-')) }
}

/** One process's collector: its own limiter (in memory, as a new process has), the state directory shared. */
async function collector(c: Ctx, o: { windowSeconds: number, requestTimes?: RequestTimes, sleeps?: number[] }): Promise<Collector> {
  process.env.TEST_LOGPULL_EDGES_TOKEN = TOKEN
  const [config] = normalizeCollectors([{ name: 'lp', type: 'logpull', zone: ZONE, auth: { tokenEnv: 'TEST_LOGPULL_EDGES_TOKEN' }, windowSeconds: o.windowSeconds, delaySeconds: 300, startLookbackHours: 1, pollSeconds: 1 }])
  const limiter = new LogpullRateLimiter({ now: () => c.clock.now, sleep: async (ms) => { o.sleeps?.push(ms); c.clock.now += ms } })
  const fetcher = new LogpullFetcher({ baseUrl: c.base, zone: ZONE, credentials: { kind: 'token', token: TOKEN }, limiter, now: () => c.clock.now, attempts: 1, delayMs: 300_000, requestTimes: o.requestTimes ?? requestTimesFile(c.dir) })
  const col = new Collector({ config: config!, dataset: 'http_requests', fetcher, dir: c.dir, ingest: fakeSpool().ingest, log: createLogger('silent'), now: () => c.clock.now })
  await col.init()
  return col
}

const received = (d: CloudflareDouble): Array<{ start: string, end: string, status: number }> => d.requestsTo('logs-received-get-logs-received').map((r) => {
  const q = new URLSearchParams(r.query)
  return { start: q.get('start')!, end: q.get('end')!, status: r.status }
})

test('Logpull windows are cut to whole seconds, from a start at any millisecond', async (t) => {
  // The bug (#21 item 7): windows carried the milliseconds of `now − lookback` (start=…:00.123Z),
  // which Logpull reads to the second: records at the edge read twice or never.
  const c = await start(t, Date.parse('2026-11-28T12:00:00.123Z'))
  const col = await collector(c, { windowSeconds: 600 })
  for (let i = 0; i < 4; i++) {
    await col.step()
    c.clock.now += 7_777
  }
  const got = received(c.double)
  assert.ok(got.length >= 4)
  for (const r of got) {
    assert.match(r.start, /T\d\d:\d\d:\d\dZ$/, `start ${r.start}`)
    assert.match(r.end, /T\d\d:\d\d:\d\dZ$/, `end ${r.end}`)
  }
  assert.equal(got[0]!.start, '2026-11-28T11:00:00Z')
  for (let i = 1; i < got.length; i++) assert.equal(got[i]!.start, got[i - 1]!.end, 'windows meet edge to edge')
  assert.deepEqual(c.double.violations, [])
})

test('the per-zone limit holds across a restart: the new process waits for the minute the old one used', async (t) => {
  // The bug (#21 item 7): the limiter lived in the process only; across a restart a zone saw 16
  // requests in 60 s against Cloudflare's 15, and the 16th was refused with 429.
  const c = await start(t, Date.parse('2026-11-28T12:00:00Z'))
  const first = await collector(c, { windowSeconds: 60 })
  for (let i = 0; i < 15; i++) assert.equal(await first.step(), true)
  assert.equal(received(c.double).length, 15)
  // kill -9: a new process, a new (empty) limiter, the same state directory.
  const sleeps: number[] = []
  const second = await collector(c, { windowSeconds: 60, sleeps })
  assert.equal(await second.step(), true)
  const got = received(c.double)
  assert.deepEqual(got.map((r) => r.status), Array(16).fill(200), 'no 429: the 16th request waited for the first to age out')
  assert.equal(sleeps.length, 1)
  assert.ok(sleeps[0]! >= 59_000, `waited ${sleeps[0]} ms`)
  assert.deepEqual(c.double.violations, [])
})

test('request times that cannot be read count as a whole minute used: the collector waits rather than guess', async (t) => {
  const c = await start(t, Date.parse('2026-11-28T12:00:00Z'))
  const fs = new FaultFs()
  await fs.mkdir(c.dir, { recursive: true })
  fs.hook = (call) => { if (call.op === 'readFile') throw fsError('EIO', 'read', call.path) }
  const sleeps: number[] = []
  const col = await collector(c, { windowSeconds: 60, sleeps, requestTimes: requestTimesFile(c.dir, fs) })
  assert.equal(await col.step(), true)
  assert.equal(sleeps.length, 1)
  assert.ok(sleeps[0]! >= 59_000, `waited ${sleeps[0]} ms`)
  assert.deepEqual(received(c.double).map((r) => r.status), [200])
})

test('a Retry-After of a day is obeyed only up to SOURCE_RETRY_AFTER_MAX_SECONDS', { timeout: 60_000 }, async (t) => {
  // The bug (#21 item 5): an unbounded Retry-After was obeyed: one 429 saying 86400 parked the
  // collector for a day.
  const c = await start(t, Date.parse('2026-11-28T12:00:00Z'))
  c.double.inject({ path: /logs\/received$/, reply: { status: 429, headers: { 'retry-after': '86400', 'content-type': 'application/json' }, json: { success: false, errors: [{ code: 971, message: 'Please wait and consider throttling your request speed' }], messages: [], result: null } } })
  const limiter = new LogpullRateLimiter({ now: () => c.clock.now, sleep: async (ms) => { c.clock.now += ms } })
  const fetcher = new LogpullFetcher({ baseUrl: c.base, zone: ZONE, credentials: { kind: 'token', token: TOKEN }, limiter, now: () => c.clock.now, attempts: 2, retryAfterMaxMs: 50 })
  const started = Date.now()
  const w = { start: Date.parse('2026-11-28T11:00:00Z'), end: Date.parse('2026-11-28T11:01:00Z') }
  await fetcher.fetch(w, new Writable({ write (_c, _e, cb) { cb() } }), AbortSignal.timeout(50_000))
  assert.deepEqual(received(c.double).map((r) => r.status), [429, 200])
  assert.ok(Date.now() - started < 50_000)
})

test('request times kept from before a restart that lie in the future (the clock stepped back) count as made now, not for as long as the clock takes to catch up', async () => {
  // The bug: the limiter kept a seeded time until it was a minute old by the new clock, so after
  // the clock stepped back an hour (a VM resumed, NTP correcting a fast clock) a zone whose 15
  // request times were kept waited an hour and a minute for its next request.
  let now = Date.parse('2026-11-20T10:00:00Z')
  const waits: number[] = []
  const limiter = new LogpullRateLimiter({ now: () => now, sleep: async (ms) => { waits.push(ms); now += ms } })
  limiter.seed('zone:z', Array<number>(15).fill(now + 3_600_000))
  await limiter.acquire([{ key: 'zone:z', perMinute: 15 }])
  const waited = waits.reduce((a, b) => a + b, 0)
  assert.ok(waited > 0 && waited <= 60_000, `waited ${waited} ms`)
  assert.ok(limiter.recent('zone:z').every((t) => t <= now), 'no time kept after now')
})
