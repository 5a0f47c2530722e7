// Issue 21, item 1: one pretty-printed HEC event stopped Elasticsearch delivery for good. Through
// the whole service against the REAL Elasticsearch (test/support/run-tests.ts), the Splunk HEC
// double (test/helpers/hec-double.ts) and the file destination; then the Elasticsearch sink alone
// against the real node, for the class: a _bulk request refused as a whole for what one document
// holds.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { pino } from 'pino'
import type { DeliveryBatch, Progress, Rejection } from '../../src/delivery.js'
import { ElasticsearchSink } from '../../src/sinks/elasticsearch/index.js'
import { documentId } from '../../src/sinks/elasticsearch/document.js'
import { batchText, loadSchema } from '../helpers/fixtures.js'
import { DEFAULT_HEC_TOKEN, HecDouble } from '../helpers/hec-double.js'
import { TEST_TOKEN, post, readDeadLetters, readStore, startServer } from '../helpers/server.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { ONE_LINE, PLAIN, PRETTY, PRETTY_STRING, STRING_ONE_LINE } from '../helpers/pretty-event.js'

async function es(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

async function ids(url: string, stream: string): Promise<Set<string>> {
  await es(url, `/${stream}/_refresh`, { method: 'POST' })
  const found = await es(url, `/${stream}/_search?size=1000&_source=false`)
  return new Set(found.hits.hits.map((h: { _id: string }) => h._id))
}

test('a pretty-printed HEC event is one line at every destination (Elasticsearch, Splunk, the events file) and the stream behind it flows', { timeout: 180_000 }, async (t) => {
  // The bug: the event was spooled with its newlines; the Elasticsearch destination copied them
  // into the _bulk body, Elasticsearch refused the whole request (400 Malformed action/metadata
  // line [3]), the destination stopped as a cluster problem and retried that segment forever
  // while every later line stayed pending; the events file got the event as several lines.
  const url = requireElasticsearch(t)
  if (!url) return
  const hec = await HecDouble.start()
  t.after(() => hec.close())
  const namespace = `p${randomBytes(4).toString('hex')}`
  const stream = `logs-cloudflare.http_requests-${namespace}`
  const server = await startServer(t, {
    SINKS: 'file,elasticsearch,splunk',
    ELASTICSEARCH_URL: url,
    ELASTICSEARCH_NAMESPACE: namespace,
    SPLUNK_HEC_URL: hec.url,
    SPLUNK_HEC_TOKEN: DEFAULT_HEC_TOKEN,
    DELIVERY_RETRY_MAX_MS: '500'
  })
  const body = `{"event": ${PRETTY},\n "sourcetype": "cloudflare:json"}\n{"event": ${PRETTY_STRING}}\n{"event":${PLAIN}}`
  const res = await fetch(`${server.url}/services/collector/event?dataset=http_requests`, {
    method: 'POST', body: gzipSync(body), headers: { authorization: `Splunk ${TEST_TOKEN}`, 'content-encoding': 'gzip' }
  })
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { text: 'Success', code: 0 })
  const later = batchText('http_requests', 50)
  assert.equal((await post(server, '/logpush/http_requests', later)).status, 200)
  assert.ok(await server.built.drained(60_000), 'every destination took everything: nothing is stuck behind the event')

  const expected = [ONE_LINE, STRING_ONE_LINE, PLAIN, ...later.trimEnd().split('\n')]
  // Files: one event, one line, each exactly as stored.
  const file = await readStore(server, 'events', 'http_requests')
  assert.deepEqual(file.trimEnd().split('\n'), expected)
  // Elasticsearch: every document, with the _id of the one-line text (so exactly that text).
  const stored = await ids(url, stream)
  assert.equal(stored.size, expected.length)
  for (const line of expected) assert.ok(stored.has(documentId('http_requests', line)), `stored in Elasticsearch: ${line.slice(0, 60)}`)
  const doc = (await es(url, `/${stream}/_search?q=RayID:7c0f1a2b3c4d5e6f`)).hits.hits[0]._source
  assert.equal(doc['@timestamp'], '2023-11-14T22:13:20.123456789Z', 'the unixnano digits survived')
  // Splunk: the event is the one-line text, spliced into its envelope.
  const events = hec.events.map((e) => e.raw.slice(e.raw.indexOf('"event":') + '"event":'.length, -1))
  assert.deepEqual(events.sort(), [...expected].sort())
  for (const e of hec.events) assert.ok(!e.raw.includes('\n'), 'no envelope holds a newline')
  assert.equal(((await (await fetch(`${server.url}/health`)).json()) as any).sinks.elasticsearch.stopped, null)
  assert.deepEqual(await readDeadLetters(server, 'http_requests'), [])
})

