// The Elasticsearch destination against a REAL Elasticsearch node (see test/support/run-tests.ts):
// counts, idempotent re-sends, timestamps, exact unixnano digits, generated templates, mapping
// failures into the dead-letter store, and a node that goes away in the middle of a batch.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { BIG_UNIXNANO, batchText, loadSchema } from '../helpers/fixtures.js'
import { post, readDeadLetters, startServer, type TestServer } from '../helpers/server.js'
import { isManagedElasticsearch, requireElasticsearch, startManagedElasticsearch, stopManagedElasticsearch } from '../helpers/elasticsearch-env.js'
import { fieldMapping, indexTemplate } from '../../src/sinks/elasticsearch/index.js'

async function es(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

async function count(url: string, stream: string, server?: TestServer): Promise<number> {
  if (server) assert.ok(await server.built.drained(120_000), 'the spool drained')
  await es(url, `/${stream}/_refresh`, { method: 'POST' })
  return (await es(url, `/${stream}/_count`)).count
}

/** A server delivering to Elasticsearch under a namespace of its own, so tests never see each other's documents. */
async function esServer(t: TestContext, env: Record<string, string> = {}): Promise<{ server: TestServer, url: string, namespace: string } | undefined> {
  const url = requireElasticsearch(t)
  if (!url) return undefined
  const namespace = `t${randomBytes(4).toString('hex')}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace, ...env })
  return { server, url, namespace }
}

test('document counts equal the accepted lines for both datasets; re-sending a batch three times duplicates nothing', { timeout: 120_000 }, async (t) => {
  const ctx = await esServer(t, { ELASTICSEARCH_BULK_BYTES: String(256 * 1024) })
  if (!ctx) return
  const { server, url, namespace } = ctx
  for (const [dataset, n] of [['http_requests', 1500], ['network_analytics_logs', 2500]] as const) {
    const body = batchText(dataset, n) + 'not json\n'
    for (let i = 0; i < 3; i++) {
      const r = await post(server, `/logpush/${dataset}`, body)
      assert.equal(r.status, 200, JSON.stringify(r.json))
      assert.deepEqual(r.json, { dataset, accepted: n, rejected: 1, ...(i > 0 ? { duplicate: true } : {}) })
    }
    assert.equal(await count(url, `logs-cloudflare.${dataset}-${namespace}`, server), n, dataset)
  }
})

test('with re-send detection off, Elasticsearch still stores a re-sent batch once (deterministic _id, 409 = stored)', { timeout: 120_000 }, async (t) => {
  const ctx = await esServer(t, { DEDUPE_WINDOW_SECONDS: '0' })
  if (!ctx) return
  const { server, url, namespace } = ctx
  const body = batchText('network_analytics_logs', 800)
  for (let i = 0; i < 3; i++) assert.deepEqual((await post(server, '/logpush/network_analytics_logs', body)).json, { dataset: 'network_analytics_logs', accepted: 800, rejected: 0 })
  assert.equal(await count(url, `logs-cloudflare.network_analytics_logs-${namespace}`, server), 800)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.equal(health.sinks.elasticsearch.delivered, 800)
})

test('@timestamp comes from the event-time field in unixnano, unix and rfc3339; unixnano keeps every digit in _source', { timeout: 60_000 }, async (t) => {
  const ctx = await esServer(t)
  if (!ctx) return
  const { server, url, namespace } = ctx
  const lines = [
    `{"RayID":"ts-unixnano","EdgeStartTimestamp":${BIG_UNIXNANO},"ClientIP":"203.0.113.7","EdgeResponseStatus":503}`,
    '{"RayID":"ts-unix","EdgeStartTimestamp":1652295571,"EdgeServerIP":""}',
    '{"RayID":"ts-rfc3339","EdgeStartTimestamp":"2022-05-11T18:59:31.783000123+02:00"}',
    '{"RayID":"ts-rfc3339-z","EdgeStartTimestamp":"2022-05-11T18:59:31Z"}'
  ]
  const r = await post(server, '/logpush/http_requests', lines.join('\n') + '\n')
  assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 4, rejected: 0 })
  const stream = `logs-cloudflare.http_requests-${namespace}`
  await count(url, stream, server)
  const res = await fetch(`${url}/${stream}/_search?size=10&sort=event.id`, { headers: { 'content-type': 'application/json' } })
  const raw = await res.text()
  // Read as text: JSON.parse here would round the value we are checking.
  assert.ok(raw.includes(`"EdgeStartTimestamp":${BIG_UNIXNANO}`), 'unixnano digits intact in _source')
  const hits = JSON.parse(raw).hits.hits.map((h: any) => h._source)
  const byId = Object.fromEntries(hits.map((s: any) => [s.RayID, s]))
  assert.equal(byId['ts-unixnano']['@timestamp'], '2022-05-11T18:59:31.783000123Z')
  assert.equal(byId['ts-unix']['@timestamp'], '2022-05-11T18:59:31.000000000Z')
  assert.equal(byId['ts-rfc3339']['@timestamp'], '2022-05-11T16:59:31.783000123Z')
  assert.equal(byId['ts-rfc3339-z']['@timestamp'], '2022-05-11T18:59:31.000000000Z')
  const doc = byId['ts-unixnano']
  assert.equal(doc.event.dataset, 'cloudflare.http_requests')
  assert.equal(doc.event.outcome, 'failure')
  assert.deepEqual(doc.data_stream, { type: 'logs', dataset: 'cloudflare.http_requests', namespace })
  assert.equal(doc.source.ip, '203.0.113.7')
  assert.equal(doc.http.response.status_code, 503)
  assert.ok(!Number.isNaN(Date.parse(doc.event.ingested)))
  // The nanosecond @timestamp is searchable as such.
  const exact = await es(url, `/${stream}/_search`, { method: 'POST', body: JSON.stringify({ query: { term: { '@timestamp': '2022-05-11T18:59:31.783000123Z' } } }) })
  assert.equal(exact.hits.total.value, 1)
})

test('network_analytics_logs documents carry ECS source/destination/network fields', { timeout: 60_000 }, async (t) => {
  const ctx = await esServer(t)
  if (!ctx) return
  const { server, url, namespace } = ctx
  const line = '{"Datetime":1652295571783000123,"IPSourceAddress":"198.51.100.1","SourcePort":5353,"SourceASN":64500,"IPDestinationAddress":"2001:db8::1","DestinationPort":53,"DestinationASN":13335,"IPProtocolName":"UDP","IPProtocol":17,"Direction":"ingress","Outcome":"drop","RuleID":"r1","ColoCode":"AMS"}'
  assert.equal((await post(server, '/logpush/network_analytics_logs', line + '\n')).status, 200)
  const stream = `logs-cloudflare.network_analytics_logs-${namespace}`
  await count(url, stream, server)
  const src = (await es(url, `/${stream}/_search`)).hits.hits[0]._source
  assert.deepEqual(src.source, { ip: '198.51.100.1', port: 5353, as: { number: 64500 } })
  assert.deepEqual(src.destination, { ip: '2001:db8::1', port: 53, as: { number: 13335 } })
  assert.deepEqual(src.network, { transport: 'udp', iana_number: '17', direction: 'ingress' })
  assert.equal(src.event.outcome, 'failure')
  assert.equal(src.rule.id, 'r1')
  const q = await es(url, `/${stream}/_search`, { method: 'POST', body: JSON.stringify({ query: { term: { 'destination.ip': '2001:db8::/32' } } }) })
  assert.equal(q.hits.total.value, 1, 'destination.ip is indexed as an ip')
})

test('the installed index templates are the ones generated from schemas/', { timeout: 60_000 }, async (t) => {
  const ctx = await esServer(t)
  if (!ctx) return
  const { url } = ctx
  for (const dataset of ['http_requests', 'network_analytics_logs']) {
    const schema = loadSchema(dataset)
    const got = (await es(url, `/_index_template/logs-cloudflare.${dataset}`)).index_templates[0].index_template
    const want = indexTemplate(dataset, schema) as any
    assert.deepEqual(got.index_patterns, want.index_patterns)
    assert.equal(got.priority, 200)
    const props = got.template.mappings.properties
    for (const [field, f] of Object.entries(schema.properties)) {
      assert.deepEqual(props[field], JSON.parse(JSON.stringify(fieldMapping(f))), `${dataset}.${field}`)
    }
    assert.equal(props[schema['x-event-time']].type, 'date_nanos')
  }
  assert.equal((await es(url, '/_index_template/logs-cloudflare.http_requests')).index_templates[0].index_template.template.mappings.properties.ClientIP.type, 'ip')
  assert.equal((await es(url, '/_index_template/logs-cloudflare.http_requests')).index_templates[0].index_template.template.mappings.properties.ClientASN.type, 'long')
})

test('a line that passes validation but fails mapping lands in dead-letter with Elasticsearch\'s reason', { timeout: 60_000 }, async (t) => {
  const ctx = await esServer(t)
  if (!ctx) return
  const { server, url, namespace } = ctx
  const good = '{"RayID":"fine","ClientASN":13335,"EdgeStartTimestamp":1652295571}'
  const bad = '{"RayID":"too-big","ClientASN":99999999999999999999,"EdgeStartTimestamp":1652295571}'
  const r = await post(server, '/logpush/http_requests', `${good}\n${bad}\n`)
  assert.equal(r.status, 200)
  assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 2, rejected: 0 })
  const dead = await readDeadLetters(server, 'http_requests')
  assert.equal(await count(url, `logs-cloudflare.http_requests-${namespace}`, server), 1)
  assert.equal(dead.length, 1)
  assert.equal(dead[0].code, 'LPR_ERR_SINK_ELASTICSEARCH_MAPPING')
  assert.equal(dead[0].stage, 'delivery')
  assert.equal(dead[0].sink, 'elasticsearch')
  assert.equal(dead[0].raw, bad)
  assert.match(dead[0].reason, /^(document_parsing_exception|mapper_parsing_exception): .*ClientASN/)
})

test('Elasticsearch stopped in the middle of a batch: the batch is answered from the spool and delivered completely once Elasticsearch is back', { timeout: 600_000 }, async (t) => {
  const url = requireElasticsearch(t)
  if (!url) return
  if (!isManagedElasticsearch()) {
    t.skip('needs the Elasticsearch node managed by the test runner (TEST_ELASTICSEARCH=managed or CI=true) to stop it')
    return
  }
  const ctx = await esServer(t, { ELASTICSEARCH_BULK_BYTES: String(64 * 1024), ELASTICSEARCH_BULK_CONCURRENCY: '1', ELASTICSEARCH_RETRY_MS: '2000' })
  if (!ctx) return
  const { server, namespace } = ctx
  const n = 30_000
  const body = batchText('network_analytics_logs', n)
  const first = post(server, '/logpush/network_analytics_logs', body)
  await new Promise((r) => setTimeout(r, 300))
  await stopManagedElasticsearch()
  const r1 = await first
  assert.equal(r1.status, 200, JSON.stringify(r1.json))
  // While it is down, batches are still accepted: the spool holds them.
  const more = batchText('network_analytics_logs', 1000, 'unixnano', n)
  assert.equal((await post(server, '/logpush/network_analytics_logs', more)).status, 200)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.equal(health.status, 'ok', 'a destination being down does not make the service unhealthy')
  assert.ok(health.sinks.elasticsearch.pendingLines > 0)
  await startManagedElasticsearch()
  assert.ok(await server.built.drained(300_000), 'delivered after Elasticsearch came back')
  assert.equal(await count(url, `logs-cloudflare.network_analytics_logs-${namespace}`), n + 1000)
})
