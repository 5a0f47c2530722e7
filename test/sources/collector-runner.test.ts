// A pull collector against the Cloudflare API double: windows, pagination, late records, the
// staged window across a crash, Retry-After, and a refused credential that stops one collector only.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { Collector, fetcherFor, writeLine, type WindowFetcher } from '../../src/sources/cloudflare/index.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { collectorDataset } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/index.js'
import { readCredentials } from '../../src/cloudflare-api/client.js'
import { schemasDir } from '../../src/paths.js'
import { fakeSpool } from '../helpers/collector-spool.js'
import { addAuditV1, addAuditV2, startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'

const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const T0 = Date.UTC(2026, 10, 20, 10, 0, 0)


function captureLog(): { log: ReturnType<typeof createLogger>, lines: () => any[] } {
  const out: string[] = []
  const sink = new Writable({ write(chunk, _e, cb) { out.push(String(chunk)); cb() } })
  return { log: createLogger('info', sink), lines: () => out.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l)) }
}

async function double(t: TestContext): Promise<{ double: CloudflareDouble, base: string }> {
  const d = await startCloudflareDouble()
  t.after(() => d.double.stop())
  d.double.accounts.add(ACCOUNT)
  d.double.tokens.set('goodtoken', { accounts: [ACCOUNT], zones: [], permissions: ['audit:read'] })
  return d
}

async function collector(t: TestContext, base: string, raw: Record<string, unknown>, opts: { dir?: string, now?: () => number, ingest?: ReturnType<typeof fakeSpool>['ingest'], log?: ReturnType<typeof createLogger>, fetcher?: WindowFetcher } = {}): Promise<{ c: Collector, dir: string }> {
  const [config] = normalizeCollectors([{ account: ACCOUNT, auth: { tokenEnv: 'TEST_CF_TOKEN' }, startLookbackHours: 0, ...raw }])
  process.env.TEST_CF_TOKEN = 'goodtoken'
  process.env.TEST_CF_BAD_TOKEN = 'unknowntoken'
  const dataset = collectorDataset[config!.type]
  const log = opts.log ?? createLogger('silent')
  const dir = opts.dir ?? await mkdtemp(join(tmpdir(), 'lpr-collector-'))
  const c = new Collector({
    config: config!,
    dataset,
    fetcher: opts.fetcher ?? fetcherFor(config!, { baseUrl: base, credentials: readCredentials('test', config!.auth), schemasDir, dataset, log }),
    dir,
    ingest: opts.ingest ?? fakeSpool().ingest,
    log,
    now: opts.now,
    backoffBaseMs: 50
  })
  await c.init()
  t.after(() => c.stop())
  return { c, dir }
}

test('v1: a window read page by page (page+1 until a short page), late records within the delay included, records outside the window left to theirs', async (t) => {
  const { double: d, base } = await double(t)
  let clock = T0
  d.now = () => clock
  for (let i = 1; i <= 5; i++) addAuditV1(d, ACCOUNT, T0 + i * 1000, { id: `v1-${i}` }, T0)
  addAuditV1(d, ACCOUNT, T0 - 1, { id: 'before-start' }, T0)
  addAuditV1(d, ACCOUNT, T0 + 60_000, { id: 'next-window' }, T0)
  // Late: happened at +55 s, visible only at +80 s, inside the 30 s delay.
  addAuditV1(d, ACCOUNT, T0 + 55_000, { id: 'late' }, T0 + 80_000)
  const spool = fakeSpool()
  const { c } = await collector(t, base, { name: 'v1', type: 'audit_logs', windowSeconds: 60, delaySeconds: 30, perPage: 2 }, { now: () => clock, ingest: spool.ingest })

  clock = T0 + 60_000
  assert.equal(await c.step(), true, 'a window [T0, T0+30 s): end is 30 s behind now')
  clock = T0 + 90_000
  assert.equal(await c.step(), true, 'then [T0+30 s, T0+60 s)')
  assert.equal(await c.step(), false, 'nothing more until now - delay passes T0+60 s')
  const ids = spool.lines().map((l) => l.ID)
  assert.deepEqual(ids, ['v1-1', 'v1-2', 'v1-3', 'v1-4', 'v1-5', 'late'])
  assert.equal(c.status().cursor, new Date(T0 + 60_000).toISOString())
  assert.equal(c.records, 6)
  const v1Pages = d.requests.filter((r) => r.path.endsWith('/audit_logs')).map((r) => new URLSearchParams(r.query).get('page'))
  // The ask is a second wider on each side: 'before-start' and five records fill pages 1-3, page 4
  // is empty (the end). Second window: 'late' and 'next-window' fill page 1, page 2 is empty. The
  // records of the slack are left out.
  assert.deepEqual(v1Pages, ['1', '2', '3', '4', '1', '2'], 'pages until a short or empty one')
  const q = new URLSearchParams(d.requests[0]!.query)
  assert.equal(q.get('direction'), 'asc')
  assert.equal(q.get('per_page'), '2')
  assert.deepEqual(d.violations, [])
})

