// The Logpull fetcher against the Cloudflare double: lines byte for byte, the `Error streaming
// data.` trailer failing the window, gzip and identity, the window rules (split, refuse, skip what
// retention no longer holds), the shared rate limiter (counts and order, never elapsed time),
// 429 with Retry-After, and auth failures typed so the runner stops.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Readable, Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { isAuthFailure } from '../../src/cloudflare-api/client.js'
import { LOGPULL_DEFAULTS, LogpullFetcher, LogpullRateLimiter, TrailerGate, type LogpullFetcherOptions } from '../../src/sources/cloudflare/logpull.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { addLogpullRecords, logpullLine, logpullZone, LOGPULL_DEFAULT_FIELDS, type LogpullRecord } from '../helpers/cloudflare-double/logpull.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'logpull-token'
const NOW = Date.parse('2026-11-28T12:00:00Z')
const T0 = Date.parse('2026-11-28T11:00:00Z')

interface Ctx { double: CloudflareDouble, base: string, clock: { now: number }, limiter: LogpullRateLimiter, sleeps: number[] }

async function start(t: TestContext): Promise<Ctx> {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  const clock = { now: NOW }
  double.now = () => clock.now
  double.accounts.add(ACCOUNT)
  double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  double.tokens.set(TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read'] })
  logpullZone(double, ZONE, { retention: true })
  const sleeps: number[] = []
  // The limiter's clock is the double's: a wait moves both, so no test waits for real.
  const limiter = new LogpullRateLimiter({ now: () => clock.now, sleep: async (ms) => { sleeps.push(ms); clock.now += ms } })
  return { double, base, clock, limiter, sleeps }
}

function fetcher(c: Ctx, opts: Partial<LogpullFetcherOptions> = {}): LogpullFetcher {
  return new LogpullFetcher({ baseUrl: c.base, zone: ZONE, credentials: { kind: 'token', token: TOKEN }, limiter: c.limiter, now: () => c.clock.now, attempts: 3, backoffMs: 1, ...opts })
}

/** A staging stream that holds little and drains late, so the fetcher must wait on it. */
function slowSink(): { out: Writable, bytes: () => Buffer } {
  const chunks: Buffer[] = []
  const out = new Writable({ highWaterMark: 16, write(chunk: Buffer, _enc, cb) { chunks.push(chunk); setImmediate(cb) } })
  return { out, bytes: () => Buffer.concat(chunks) }
}

let seq = 0
function rec(receivedAt: number, extra: Record<string, unknown> = {}): LogpullRecord {
  const ns = BigInt(receivedAt) * 1_000_000n + BigInt(seq)
  return {
    receivedAt,
    fields: { ClientIP: '2001:db8::1', ClientRequestHost: 'example.com', ClientRequestMethod: 'GET', ClientRequestURI: `/p?q=${seq}&u=\u00e9\u2028`, EdgeEndTimestamp: ns + 1n, EdgeResponseBytes: 100 + seq, EdgeResponseStatus: 200, EdgeStartTimestamp: ns, RayID: `8c${(seq++).toString(16).padStart(14, '0')}`, ...extra }
  }
}

const sortedLines = (b: Buffer): string[] => b.toString('utf8').split('\n').filter((l) => l !== '').sort()
const W = { start: T0, end: T0 + 60_000 }

test('every record of the window reaches out as the line Cloudflare sent, byte for byte, through a slow staging stream', async (t) => {
  const c = await start(t)
  const records = Array.from({ length: 50 }, (_, i) => rec(T0 + i * 1000))
  addLogpullRecords(c.double, ZONE, rec(T0 - 1), ...records, rec(T0 + 60_000))
  const { out, bytes } = slowSink()
  const got = await fetcher(c).fetch(W, out, AbortSignal.timeout(30_000))
  assert.equal(got.records, 50)
  assert.deepEqual(sortedLines(bytes()), records.map((r) => logpullLine(r, LOGPULL_DEFAULT_FIELDS, 'unixnano')).sort())
  assert.ok(bytes().toString('utf8').endsWith('\n'))
  const q = new URLSearchParams(c.double.requests[0].query)
  assert.equal(q.get('start'), '2026-11-28T11:00:00Z')
  assert.equal(q.get('end'), '2026-11-28T11:01:00Z')
  assert.equal(q.get('timestamps'), 'unixnano')
  assert.equal(q.get('fields'), null)
  assert.deepEqual(c.double.violations, [])
})

test('gzip and identity answers give the same lines; fields and timestamps are asked for as configured', async (t) => {
  const c = await start(t)
  const records = Array.from({ length: 7 }, (_, i) => rec(T0 + i))
  addLogpullRecords(c.double, ZONE, ...records)
  const fields = ['RayID', 'EdgeStartTimestamp', 'ClientIP']
  const want = records.map((r) => logpullLine(r, fields, 'rfc3339')).sort()
  for (const gzip of [true, false]) {
    logpullZone(c.double, ZONE, { gzip, chunkRecords: 3 })
    const { out, bytes } = slowSink()
    await fetcher(c, { fields, timestamps: 'rfc3339' }).fetch(W, out, AbortSignal.timeout(30_000))
    assert.deepEqual(sortedLines(bytes()), want, `gzip ${gzip}`)
  }
  assert.equal(c.double.requests.filter((r) => r.headers['accept-encoding'] === 'gzip').length, 2)
  assert.equal(new URLSearchParams(c.double.requests[0].query).get('fields'), 'RayID,EdgeStartTimestamp,ClientIP')
})

test('a 200 ending with "Error streaming data." rejects the window (LPR_ERR_SOURCE_LOGPULL_STREAM), and the trailer never reaches out', async (t) => {
  const c = await start(t)
  addLogpullRecords(c.double, ZONE, ...Array.from({ length: 5 }, (_, i) => rec(T0 + i)))
  logpullZone(c.double, ZONE, { trailer: { afterRecords: 3, times: 1 } })
  const first = slowSink()
  await assert.rejects(fetcher(c).fetch(W, first.out, AbortSignal.timeout(30_000)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'LPR_ERR_SOURCE_LOGPULL_STREAM')
    assert.match(err.message, /Error streaming data\./)
    assert.equal(isAuthFailure(err), false)
    return true
  })
  assert.doesNotMatch(first.bytes().toString('utf8'), /Error streaming/)
  const again = slowSink()
  assert.equal((await fetcher(c).fetch(W, again.out, AbortSignal.timeout(30_000))).records, 5, 'the window read again is whole')
})

