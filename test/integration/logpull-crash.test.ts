// kill -9 while the service pulls a zone through Logpull from the Cloudflare double. Records keep
// arriving and Cloudflare serves some of them late (within the one-minute delay the collector
// keeps), some answers end with "Error streaming data." after a few records. Each crash may land
// between a window's fetch, its staging, its spool commit and the cursor's advance: every RayID the
// double holds must end up exactly once in the file destination, none skipped.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { eventLines } from '../helpers/stored.js'
import { freePort, spawnService, waitDrained, type ServiceProcess } from '../helpers/process.js'
import { startCloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { addLogpullRecords, logpullState, logpullZone } from '../helpers/cloudflare-double/logpull.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const DELAY_S = 60

test('kill -9 loop while a Logpull collector reads a zone: late records and trailer-ended windows, every RayID exactly once in the file destination', { timeout: 600_000 }, async (t) => {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add(ACCOUNT)
  double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  double.tokens.set('crash-token', { accounts: '*', zones: [ZONE], permissions: ['logs:read'] })
  logpullZone(double, ZONE, { retention: true, chunkRecords: 5 })
  // The collector is told to go faster than Cloudflare allows (its rates are config fields); so is the double.
  logpullState(double).perZonePerMinute = 100_000
  logpullState(double).perUserPerMinute = 100_000

  let n = 0
  const held = new Set<string>()
  let lastReceived = 0
  /** A record Cloudflare received at `at`, served from up to 50 s later: within the delay. */
  const add = (at: number): void => {
    const ray = `8e${(n++).toString(16).padStart(14, '0')}`
    held.add(ray)
    lastReceived = Math.max(lastReceived, at)
    const ns = BigInt(at) * 1_000_000n + BigInt(n % 1000)
    addLogpullRecords(double, ZONE, {
      receivedAt: at,
      visibleAt: at + Math.floor(Math.random() * 50_000),
      fields: { RayID: ray, EdgeStartTimestamp: ns, EdgeEndTimestamp: ns + 2_000_000n, ClientIP: '198.51.100.4', ClientRequestHost: 'example.com', ClientRequestMethod: 'GET', ClientRequestURI: `/item/${n}`, EdgeResponseBytes: 512, EdgeResponseStatus: 200 }
    })
  }
  const start = Date.now()
  // An hour of history (the collector's startLookbackHours), then live traffic while it keeps dying.
  // The service starts within a minute; its first cursor is then an hour back, so history begins a minute later.
  for (let i = 0; i < 400; i++) add(start - 3_600_000 + 60_000 + Math.floor(Math.random() * (3_600_000 - 3 * DELAY_S * 1000)))
  let writing = true
  let trailers = 0
  const writer = (async () => {
    while (writing) {
      for (let k = 0; k < 3; k++) add(Date.now())
      if (Math.random() < 0.15) { logpullZone(double, ZONE, { trailer: { afterRecords: Math.floor(Math.random() * 4), times: 1 } }); trailers++ }
      await sleep(200)
    }
  })()

  const dir = await mkdtemp(join(tmpdir(), 'lpr-logpull-crash-'))
  const config = join(dir, 'receiver.json')
  await writeFile(config, JSON.stringify({
    collectors: [{
      name: 'lp', type: 'logpull', zone: ZONE, auth: { tokenEnv: 'TEST_LOGPULL_TOKEN' },
      windowSeconds: 300, delaySeconds: DELAY_S, pollSeconds: 1, startLookbackHours: 1,
      fields: ['RayID', 'EdgeStartTimestamp', 'EdgeEndTimestamp', 'ClientIP', 'ClientRequestHost', 'ClientRequestMethod', 'ClientRequestURI', 'EdgeResponseBytes', 'EdgeResponseStatus'],
      timestamps: 'unixnano', zoneRequestsPerMinute: 6000, userRequestsPerMinute: 6000
    }]
  }))
  const env = { CONFIG_FILE: config, DATA_DIR: join(dir, 'data'), PORT: String(await freePort()), SINKS: 'file', CLOUDFLARE_API_URL: base, TEST_LOGPULL_TOKEN: 'crash-token', DELIVERY_RETRY_MAX_MS: '500', PARSE_WORKERS: '0' }
  const health = async (s: ServiceProcess): Promise<any> => (await (await fetch(`${s.url}/health`)).json() as any).collectors?.lp
  let service = await spawnService(t, env)
  let crashes = 0
  const cursorAtCrash: string[] = []
  while (crashes < 12) {
    // Collectors are built after listen: kill only once this one runs, at a random moment of its work.
    for (let i = 0; i < 300 && (await health(service).catch(() => null))?.cursor == null; i++) await sleep(50)
    await sleep(100 + Math.floor(Math.random() * 1500))
    cursorAtCrash.push(String((await health(service).catch(() => null))?.cursor ?? '-').slice(11, 19))
    service.child.kill('SIGKILL')
    await service.exited
    crashes++
    // Live records stop halfway, so the wait for their windows (a delay behind now) overlaps the later crashes.
    if (crashes === 6) { writing = false; await writer }
    service = await spawnService(t, env)
  }
  // Caught up: the cursor is past the last record's window, which it may read only a delay later.
  const deadline = Date.now() + 240_000
  for (;;) {
    const h = await health(service)
    if (h?.cursor != null && Date.parse(h.cursor) > lastReceived && h.lastWindow?.at != null) break
    assert.ok(Date.now() < deadline, `caught up after the last restart (collector: ${JSON.stringify(h)})`)
    await sleep(500)
  }
  await waitDrained(service.url, 120_000)
  const requests = double.requests.filter((r) => r.path.endsWith('/logs/received'))
  const trailered = logpullZone(double, ZONE).trailersSent ?? 0
  t.diagnostic(`${crashes} crashes (cursor at each: ${cursorAtCrash.join(' ')}); ${requests.length} Logpull requests, ${trailered} of them ended with the trailer (${trailers} switches set)`)

  const stored = (await eventLines(env.DATA_DIR, 'http_requests')).map((l) => (JSON.parse(l) as { RayID: string }).RayID)
  const counts = new Map<string, number>()
  for (const r of stored) counts.set(r, (counts.get(r) ?? 0) + 1)
  const missing = [...held].filter((r) => !counts.has(r)).length
  const doubled = [...counts.values()].filter((k) => k > 1).length
  t.diagnostic(`${held.size} records held by the double; file destination: ${stored.length} lines, ${missing} missing, ${doubled} doubled`)
  if (missing > 0) {
    // What the double knew of each missing record, and which answers covered its time.
    const zone = logpullZone(double, ZONE)
    for (const ray of [...held].filter((r) => !counts.has(r)).slice(0, 5)) {
      const r = zone.records.find((x) => x.fields.RayID === ray)!
      const covering = requests.filter((q) => { const p = new URLSearchParams(q.query); return Date.parse(p.get('start')!) <= r.receivedAt && r.receivedAt < Date.parse(p.get('end')!) })
      t.diagnostic(`missing ${ray}: received ${new Date(r.receivedAt).toISOString()}, visible ${new Date(r.visibleAt ?? r.receivedAt).toISOString()}; answers covering it: ${covering.map((q) => `${q.query} -> ${q.status}`).join(' | ')}`)
    }
  }
  assert.equal(missing, 0, 'no record skipped')
  assert.equal(doubled, 0, 'no record twice')
  assert.equal(stored.length, held.size)
  assert.ok(trailered > 0, 'some windows ended with the trailer')
  assert.deepEqual(double.violations, [])
})