test('v2: cursor pagination with since/before and limit; a record shown on two pages is written once', async (t) => {
  const { double: d, base } = await double(t)
  let clock = T0
  d.now = () => clock
  for (let i = 1; i <= 5; i++) addAuditV2(d, ACCOUNT, T0 + i * 1000, { id: `v2-${i}` }, T0)
  // The same record twice in the API's answer (a page boundary that moved): written once.
  addAuditV2(d, ACCOUNT, T0 + 3000, { id: 'v2-3' }, T0)
  const spool = fakeSpool()
  const { c } = await collector(t, base, { name: 'v2', type: 'audit_logs_v2', windowSeconds: 60, delaySeconds: 30, perPage: 2 }, { now: () => clock, ingest: spool.ingest })
  clock = T0 + 90_000
  assert.equal(await c.step(), true)
  assert.deepEqual(spool.lines().map((l) => l.AuditLogID), ['v2-1', 'v2-2', 'v2-3', 'v2-4', 'v2-5'])
  const reqs = d.requests.filter((r) => r.path.endsWith('/logs/audit'))
  assert.equal(reqs.length, 3, '6 records, 2 per page')
  const q = new URLSearchParams(reqs[1]!.query)
  assert.ok(q.get('cursor'), 'the next page asks with the cursor')
  assert.ok(q.get('since') && q.get('before'), 'v2 requires since and before on every page')
  assert.equal(q.get('limit'), '2')
  clock = T0 + 200_000
  assert.equal(await c.step(), true, 'an empty window moves the cursor on without a staged file')
  assert.equal(spool.digests.size, 1)
  assert.deepEqual(d.violations, [])
})

test('a crash after the spool took a staged window, before the cursor moved: the window is ingested again and recognised, nothing doubled', async (t) => {
  const { double: d, base } = await double(t)
  let clock = T0
  d.now = () => clock
  for (let i = 1; i <= 3; i++) addAuditV1(d, ACCOUNT, T0 + i * 1000, { id: `r${i}` }, T0)
  const spool = fakeSpool()
  let crash = true
  const crashing: typeof spool.ingest = async (body, digest, label) => {
    const out = await spool.ingest(body, digest, label)
    if (crash) throw new Error('kill -9 here')
    return out
  }
  const raw = { name: 'crashy', type: 'audit_logs', windowSeconds: 60, delaySeconds: 30 }
  const first = await collector(t, base, raw, { now: () => clock, ingest: crashing })
  clock = T0 + 120_000
  await assert.rejects(first.c.step(), /kill -9 here/)
  assert.equal(first.c.status().cursor, new Date(T0).toISOString(), 'the cursor did not move')
  crash = false
  const second = await collector(t, base, raw, { dir: first.dir, now: () => clock, ingest: crashing })
  const before = d.requests.length
  assert.equal(await second.c.step(), true)
  assert.equal(d.requests.length, before, 'the staged window came from its file, not from the API')
  assert.equal(second.c.status().cursor, new Date(T0 + 60_000).toISOString())
  assert.deepEqual(spool.lines().map((l) => l.ID), ['r1', 'r2', 'r3'], 'stored once')
  assert.equal(second.c.records, 0, 'the re-send was a duplicate: counted by the process that stored it')

  // A window cut short: nothing of it is kept, the cursor stays, the next try reads it whole.
  const third = await collector(t, base, raw, {
    dir: first.dir,
    now: () => clock,
    ingest: spool.ingest,
    fetcher: { async fetch(_w, out) { out.write('{"ID":"half"}\n'); throw new Error('stream cut') } }
  })
  await assert.rejects(third.c.step(), /stream cut/)
  assert.equal(third.c.status().cursor, new Date(T0 + 60_000).toISOString())
  assert.ok(!spool.lines().some((l) => l.ID === 'half'))
  assert.deepEqual(d.violations, [])
})