test('a body that breaks off rejects the window: gzip cut short, or the connection dropped mid-answer', async (t) => {
  // The bug this pins: read through fetch(), a gzip body cut short (yet ended as HTTP) was decoded
  // leniently and taken as complete, so a partial window would have been stored as whole.
  const c = await start(t)
  const line = logpullLine(rec(T0), LOGPULL_DEFAULT_FIELDS, 'unixnano') + '\n'
  c.double.inject({ path: /logs\/received$/, reply: { status: 200, stream: Readable.from((async function * () { yield Buffer.from(line); throw new Error('reset') })()) } })
  await assert.rejects(fetcher(c).fetch(W, slowSink().out, AbortSignal.timeout(30_000)), { code: 'LPR_ERR_SOURCE_LOGPULL_STREAM' })
  const whole = gzipSync(Buffer.from(logpullLine(rec(T0), LOGPULL_DEFAULT_FIELDS, 'unixnano').repeat(50) + '\n'))
  c.double.inject({ path: /logs\/received$/, reply: { status: 200, headers: { 'content-encoding': 'gzip' }, stream: Readable.from([whole.subarray(0, whole.length - 20)]) } })
  await assert.rejects(fetcher(c).fetch(W, slowSink().out, AbortSignal.timeout(30_000)), { code: 'LPR_ERR_SOURCE_LOGPULL_STREAM' })
})

test('the trailer gate: bytes pass untouched wherever the chunks split; only a whole trailer line is held back', () => {
  const bodies: Array<[string, string, boolean]> = [
    ['{"a":1}\n{"b":2}\n', '{"a":1}\n{"b":2}\n', false],
    ['{"a":1}\n{"b":2}', '{"a":1}\n{"b":2}\n', false],
    ['{"a":1}\nError streaming data.\n', '{"a":1}\n', true],
    ['{"a":1}\nError streaming data.', '{"a":1}\n', true],
    ['{"a":1}\r\nError streaming data.\r\n', '{"a":1}\r\n', true],
    ['Error streaming data.x\n{"a":1}\n', 'Error streaming data.x\n{"a":1}\n', false],
    ['Error\n{"E":1}\n\n', 'Error\n{"E":1}\n\n', false],
    ['', '', false]
  ]
  for (const [body, want, trailer] of bodies) {
    const b = Buffer.from(body)
    for (let i = 0; i <= b.length; i++) {
      for (const j of [i, Math.min(b.length, i + 1), Math.min(b.length, i + 7)]) {
        const gate = new TrailerGate()
        const out = [b.subarray(0, i), b.subarray(i, j), b.subarray(j)].flatMap((p) => gate.push(p)).concat(gate.end())
        assert.equal(Buffer.concat(out).toString('utf8'), want, `${JSON.stringify(body)} split at ${i},${j}`)
        assert.equal(gate.trailer, trailer)
      }
    }
  }
  const g = new TrailerGate()
  g.push(Buffer.from('{"a":1}\n\n{"b":2}\n'))
  assert.equal(g.lines, 2, 'blank lines are not records')
})

