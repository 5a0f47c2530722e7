// kill -9 loop while two pull collectors (audit logs v1 and v2) read the Cloudflare API double:
// the window between fetching a window, recording it as staged, storing it in the spool and moving
// the cursor is where a naive collector stores records twice (stored, then fetched again after the
// crash) or skips them (cursor moved before they were durable). The double adds records all along,
// some late (visible up to 2.5 s after their time, inside the collectors' 3 s delay). Every record
// must end up exactly once in Elasticsearch, however often the process dies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort, spawnService, waitDrained, type ServiceProcess } from '../helpers/process.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { addAuditV1, addAuditV2, startCloudflareDouble } from '../helpers/cloudflare-double/index.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const CRASHES = 12
const LATE_MS = 2500

async function idCounts(es: string, stream: string, idOf: (doc: any) => string | undefined): Promise<Map<string, number>> {
  await fetch(`${es}/${stream}/_refresh`, { method: 'POST' })
  const res = await fetch(`${es}/${stream}/_search?size=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query: { match_all: {} } }) })
  assert.ok(res.ok, `search ${stream}: ${res.status}`)
  const counts = new Map<string, number>()
  for (const h of ((await res.json()) as any).hits.hits) {
    const id = idOf(h._source)
    assert.ok(id, `a document without its record id: ${JSON.stringify(h._source).slice(0, 300)}`)
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return counts
}

test('kill -9 loop while audit collectors (v1 and v2) read the API: every record exactly once in Elasticsearch, none skipped', { timeout: 400_000 }, async (t) => {
  const es = requireElasticsearch(t)
  if (!es) return
  const started = Date.now()
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add(ACCOUNT)
  double.tokens.set('crashtoken', { accounts: [ACCOUNT], zones: [], permissions: ['audit:read'] })

  const dir = await mkdtemp(join(tmpdir(), 'lpr-collector-crash-'))
  const config = join(dir, 'receiver.json')
  const common = { account: ACCOUNT, auth: { tokenEnv: 'TEST_CF_TOKEN' }, pollSeconds: 1, windowSeconds: 10, delaySeconds: 3, startLookbackHours: 0, perPage: 50 }
  await writeFile(config, JSON.stringify({ collectors: [{ name: 'v1', type: 'audit_logs', ...common }, { name: 'v2', type: 'audit_logs_v2', ...common }] }))
  const namespace = `ccrash${Date.now().toString(36)}`
  const env = {
    TEST_CF_TOKEN: 'crashtoken',
    CONFIG_FILE: config,
    CLOUDFLARE_API_URL: base,
    DATA_DIR: join(dir, 'data'),
    PORT: String(await freePort()),
    SINKS: 'elasticsearch',
    ELASTICSEARCH_URL: es,
    ELASTICSEARCH_NAMESPACE: namespace,
    DELIVERY_RETRY_MAX_MS: '500',
    // Parsing in the main thread: restarts are quicker, and the lines are few.
    PARSE_WORKERS: '0',
    LOG_LEVEL: 'info'
  }

  let service: ServiceProcess = await spawnService(t, env)
  // The cursors start at the first start (startLookbackHours 0): records begin once they exist,
  // and late ones no earlier than that.
  for (const deadline = Date.now() + 60_000; ;) {
    const c = ((await (await fetch(`${service.url}/health`)).json()) as any).collectors ?? {}
    if (c.v1?.cursor && c.v2?.cursor) break
    assert.ok(Date.now() < deadline, 'collectors started')
    await sleep(50)
  }
  await sleep(LATE_MS)

  // The double adds a v1 and a v2 record every 40 ms; three in ten are late.
  const v1: string[] = []
  const v2: string[] = []
  let late = 0
  let lastAt = 0
  let producing = true
  const producer = (async () => {
    for (let i = 0; producing; i++) {
      const now = Date.now()
      const lateBy = Math.random() < 0.3 ? Math.floor(Math.random() * LATE_MS) : 0
      if (lateBy > 0) late++
      const at = now - lateBy
      lastAt = Math.max(lastAt, at)
      v1.push(addAuditV1(double, ACCOUNT, at, { id: `v1-${i}` }, now).id)
      v2.push(addAuditV2(double, ACCOUNT, at, { id: `v2-${i}` }, now).id)
      await sleep(40)
    }
  })()

  let crashes = 0
  let resumedStaged = 0
  let removedStray = 0
  const cursorsAtCrash: string[] = []
  const tally = (out: string): void => {
    resumedStaged += out.split('Collector resumes a staged window').length - 1
    removedStray += out.split('Collector removed staging files').length - 1
  }
  while (crashes < CRASHES) {
    await sleep(300 + Math.floor(Math.random() * 2200))
    const h = await (await fetch(`${service.url}/health`)).json().catch(() => null) as any
    cursorsAtCrash.push(h?.collectors?.v1?.cursor?.slice(11, 23) ?? '-')
    service.child.kill('SIGKILL')
    await service.exited
    tally(service.output())
    crashes++
    service = await spawnService(t, env)
  }
  producing = false
  await producer
  const loopEnded = Date.now()

  // After the last crash: let both cursors pass the last record, then let Elasticsearch have it all.
  const end = Date.now() + 120_000
  for (;;) {
    const h = await (await fetch(`${service.url}/health`)).json() as any
    const c = h.collectors ?? {}
    if (['v1', 'v2'].every((n) => c[n]?.cursor && Date.parse(c[n].cursor) > lastAt)) break
    assert.ok(Date.now() < end, `cursors pass the last record: ${JSON.stringify(c)}`)
    await sleep(200)
  }
  const caughtUp = Date.now()
  await waitDrained(service.url, 120_000)
  tally(service.output())
  const drained = Date.now()

  const results: string[] = []
  for (const [dataset, ids, field] of [['audit_logs', v1, 'ID'], ['audit_logs_v2', v2, 'AuditLogID']] as const) {
    // The ECS document carries the record id as event.id; the line as sent is kept as well.
    const counts = await idCounts(es, `logs-cloudflare.${dataset}-${namespace}`, (d) => d?.event?.id ?? d?.[field] ?? (typeof d?.message === 'string' ? JSON.parse(d.message)[field] : undefined))
    const missing = ids.filter((id) => !counts.has(id)).length
    const doubled = [...counts.values()].filter((n) => n > 1).length
    const unexpected = [...counts.keys()].filter((id) => !ids.includes(id)).length
    results.push(`${dataset}: ${ids.length} records, ${missing} missing, ${doubled} doubled, ${unexpected} unexpected`)
    assert.equal(missing, 0, `${dataset}: no record skipped`)
    assert.equal(doubled, 0, `${dataset}: no record twice`)
    assert.equal(unexpected, 0)
  }
  t.diagnostic(`${crashes} crashes; ${Math.round((loopEnded - started) / 1000)} s to the last restart, ${Math.round((caughtUp - loopEnded) / 1000)} s to catch up, ${Math.round((drained - caughtUp) / 1000)} s to drain; ${late} records per collector late (up to ${LATE_MS} ms); staged windows resumed after a crash: ${resumedStaged}; stray staging files removed: ${removedStray}; v1 cursor (time of day) at each crash: ${cursorsAtCrash.join(', ')}`)
  for (const r of results) t.diagnostic(r)
  assert.deepEqual(double.violations, [])
})