test('429 with Retry-After: the wait is honoured and the collector goes on', async (t) => {
  const { double: d, base } = await double(t)
  addAuditV1(d, ACCOUNT, Date.now() - 600_000, { id: 'after-429' })
  // Three 429s: the SDK's own two retries, then the runner's wait, then success.
  d.inject({ method: 'GET', path: /\/audit_logs$/, times: 3, reply: { status: 429, headers: { 'retry-after': '1' }, json: { success: false, errors: [{ code: 10000, message: 'Rate limited' }], messages: [], result: null } } })
  const spool = fakeSpool()
  const { c } = await collector(t, base, { name: 'limited', type: 'audit_logs', windowSeconds: 3600, delaySeconds: 0, startLookbackHours: 1, pollSeconds: 60 }, { ingest: spool.ingest })
  c.start()
  const end = Date.now() + 20_000
  while (spool.lines().length === 0 || c.status().state !== 'running') { assert.ok(Date.now() < end, 'stored after the 429s'); await sleep(20) }
  assert.deepEqual(spool.lines().map((l) => l.ID), ['after-429'])
  assert.deepEqual(d.requests.slice(0, 4).map((r) => r.status), [429, 429, 429, 200])
  // The double's own times: a 10 ms poll of d.requests could miss the last request (NaN) when the
  // line was stored before the poll ran, as on a loaded CI machine.
  const seen = d.requests.slice(0, 4).map((r) => r.at)
  for (let i = 1; i < 4; i++) assert.ok(seen[i]! - seen[i - 1]! >= 900, `request ${i + 1} waited Retry-After (1 s): ${seen[i]! - seen[i - 1]!} ms`)
  assert.equal(c.status().state, 'running')
  assert.equal(c.status().lastError, null, 'the error cleared once it worked')
  assert.equal(c.gauges().errors.get('LPR_ERR_CLOUDFLARE_API'), 1)
  assert.deepEqual(d.violations, [])
})

test('a refused credential stops that collector, with the API message, logged once; another collector keeps going', async (t) => {
  const { double: d, base } = await double(t)
  addAuditV2(d, ACCOUNT, Date.now() - 600_000, { id: 'ok-1' })
  const cap = captureLog()
  const goodSpool = fakeSpool()
  const bad = await collector(t, base, { name: 'bad', type: 'audit_logs', auth: { tokenEnv: 'TEST_CF_BAD_TOKEN' }, pollSeconds: 1, delaySeconds: 0, startLookbackHours: 1 }, { log: cap.log })
  const good = await collector(t, base, { name: 'good', type: 'audit_logs_v2', pollSeconds: 1, delaySeconds: 0, startLookbackHours: 1 }, { log: cap.log, ingest: goodSpool.ingest })
  bad.c.start()
  good.c.start()
  const end = Date.now() + 20_000
  while (bad.c.status().state !== 'stopped' || goodSpool.lines().length === 0) { assert.ok(Date.now() < end, 'the bad one stopped and the good one stored'); await sleep(20) }
  // Ahead of the cursor (with delaySeconds 0, one already behind it would be missed: that is what the delay is for).
  addAuditV2(d, ACCOUNT, Date.now() + 1000, { id: 'ok-2' })
  while (goodSpool.lines().length < 2) { assert.ok(Date.now() < end + 10_000, 'the good one goes on'); await sleep(50) }
  const s = bad.c.status()
  assert.equal(s.lastError?.code, 'LPR_ERR_COLLECTOR_AUTH')
  assert.match(s.lastError!.message, /Invalid access token \(code 9109\)/, 'the API\'s message verbatim')
  assert.equal(bad.c.gauges().up, false)
  assert.equal(good.c.status().state, 'running')
  const errors = cap.lines().filter((l) => l.collector === 'bad' && l.level >= 50)
  assert.equal(errors.length, 1, 'logged once')
  assert.ok(!JSON.stringify(cap.lines()).includes('unknowntoken') && !JSON.stringify(cap.lines()).includes('goodtoken'), 'no token in the log')
  assert.deepEqual(d.violations, [])
})