test('window rules: longer than an hour is read as one-hour requests; too recent is refused without a request; beyond retention is skipped with a notice', async (t) => {
  const c = await start(t)
  addLogpullRecords(c.double, ZONE, rec(NOW - 2 * 3_600_000), rec(NOW - 3_600_000 - 1), rec(NOW - 3_600_000), rec(NOW - 600_000))
  const skipped: Array<{ window: string, skippedMs: number }> = []
  const f = fetcher(c, { onSkipped: (s) => skipped.push(s) })
  const two = await f.fetch({ start: NOW - 2 * 3_600_000, end: NOW - 300_000 }, slowSink().out, AbortSignal.timeout(30_000))
  assert.equal(two.records, 4)
  assert.deepEqual(c.double.requests.map((r) => { const q = new URLSearchParams(r.query); return `${q.get('start')} ${q.get('end')}` }), [
    '2026-11-28T10:00:00Z 2026-11-28T11:00:00Z', '2026-11-28T11:00:00Z 2026-11-28T11:55:00Z'
  ])
  const before = c.double.requests.length
  await assert.rejects(f.fetch({ start: NOW - 600_000, end: NOW - 299_999 }, slowSink().out, AbortSignal.timeout(30_000)), { code: 'LPR_ERR_SOURCE_LOGPULL_WINDOW' })
  await assert.rejects(f.fetch({ start: NOW - 600_000, end: NOW - 600_000 }, slowSink().out, AbortSignal.timeout(30_000)), { code: 'LPR_ERR_SOURCE_LOGPULL_WINDOW' })
  assert.equal(c.double.requests.length, before, 'nothing was asked')
  // A cursor left behind for over a week: the part Cloudflare no longer has is skipped, loudly.
  const old = NOW - LOGPULL_DEFAULTS.retentionMs
  assert.deepEqual(await f.fetch({ start: old - 3_600_000, end: old }, slowSink().out, AbortSignal.timeout(30_000)), { records: 0 })
  assert.equal(c.double.requests.length, before, 'a window wholly beyond retention asks nothing')
  await f.fetch({ start: old, end: old + 3_600_000 }, slowSink().out, AbortSignal.timeout(30_000))
  const q = new URLSearchParams(c.double.requests.at(-1)!.query)
  assert.equal(q.get('start'), new Date(old + LOGPULL_DEFAULTS.retentionMarginMs).toISOString().replace('.000Z', 'Z'))
  assert.equal(c.double.requests.at(-1)!.status, 200)
  assert.deepEqual(skipped.map((s) => s.skippedMs), [3_600_000, LOGPULL_DEFAULTS.retentionMarginMs])
  assert.deepEqual(c.double.violations, [])
})

test('Logpull\'s own refusals are typed: a window the API calls too recent, and retention off', async (t) => {
  const c = await start(t)
  await assert.rejects(fetcher(c, { delayMs: 1000 }).fetch({ start: NOW - 90_000, end: NOW - 30_000 }, slowSink().out, AbortSignal.timeout(30_000)), (err: Error & { code?: string }) => {
    // The fetcher raises a delay below the API's one minute to it, so it refuses before asking.
    assert.equal(err.code, 'LPR_ERR_SOURCE_LOGPULL_WINDOW')
    return true
  })
  c.double.inject({ path: /logs\/received$/, reply: { status: 400, headers: { 'content-type': 'text/plain' }, stream: Readable.from([Buffer.from('bad query: error parsing time: invalid time range: too recent: minimum delay in serving logs is 1m0s')]) } })
  await assert.rejects(fetcher(c).fetch(W, slowSink().out, AbortSignal.timeout(30_000)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'LPR_ERR_SOURCE_LOGPULL_WINDOW')
    assert.match(err.message, /too recent: minimum delay in serving logs is 1m0s/)
    return true
  })
  logpullZone(c.double, ZONE, { retention: false })
  await assert.rejects(fetcher(c).fetch(W, slowSink().out, AbortSignal.timeout(30_000)), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'LPR_ERR_SOURCE_LOGPULL_RETENTION')
    assert.match(err.message, /Retention is not turned on/)
    assert.equal(isAuthFailure(err), false)
    return true
  })
})

