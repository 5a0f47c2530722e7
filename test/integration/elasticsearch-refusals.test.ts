// Refusals from a REAL Elasticsearch node (test/support/run-tests.ts): a write block on the data
// stream (what a read-only or flood-stage index looks like to a writer), a document over the
// request size limit, and the storage modes our templates pin (logsdb on Elasticsearch 9).
// A missing privilege needs security, which the test node runs without: that case is in
// test/sinks/elasticsearch-refusals.test.ts against a stand-in for _bulk.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { createServer, request, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { batchText, loadSchema } from '../helpers/fixtures.js'
import { indexTemplate } from '../../src/sinks/elasticsearch/index.js'
import { health, post, readDeadLetters, startServer, until } from '../helpers/server.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'

async function es(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

async function count(url: string, stream: string): Promise<number> {
  await es(url, `/${stream}/_refresh`, { method: 'POST' })
  return (await es(url, `/${stream}/_count`)).count
}

test('a write block on the data stream stops delivery: nothing dead-lettered, /health and /metrics say why, delivery resumes once it is lifted', { timeout: 120_000 }, async (t) => {
  // The bug: Elasticsearch's item-level 403 (cluster_block_exception here; security_exception for
  // a missing privilege) was dead-lettered as if the line were bad, emptying the stream into the
  // dead-letter store while an operator problem lasted.
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `t${randomBytes(4).toString('hex')}`
  const stream = `logs-cloudflare.network_analytics_logs-${namespace}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace, DELIVERY_RETRY_MAX_MS: '500' })
  assert.equal((await post(server, '/logpush/network_analytics_logs', batchText('network_analytics_logs', 100))).status, 200)
  assert.ok(await server.built.drained(60_000))
  await es(url, `/${stream}/_settings`, { method: 'PUT', body: JSON.stringify({ 'index.blocks.write': true }) })
  t.after(() => es(url, `/${stream}/_settings`, { method: 'PUT', body: JSON.stringify({ 'index.blocks.write': false }) }).catch(() => {}))

  assert.equal((await post(server, '/logpush/network_analytics_logs', batchText('network_analytics_logs', 50, 'unixnano', 100))).status, 200)
  const stopped = await until('delivery stopped', 30_000, async () => (await health(server)).sinks.elasticsearch.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER')
  assert.match(stopped.reason, /HTTP 403 cluster_block_exception: index \[\.ds-logs-cloudflare\.network_analytics_logs-.*\] blocked by: \[FORBIDDEN\/8\/index write \(api\)\]/)
  const h = await health(server)
  assert.equal(h.status, 'ok', 'intake goes on: the spool holds the lines')
  assert.equal(h.sinks.elasticsearch.pendingLines, 50)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_sink_stopped\{sink="elasticsearch",code="LPR_ERR_SINK_ELASTICSEARCH_CLUSTER"\} 1$/m)
  assert.deepEqual(await readDeadLetters({ dataDir: server.dataDir }, 'network_analytics_logs'), [])

  await es(url, `/${stream}/_settings`, { method: 'PUT', body: JSON.stringify({ 'index.blocks.write': false }) })
  assert.ok(await server.built.drained(60_000), 'delivered once the block is lifted')
  assert.equal(await count(url, stream), 150)
  assert.equal((await health(server)).sinks.elasticsearch.stopped, null)
  assert.deepEqual(await readDeadLetters(server, 'network_analytics_logs'), [])
})

/**
 * Elasticsearch's own answer to a body over http.max_content_length (413, empty body), in front
 * of the real node: that limit is a static node setting, and the node is shared by every test.
 */
async function sizeLimit(t: TestContext, target: string, maxBytes: number): Promise<string> {
  const upstream = new URL(target)
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      if (body.length > maxBytes) {
        res.writeHead(413, { 'content-length': 0 })
        res.end()
        return
      }
      const headers = { ...req.headers, host: upstream.host, 'content-length': String(body.length) }
      const out = request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers)
        up.pipe(res)
      })
      out.on('error', () => res.destroy())
      out.end(body)
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

test('one document over the request size limit is dead-lettered with the reason; the rest of its batch and later batches are delivered', { timeout: 120_000 }, async (t) => {
  // The bug: a document too large for Elasticsearch (413 after splitting down to it) was retried
  // forever; the spool filled behind it and every intake got 503.
  const url = requireElasticsearch(t)
  if (!url) return
  const proxy = await sizeLimit(t, url, 16 * 1024)
  const namespace = `t${randomBytes(4).toString('hex')}`
  const stream = `logs-cloudflare.http_requests-${namespace}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: proxy, ELASTICSEARCH_NAMESPACE: namespace, ELASTICSEARCH_BULK_BYTES: String(64 * 1024), DELIVERY_RETRY_MAX_MS: '500' })
  const lines = batchText('http_requests', 40).trimEnd().split('\n')
  const big = `{"RayID":"too-big","EdgeStartTimestamp":1652295571,"ClientRequestURI":"/${'x'.repeat(40 * 1024)}"}`
  lines.splice(17, 0, big)
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.equal((await post(server, '/logpush/http_requests', batchText('http_requests', 10, 'unix', 1000))).status, 200)
  assert.ok(await server.built.drained(30_000), 'the spool drained: nothing is stuck behind the big document')
  assert.equal(await count(url, stream), 50)
  const dead = await readDeadLetters(server, 'http_requests')
  assert.equal(dead.length, 1)
  assert.equal(dead[0].raw, big)
  assert.equal(dead[0].code, 'LPR_ERR_SINK_ELASTICSEARCH_TOO_LARGE')
  assert.equal(dead[0].sink, 'elasticsearch')
  assert.match(dead[0].reason, /^HTTP 413: the document makes a \d+-byte _bulk request, over Elasticsearch's request size limit/)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_lines_dead_lettered_total\{sink="elasticsearch",dataset="http_requests"\} 1$/m)
})

