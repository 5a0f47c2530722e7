// The Logpull collector (runner + Logpull fetcher) against the double, on one driven clock:
// records that Cloudflare makes visible late (within the documented delay), windows that end
// with "Error streaming data.", restarts between windows: every RayID stored exactly once.
// And the reason for the five-minute default: with the docs' one minute, late records are lost.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Collector, LogpullFetcher, LogpullRateLimiter } from '../../src/sources/cloudflare/index.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { createLogger } from '../../src/observability/index.js'
import { startCloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { fakeSpool } from '../helpers/collector-spool.js'
import { addLogpullRecords, logpullZone } from '../helpers/cloudflare-double/logpull.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const T0 = Date.UTC(2026, 10, 20, 10, 0, 0)


/** Seeded, so a failure can be replayed. */
function random(seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

async function run(t: TestContext, delaySeconds: number): Promise<{ served: Set<string>, rays: string[], trailers: number, restarts: number }> {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  let clock = T0
  double.now = () => clock
  double.accounts.add(ACCOUNT)
  double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  double.tokens.set('tok', { accounts: '*', zones: [ZONE], permissions: ['logs:read'] })
  logpullZone(double, ZONE, { retention: true, chunkRecords: 3 })
  const rnd = random(7)
  let n = 0
  const served = new Set<string>()
  /** A record Cloudflare received at `at` and serves up to five minutes later ([FAQ] in the double). */
  const add = (at: number): void => {
    const ray = `8d${(n++).toString(16).padStart(14, '0')}`
    served.add(ray)
    const ns = BigInt(at) * 1_000_000n
    addLogpullRecords(double, ZONE, { receivedAt: at, visibleAt: at + Math.floor(rnd() * 300_000), fields: { RayID: ray, EdgeStartTimestamp: ns, EdgeEndTimestamp: ns + 1000n, ClientIP: '192.0.2.7', ClientRequestHost: 'example.com', ClientRequestMethod: 'GET', ClientRequestURI: '/', EdgeResponseBytes: 1, EdgeResponseStatus: 200 } })
  }
  for (let i = 0; i < 120; i++) add(T0 - 3_600_000 + Math.floor(rnd() * 3_000_000))

  process.env.TEST_LOGPULL_TOKEN = 'tok'
  const [config] = normalizeCollectors([{ name: 'lp', type: 'logpull', zone: ZONE, auth: { tokenEnv: 'TEST_LOGPULL_TOKEN' }, windowSeconds: 120, delaySeconds, startLookbackHours: 1, pollSeconds: 1 }])
  const dir = await mkdtemp(join(tmpdir(), 'lpr-logpull-collector-'))
  const spool = fakeSpool()
  const limiter = new LogpullRateLimiter({ now: () => clock, sleep: async (ms) => { clock += ms } })
  const make = async (): Promise<Collector> => {
    const fetcher = new LogpullFetcher({ baseUrl: base, zone: ZONE, credentials: { kind: 'token', token: 'tok' }, delayMs: config!.delaySeconds * 1000, limiter, now: () => clock, attempts: 1 })
    const c = new Collector({ config: config!, dataset: 'http_requests', fetcher, dir, ingest: spool.ingest, log: createLogger('silent'), now: () => clock })
    await c.init()
    return c
  }
  let c = await make()
  let trailers = 0
  let restarts = 0
  const drain = async (): Promise<void> => {
    for (let guard = 0; guard < 1000; guard++) {
      try {
        if (!await c.step()) return
      } catch (err) {
        assert.equal((err as { code?: string }).code, 'LPR_ERR_SOURCE_LOGPULL_STREAM')
        trailers++
      }
    }
    assert.fail('the collector never caught up')
  }
  // About two simulated hours: records keep arriving (late, within five minutes), the clock moves,
  // some answers end with the trailer, the collector is rebuilt from its directory now and then.
  for (let step = 0; step < 100; step++) {
    for (let k = Math.floor(rnd() * 4); k > 0; k--) add(clock - Math.floor(rnd() * 20_000))
    if (rnd() < 0.1) logpullZone(double, ZONE, { trailer: { afterRecords: Math.floor(rnd() * 3), times: 1 } })
    if (rnd() < 0.1) { c = await make(); restarts++ }
    await drain()
    clock += 20_000 + Math.floor(rnd() * 80_000)
  }
  const last = clock
  clock = last + 10 * 60_000
  logpullZone(double, ZONE, { trailer: { afterRecords: 0, times: 0 } })
  await drain()
  assert.deepEqual(double.violations, [])
  return { served, rays: spool.lines().map((l: { RayID: string }) => l.RayID), trailers, restarts }
}

test('every RayID exactly once through late records, trailer-ended windows and restarts (delay 300 s)', async (t) => {
  const { served, rays, trailers, restarts } = await run(t, 300)
  t.diagnostic(`${served.size} records served, ${rays.length} stored, ${trailers} windows ended with the trailer and were read again, ${restarts} restarts`)
  assert.ok(trailers > 0, 'some windows failed with the trailer')
  const counts = new Map<string, number>()
  for (const r of rays) counts.set(r, (counts.get(r) ?? 0) + 1)
  assert.deepEqual([...served].filter((r) => !counts.has(r)), [], 'none skipped')
  assert.deepEqual([...counts].filter(([, k]) => k > 1), [], 'none twice')
  assert.equal(rays.length, served.size)
})

test('with the docs\' one-minute delay, records Cloudflare serves up to five minutes late are skipped: why 300 s is the default', async (t) => {
  const { served, rays } = await run(t, 60)
  const missing = [...served].filter((r) => !rays.includes(r)).length
  t.diagnostic(`${missing} of ${served.size} records missed with delaySeconds 60`)
  assert.ok(missing > 0)
})