function batchOf(lines: readonly string[]): DeliveryBatch {
  return {
    seq: 1,
    dataset: 'http_requests',
    from: 0,
    count: lines.length,
    async * lines () { yield * lines },
    async * payloads () { for (const line of lines) yield Buffer.from(line) },
    async * blocks () { for (const line of lines) yield { lines: 1, data: Buffer.from(line + '\n') } }
  }
}

function recorder(): { progress: Progress, rejected: Rejection[], lines: number[] } {
  const rejected: Rejection[] = []
  const lines: number[] = []
  return { rejected, lines, progress: async (n, r) => { lines.push(n); rejected.push(...r) } }
}

function sinkFor(t: TestContext, url: string, namespace: string, bulkBytes = 5 * 1024 * 1024): ElasticsearchSink {
  const sink = new ElasticsearchSink({
    url,
    apiKey: '',
    username: '',
    password: '',
    caFile: '',
    tlsVerify: true,
    namespace,
    bulkBytes,
    concurrency: 2,
    retryMs: 2000,
    requestTimeoutMs: 30_000,
    datasets: new Map([['http_requests', loadSchema('http_requests')]]),
    log: pino({ level: 'silent' })
  })
  t.after(() => sink.close())
  return sink
}

test('a _bulk request Elasticsearch refuses whole for one document\'s content is halved down to it: that one is dead-lettered with Elasticsearch\'s reason, the rest delivered', { timeout: 120_000 }, async (t) => {
  // The bug: a whole-request 400 for its content (Malformed action/metadata line, here from a
  // document holding newlines, as an earlier release spooled them) stopped the destination as a
  // cluster problem, and the same segment was retried forever.
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `b${randomBytes(4).toString('hex')}`
  const stream = `logs-cloudflare.http_requests-${namespace}`
  const sink = sinkFor(t, url, namespace)
  await sink.init()
  const lines = batchText('http_requests', 40).trimEnd().split('\n')
  lines.splice(17, 0, PRETTY)
  const r = recorder()
  const result = await sink.deliver(batchOf(lines), r.progress)
  assert.equal(result.delivered, 40)
  assert.equal(r.rejected.length, 1)
  assert.equal(r.rejected[0]!.raw, PRETTY)
  assert.equal(r.rejected[0]!.code, 'LPR_ERR_SINK_ELASTICSEARCH_UNPARSABLE')
  assert.match(r.rejected[0]!.reason, /^HTTP 400 illegal_argument_exception: Malformed action\/metadata line \[\d+\]/)
  assert.deepEqual(r.lines, [41])
  assert.equal((await ids(url, stream)).size, 40)
  assert.equal((sink.health() as any).stopped, null)
})

test('that document alone, the first request since start, is dead-lettered too: Elasticsearch takes a request holding no document, so the refusal is the document\'s', { timeout: 120_000 }, async (t) => {
  // The bug: a batch of the one event (what the HEC request made) met a fresh process: nothing
  // had been delivered yet to show that Elasticsearch takes our requests at all.
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `s${randomBytes(4).toString('hex')}`
  const sink = sinkFor(t, url, namespace)
  await sink.init()
  const r = recorder()
  const result = await sink.deliver(batchOf([PRETTY]), r.progress)
  assert.equal(result.delivered, 0)
  assert.deepEqual(r.rejected.map((x) => x.raw), [PRETTY])
  assert.equal(r.rejected[0]!.code, 'LPR_ERR_SINK_ELASTICSEARCH_UNPARSABLE')
  // The probe stored nothing and created nothing.
  const probe = await fetch(`${url}/logs-cloudflare.lpr-probe-none`)
  assert.equal(probe.status, 404)
  assert.equal((sink.health() as any).stopped, null)
})