test('our templates pin index.mode and index.mapping.source.mode: _simulate_index shows what a new data stream gets', { timeout: 60_000 }, async (t) => {
  // The bug: the templates set neither, so on a cluster created on Elasticsearch 9 a new
  // logs-*-* data stream is logsdb, and with synthetic _source the stored document is not the
  // line as sent (an unixnano integer comes back changed).
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `t${randomBytes(4).toString('hex')}`
  await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace })
  for (const dataset of ['http_requests', 'network_analytics_logs']) {
    const sim = await es(url, `/_index_template/_simulate_index/logs-cloudflare.${dataset}-${namespace}`, { method: 'POST' })
    assert.equal(sim.template.settings.index.mode, 'standard', JSON.stringify(sim.template.settings))
    assert.equal(sim.template.settings.index.mapping.source.mode, 'stored', JSON.stringify(sim.template.settings))
  }
  // The other choice, under a name of its own (ours are shared by every test on this node): the
  // node takes it, and a synthetic _source is no longer the document as sent (fields re-ordered).
  const run = randomBytes(4).toString('hex')
  const template = indexTemplate('http_requests', loadSchema('http_requests'), { modes: { indexMode: 'logsdb', sourceMode: 'synthetic' } }) as any
  await es(url, `/_index_template/lprtest-logsdb-${run}`, { method: 'PUT', body: JSON.stringify({ ...template, index_patterns: [`logs-lprtest.logsdb${run}-*`], priority: 300 }) })
  t.after(() => es(url, `/_index_template/lprtest-logsdb-${run}`, { method: 'DELETE' }).catch(() => {}))
  const stream = `logs-lprtest.logsdb${run}-x`
  const sim = await es(url, `/_index_template/_simulate_index/${stream}`, { method: 'POST' })
  assert.equal(sim.template.settings.index.mode, 'logsdb')
  assert.equal(sim.template.settings.index.mapping.source.mode, 'synthetic')
  const doc = '{"@timestamp":"2022-05-11T18:59:31.783000123Z","RayID":"a","ClientRequestURI":"/z","ClientASN":13335}'
  const bulk = await es(url, '/_bulk?refresh=true', { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: `{"create":{"_index":"${stream}","_id":"1"}}\n${doc}\n` })
  assert.equal(bulk.errors, false, JSON.stringify(bulk))
  const raw = await (await fetch(`${url}/${stream}/_search`)).text()
  assert.ok(!raw.includes(doc.slice(1, -1)), `synthetic _source is rebuilt, not the document as sent: ${raw}`)
})