test('a cursor it cannot read stops that collector (shown, not guessed); a window cut by a disk or stream failure is retried under its own code', async (t) => {
  const { double: d, base } = await double(t)
  const dir = await mkdtemp(join(tmpdir(), 'lpr-collector-bad-'))
  await mkdir(join(dir, 'staging'), { recursive: true })
  await writeFile(join(dir, 'cursor.json'), '{"next":')
  const cap = captureLog()
  const { c } = await collector(t, base, { name: 'damaged', type: 'audit_logs' }, { dir, log: cap.log })
  c.start()
  assert.equal(c.status().state, 'stopped')
  assert.equal(c.status().cursor, null)
  assert.equal(c.status().lastError?.code, 'LPR_ERR_COLLECTOR_CURSOR_UNREADABLE')
  assert.equal(c.gauges().up, false)

  const spool = fakeSpool()
  let calls = 0
  const flaky = await collector(t, base, { name: 'flaky', type: 'audit_logs', delaySeconds: 0, startLookbackHours: 1, pollSeconds: 60 }, {
    ingest: spool.ingest,
    fetcher: { async fetch(_w, out) { if (++calls === 1) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' }); out.write('{"ID":"x"}\n'); return { records: 1 } } }
  })
  flaky.c.start()
  const end = Date.now() + 10_000
  while (spool.lines().length === 0) { assert.ok(Date.now() < end, 'retried after the failure'); await sleep(20) }
  assert.equal(flaky.c.gauges().errors.get('LPR_ERR_COLLECTOR_WINDOW_INCOMPLETE'), 1)
  assert.deepEqual(d.violations, [])
})

test('a staging file that fails while the window is still being fetched fails that window only: no unhandled rejection, no hang', async (t) => {
  // The bug: the staging pipeline's rejection had no handler until the fetch returned, so a disk
  // error during a long fetch (ENOSPC, EIO) ended the whole process, intake included; and the
  // fetcher, writing into the destroyed gzip stream, waited for a drain that never came.
  const { double: d, base } = await double(t)
  const dir = await mkdtemp(join(tmpdir(), 'lpr-collector-staging-'))
  // The first window's staging file cannot be created: a directory holds its name.
  const blocked = join(dir, 'staging', `${T0 - 3_600_000}-${T0}.ndjson.gz`)
  const spool = fakeSpool()
  let calls = 0
  const { c } = await collector(t, base, { name: 'disk', type: 'audit_logs', delaySeconds: 0, startLookbackHours: 1, pollSeconds: 60 }, {
    dir,
    ingest: spool.ingest,
    now: () => T0,
    fetcher: {
      async fetch(_w, out, signal) {
        if (++calls === 1) {
          // A long window, its records arriving slowly from the network, until the failure of the file stops it.
          for (let i = 0; ; i++) {
            await writeLine(out, JSON.stringify({ ID: `r${i}` }) + '\n', signal)
            await sleep(100, undefined, { signal })
          }
        }
        await writeLine(out, '{"ID":"after"}\n', signal)
        return { records: 1 }
      }
    }
  })
  await mkdir(blocked, { recursive: true })
  c.start()
  const end = Date.now() + 10_000
  while (c.gauges().errors.size === 0) { assert.ok(Date.now() < end, 'the failed window is reported'); await sleep(20) }
  await rm(blocked, { recursive: true })
  while (spool.lines().length === 0) { assert.ok(Date.now() < end, 'the window is fetched again once the disk is back: ' + JSON.stringify(c.status()) + ' calls ' + calls); await sleep(20) }
  assert.deepEqual(spool.lines(), [{ ID: 'after' }])
  assert.equal(c.status().state === 'stopped', false)
  assert.deepEqual(d.violations, [])
})