test('auth failures stay auth failures (the runner stops the collector): unknown token, missing permission, bad key', async (t) => {
  const c = await start(t)
  c.double.tokens.set('audit-only', { accounts: '*', zones: '*', permissions: ['audit:read'] })
  for (const credentials of [{ kind: 'token', token: 'unknown' }, { kind: 'token', token: 'audit-only' }, { kind: 'key', email: 'a@example.com', key: 'nope' }] as const) {
    await assert.rejects(fetcher(c, { credentials }).fetch(W, slowSink().out, AbortSignal.timeout(30_000)), (err: unknown) => {
      assert.equal(isAuthFailure(err), true, JSON.stringify(credentials.kind))
      assert.doesNotMatch(String((err as Error).message), /unknown|audit-only|nope/, 'no secret in the message')
      return true
    })
  }
  assert.equal(c.double.requests.length, 3, 'each tried once: retrying cannot help')
})

test('the limiter keeps 15 requests a minute per zone and 180 per user: the 16th request of a minute waits for the first to age out', async () => {
  let now = 0
  const sleeps: number[] = []
  const order: string[] = []
  const limiter = new LogpullRateLimiter({ now: () => now, sleep: async (ms) => { sleeps.push(ms); now += ms } })
  const zone = (z: string): Array<{ key: string, perMinute: number }> => [{ key: `zone:${z}`, perMinute: 15 }, { key: 'user:u', perMinute: 180 }]
  for (let i = 0; i < 16; i++) { await limiter.acquire(zone('a')); order.push(`a${i}@${now}`); now += 1000 }
  assert.deepEqual(sleeps, [45_000], 'the 16th (at 16 s) waits until the first (at 0 s) is a minute old')
  assert.equal(order[15], 'a15@60000')
  // Other zones of the same user are not held by zone a's limit, but together by the user's 180.
  now += 60_000
  sleeps.length = 0
  for (let z = 0; z < 12; z++) for (let i = 0; i < 15; i++) await limiter.acquire(zone(`z${z}`))
  assert.deepEqual(sleeps, [], '180 requests over 12 zones fit in one minute')
  await limiter.acquire(zone('z12'))
  assert.deepEqual(sleeps, [60_000], 'the 181st of the user\'s minute waits, though its zone asked nothing yet')
})

test('fetchers of one user share the limiter: 16 windows of one zone make 16 requests, none refused with 429', async (t) => {
  const c = await start(t)
  addLogpullRecords(c.double, ZONE, rec(T0))
  const f = fetcher(c)
  for (let i = 0; i < 16; i++) await f.fetch({ start: T0 + i * 60_000, end: T0 + (i + 1) * 60_000 }, slowSink().out, AbortSignal.timeout(30_000))
  assert.deepEqual(c.double.requests.map((r) => r.status), Array(16).fill(200))
  assert.equal(c.sleeps.length, 1, 'the limiter waited once, before the 16th')
})

test('a 429 with Retry-After is waited out and the window read', async (t) => {
  const c = await start(t)
  addLogpullRecords(c.double, ZONE, rec(T0))
  c.double.inject({ path: /logs\/received$/, reply: { status: 429, headers: { 'retry-after': '1', 'content-type': 'application/json' }, json: { success: false, errors: [{ code: 971, message: 'Please wait and consider throttling your request speed' }], messages: [], result: null } } })
  const got = await fetcher(c).fetch(W, slowSink().out, AbortSignal.timeout(30_000))
  assert.equal(got.records, 1)
  assert.deepEqual(c.double.requests.map((r) => r.status), [429, 200])
})

test('config: Logpull fields only on type logpull, a delay of at least a minute, windows of at most an hour', () => {
  const base = { name: 'lp', type: 'logpull', zone: ZONE, auth: { tokenEnv: 'X' } }
  const [c] = normalizeCollectors([{ ...base, fields: ['RayID'], timestamps: 'unix' }])
  assert.equal(c!.delaySeconds, 300)
  assert.throws(() => normalizeCollectors([{ ...base, delaySeconds: 59 }]), /delaySeconds: Logpull needs at least 60/)
  assert.throws(() => normalizeCollectors([{ ...base, windowSeconds: 3601 }]), /at most 3600/)
  assert.throws(() => normalizeCollectors([{ name: 'a', type: 'audit_logs', account: ACCOUNT, auth: { tokenEnv: 'X' }, fields: ['RayID'] }]), /a\.fields: only type logpull takes it/)
})
