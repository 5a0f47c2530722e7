// The durable spool with real child processes: kill -9 at random moments while several senders
// post, Elasticsearch outages, the high/low watermarks. No mocks of the file system or process.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp } from 'node:fs/promises'
import { createConnection, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { eventLines, esCount } from '../helpers/stored.js'
import { freePort, spawnService, waitDrained, type ServiceProcess } from '../helpers/process.js'
import { elasticsearchUrl, isManagedElasticsearch, requireElasticsearch, startManagedElasticsearch, stopManagedElasticsearch } from '../helpers/elasticsearch-env.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))


async function postUntilOk(url: () => string, token: string, body: Buffer, stop: () => boolean): Promise<boolean> {
  for (;;) {
    try {
      const res = await fetch(`${url()}/logpush/network_analytics_logs`, { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-encoding': 'gzip' } })
      await res.arrayBuffer()
      if (res.status === 200) return true
    } catch {}
    // Like Logpush: what was not answered 200 is sent again.
    if (stop()) return false
    await sleep(30)
  }
}

test('kill -9 at random moments under concurrent load loses no line answered 200 and duplicates none', { timeout: 600_000 }, async (t: TestContext) => {
  const es = elasticsearchUrl()
  if (!es && process.env.CI === 'true') throw new Error('CI needs Elasticsearch for this test')
  if (!es) t.diagnostic('no Elasticsearch: checking the file destination only (set ELASTICSEARCH_URL or TEST_ELASTICSEARCH=managed)')
  const namespace = `crash${Date.now().toString(36)}`
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-crash-'))
  const port = await freePort()
  const env = {
    DATA_DIR: dataDir,
    PORT: String(port),
    SINKS: es ? 'file,elasticsearch' : 'file',
    ...(es ? { ELASTICSEARCH_URL: es, ELASTICSEARCH_NAMESPACE: namespace } : {}),
    DELIVERY_RETRY_MAX_MS: '500',
    EVENTS_ROTATE_BYTES: String(256 * 1024)
  }
  let service: ServiceProcess = await spawnService(t, env)
  const url = (): string => service.url
  let stopping = false
  const acknowledged: string[] = []
  const senders = [0, 1, 2].map(async (sender) => {
    for (let k = 0; !stopping; k++) {
      const text = batchText('network_analytics_logs', 40 + ((sender + k) % 3) * 30, 'unixnano', sender * 10_000_000 + k * 1000)
      if (await postUntilOk(url, service.token, gzipSync(text), () => stopping && k > 0)) acknowledged.push(...text.split('\n').filter(Boolean))
    }
  })
  const crashes = 22
  for (let i = 0; i < crashes; i++) {
    // Each life answers at least one batch before it is killed: on a loaded machine a start can
    // take longer than the random pause, and crashes that only ever hit start-up test little.
    const before = acknowledged.length
    for (let waited = 0; acknowledged.length === before && waited < 30_000; waited += 50) await sleep(50)
    await sleep(Math.floor(Math.random() * 700))
    service.child.kill('SIGKILL')
    await service.exited
    service = await spawnService(t, env)
  }
  await sleep(500)
  stopping = true
  await Promise.all(senders)
  await waitDrained(service.url, 180_000)
  // A clean stop before reading the files: a rotated file is compressed once a checkpoint past it
  // is written (up to SPOOL_CHECKPOINT_INTERVAL_MS after its delivery), which the stop finishes.
  service.child.kill('SIGTERM')
  await service.exited
  t.diagnostic(`${crashes} crashes, ${acknowledged.length} lines answered 200`)
  assert.ok(acknowledged.length > 500, 'the senders got work done between the crashes')

  const stored = await eventLines(dataDir, 'network_analytics_logs')
  const counts = new Map<string, number>()
  for (const l of stored) counts.set(l, (counts.get(l) ?? 0) + 1)
  const missing = acknowledged.filter((l) => !counts.has(l))
  const doubled = [...counts.values()].filter((n) => n > 1).length
  assert.equal(missing.length, 0, `lines answered 200 but not in the file destination: ${missing.length}`)
  assert.equal(doubled, 0, `lines stored more than once: ${doubled}`)
  assert.equal(stored.length, new Set(acknowledged).size, 'nothing stored that was never answered 200')
  if (es) assert.equal(await esCount(es, `logs-cloudflare.network_analytics_logs-${namespace}`), new Set(acknowledged).size, 'Elasticsearch holds each line once')
})

test('Elasticsearch down for a while under load: the backlog grows on disk, memory stays flat, nothing is lost or doubled', { timeout: 600_000 }, async (t) => {
  const es = requireElasticsearch(t)
  if (!es) return
  if (!isManagedElasticsearch()) { t.skip('needs the managed Elasticsearch node to stop it'); return }
  const namespace = `outage${Date.now().toString(36)}`
  const service = await spawnService(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: es, ELASTICSEARCH_NAMESPACE: namespace, DELIVERY_RETRY_MAX_MS: '1000', ELASTICSEARCH_RETRY_MS: '1000' })
  await stopManagedElasticsearch()
  let lines = 0
  const rss: number[] = []
  const spoolBytes: number[] = []
  try {
    for (let k = 0; k < 80; k++) {
      const text = batchText('network_analytics_logs', 1500, 'unixnano', k * 10_000)
      const res = await fetch(`${service.url}/logpush/network_analytics_logs`, { method: 'POST', body: gzipSync(text), headers: { authorization: `Bearer ${service.token}`, 'content-encoding': 'gzip' } })
      assert.equal(res.status, 200)
      lines += ((await res.json()) as { accepted: number }).accepted
      const status = await (await fetch(`${service.url}/health`)).json() as any
      assert.equal(status.status, 'ok')
      spoolBytes.push(status.sinks.spool.bytes)
      const proc = (await import('node:fs/promises')).readFile(`/proc/${service.child.pid}/status`, 'utf8')
      rss.push(Number(/VmRSS:\s+(\d+)/.exec(await proc)![1]) * 1024)
    }
  } finally {
    await startManagedElasticsearch()
  }
  const MB = 1024 * 1024
  const early = Math.max(...rss.slice(5, 10))
  const late = Math.max(...rss.slice(-5))
  t.diagnostic(`backlog ${(spoolBytes[9]! / MB).toFixed(0)} MB -> ${(spoolBytes.at(-1)! / MB).toFixed(0)} MB on disk; RSS ${(early / MB).toFixed(0)} MB -> ${(late / MB).toFixed(0)} MB`)
  const backlogGrowth = spoolBytes.at(-1)! - spoolBytes[9]!
  assert.ok(backlogGrowth > 200 * MB, 'the backlog grew on disk')
  // Garbage collection makes RSS wander by tens of MB; a backlog held in memory would grow it by
  // at least the backlog itself (JavaScript strings take more room than the bytes on disk).
  assert.ok(late - early < backlogGrowth / 4, `memory stayed flat: ${((late - early) / MB).toFixed(1)} MB growth for ${(backlogGrowth / MB).toFixed(0)} MB of backlog`)
  await waitDrained(service.url, 300_000)
  assert.equal(await esCount(es, `logs-cloudflare.network_analytics_logs-${namespace}`), lines)
})

/** A TCP proxy to Elasticsearch that can refuse connections, to take a destination away and give it back. */
async function switchableProxy(t: TestContext, target: URL): Promise<{ url: string, up: boolean }> {
  const state = { url: '', up: false }
  const sockets = new Set<Socket>()
  const server = createServer((client) => {
    if (!state.up) { client.destroy(); return }
    const upstream = createConnection(Number(target.port), target.hostname)
    sockets.add(client).add(upstream)
    client.pipe(upstream).pipe(client)
    client.on('error', () => upstream.destroy())
    upstream.on('error', () => client.destroy())
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => { for (const s of sockets) s.destroy(); server.close() })
  state.url = `http://127.0.0.1:${(server.address() as { port: number }).port}`
  return state
}

test('spool over its high watermark answers 503 + Retry-After, and accepts again below the low watermark', { timeout: 300_000 }, async (t) => {
  const es = requireElasticsearch(t)
  if (!es) return
  const proxy = await switchableProxy(t, new URL(es))
  const namespace = `wm${Date.now().toString(36)}`
  const service = await spawnService(t, {
    SINKS: 'elasticsearch', ELASTICSEARCH_URL: proxy.url, ELASTICSEARCH_NAMESPACE: namespace, ELASTICSEARCH_RETRY_MS: '200',
    DELIVERY_RETRY_MAX_MS: '300', SPOOL_HIGH_WATERMARK_BYTES: String(2 * 1024 * 1024), SPOOL_LOW_WATERMARK_BYTES: String(1024 * 1024)
  })
  const post = async (k: number): Promise<Response> => await fetch(`${service.url}/logpush/network_analytics_logs`, {
    method: 'POST', body: gzipSync(batchText('network_analytics_logs', 300, 'unixnano', k * 1000)), headers: { authorization: `Bearer ${service.token}`, 'content-encoding': 'gzip' }
  })
  let accepted = 0
  let refused: Response | null = null
  for (let k = 0; k < 50 && !refused; k++) {
    const res = await post(k)
    if (res.status === 200) { accepted++; await res.arrayBuffer() } else refused = res
  }
  assert.ok(refused, 'a batch was refused once the spool passed its high watermark')
  assert.equal(refused.status, 503)
  assert.ok(Number(refused.headers.get('retry-after')) > 0)
  assert.equal(((await refused.json()) as any).code, 'LPR_ERR_INTAKE_NOT_READY')
  const health = await fetch(`${service.url}/health`)
  assert.equal(health.status, 503, '/health tells the load balancer')
  assert.equal((await post(1000)).status, 503, 'still refusing while above the low watermark')
  proxy.up = true
  await waitDrained(service.url, 120_000)
  // Delivered is not yet deleted: the segments go once the checkpoints past them are written,
  // which a refusing spool does at once (spool.ts deferCheckpoint), a few fsyncs later.
  const ready = Date.now() + 10_000
  while ((await fetch(`${service.url}/health`)).status !== 200) {
    assert.ok(Date.now() < ready, '/health is 200 again soon after the destination caught up')
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  const again = await post(2000)
  assert.equal(again.status, 200)
  await waitDrained(service.url, 60_000)
  assert.equal(await esCount(es, `logs-cloudflare.network_analytics_logs-${namespace}`), (accepted + 1) * 300)
})
