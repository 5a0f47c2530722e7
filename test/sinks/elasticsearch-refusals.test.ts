// The Elasticsearch sink against a stand-in for _bulk (test/helpers/es-double.ts): refusals the
// test node cannot produce (it runs without security) or cannot script per item. What the real
// node does is in test/integration/elasticsearch-refusals.test.ts.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import type { DeliveryBatch, Progress, Rejection } from '../../src/delivery.js'
import { DeliveryStopped } from '../../src/sinks/index.js'
import { ElasticsearchSink } from '../../src/sinks/elasticsearch/index.js'
import { loadSchema } from '../helpers/fixtures.js'
import { EsDouble } from '../helpers/es-double.js'

function batchOf(lines: readonly string[], onRead?: (n: number) => void): DeliveryBatch {
  return {
    seq: 1,
    dataset: 'http_requests',
    from: 0,
    count: lines.length,
    async * lines () { for (let i = 0; i < lines.length; i++) { onRead?.(i + 1); yield lines[i]! } },
    async * payloads () { for (const line of lines) yield Buffer.from(line) },
    // Destinations read a stored batch by blocks (delivery.ts eachLine): reads are counted there too.
    async * blocks () { for (let i = 0; i < lines.length; i++) { onRead?.(i + 1); yield { lines: 1, data: Buffer.from(lines[i]! + '\n') } } }
  }
}

interface Call { lines: number, rejected: readonly Rejection[], readSoFar: number }

function recorder(read: () => number): { progress: Progress, calls: Call[] } {
  const calls: Call[] = []
  return { calls, progress: async (lines, rejected) => { calls.push({ lines, rejected, readSoFar: read() }) } }
}

async function setup(t: TestContext, opts: { bulkBytes?: number, concurrency?: number } = {}): Promise<{ es: EsDouble, sink: ElasticsearchSink }> {
  const es = await EsDouble.start()
  t.after(() => es.close())
  const sink = new ElasticsearchSink({
    url: es.url,
    apiKey: '',
    username: '',
    password: '',
    caFile: '',
    tlsVerify: true,
    namespace: 'default',
    bulkBytes: opts.bulkBytes ?? 5 * 1024 * 1024,
    concurrency: opts.concurrency ?? 2,
    retryMs: 2000,
    requestTimeoutMs: 5000,
    datasets: new Map([['http_requests', loadSchema('http_requests')]]),
    log: pino({ level: 'silent' })
  })
  t.after(() => sink.close())
  return { es, sink }
}

function lines(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `{"RayID":"r${i}","EdgeStartTimestamp":1652295571,"ClientRequestURI":"/${'x'.repeat(200)}"}`)
}

test('item 403 security_exception stops delivery: nothing dead-lettered, the stop shows in health()', async (t) => {
  // The bug: item-level 401/403/404 were dead-lettered as if the data were bad, so an API key
  // missing a privilege emptied the whole stream into the dead-letter store.
  const { es, sink } = await setup(t)
  es.onItem = () => ({ status: 403, type: 'security_exception', reason: 'action [indices:data/write/bulk[s]] is unauthorized for API key id [k1] of user [lpr] on indices [logs-cloudflare.http_requests-default]' })
  let read = 0
  const { progress, calls } = recorder(() => read)
  const err = await sink.deliver(batchOf(lines(20), (n) => { read = n }), progress).then(() => null, (e: unknown) => e)
  assert.ok(err instanceof DeliveryStopped, `stopped, not ${String(err)}`)
  assert.equal(err.code, 'LPR_ERR_SINK_ELASTICSEARCH_CREDENTIALS')
  assert.match(err.message, /security_exception: action \[indices:data\/write\/bulk\[s\]\] is unauthorized/)
  assert.deepEqual(calls.flatMap((c) => c.rejected), [], 'nothing dead-lettered')
  const stopped = (sink.health() as any).stopped
  assert.equal(stopped.code, 'LPR_ERR_SINK_ELASTICSEARCH_CREDENTIALS')
  assert.match(stopped.reason, /privileges/)

  // Fixed: the next delivery goes through and the stop clears.
  es.onItem = () => ({ status: 201 })
  const result = await sink.deliver(batchOf(lines(20)), progress)
  assert.equal(result.delivered, 20)
  assert.equal((sink.health() as any).stopped, null)
})

test('item 404 index_not_found_exception and 403 cluster_block_exception stop delivery as cluster problems', async (t) => {
  for (const [status, type] of [[404, 'index_not_found_exception'], [403, 'cluster_block_exception']] as const) {
    const { es, sink } = await setup(t)
    es.onItem = () => ({ status, type, reason: 'no such index [logs-cloudflare.http_requests-default]' })
    const read = 0
    const { progress, calls } = recorder(() => read)
    await assert.rejects(sink.deliver(batchOf(lines(5)), progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER')
    assert.deepEqual(calls.flatMap((c) => c.rejected), [], type)
  }
})

test('whole-request 401 stops delivery with the credentials code', async (t) => {
  const { es, sink } = await setup(t)
  es.onRequest = () => ({ status: 401, body: { error: { type: 'security_exception', reason: 'unable to authenticate with provided credentials and anonymous access is not allowed for this request' }, status: 401 } })
  const read = 0
  await assert.rejects(sink.deliver(batchOf(lines(3)), recorder(() => read).progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_ELASTICSEARCH_CREDENTIALS' && /unable to authenticate/.test(e.message))
  assert.equal((sink.health() as any).stopped.code, 'LPR_ERR_SINK_ELASTICSEARCH_CREDENTIALS')
})

test('refused documents are dead-lettered as their bulks finish, not held until the batch ends', async (t) => {
  // The bug: the sink kept every refused line of a batch in memory until the whole batch was
  // delivered; a batch of refused lines grew the heap by its whole size.
  const { es, sink } = await setup(t, { bulkBytes: 2048, concurrency: 2 })
  es.onItem = (doc) => doc.source.includes('"RayID":"r1') ? { status: 400, type: 'document_parsing_exception', reason: '[1:2] failed to parse field [ClientASN]' } : { status: 201 }
  const input = lines(200)
  const refused = input.filter((l) => l.includes('"RayID":"r1'))
  let read = 0
  const { progress, calls } = recorder(() => read)
  const result = await sink.deliver(batchOf(input, (n) => { read = n }), progress)
  assert.deepEqual(result.rejected, [], 'nothing left for the end')
  assert.deepEqual(calls.flatMap((c) => c.rejected.map((r) => r.raw)), refused, 'every refused line once, in order')
  assert.equal(result.delivered, input.length - refused.length)
  const perBulk = Math.ceil(2048 / 300) + 1
  const withRejections = calls.filter((c) => c.rejected.length > 0)
  assert.ok(withRejections.length > 3, `dead-lettered in ${withRejections.length} steps`)
  // Held at most `concurrency` bulks' worth at a time: each step hands over what it has.
  for (const c of calls) assert.ok(c.rejected.length <= 2 * perBulk, `${c.rejected.length} refused lines held at once`)
  assert.ok(calls[0]!.readSoFar < input.length, 'the first dead letters went before the batch was read to its end')
  assert.deepEqual(calls.map((c) => c.lines), [...calls.map((c) => c.lines)].sort((a, b) => a - b), 'checkpoints only grow')
  assert.equal(calls.at(-1)!.lines, input.length)
  assert.equal(calls.flatMap((c) => c.rejected)[0]!.code, 'LPR_ERR_SINK_ELASTICSEARCH_MAPPING')
})

/** Elasticsearch's answer to a _bulk body it cannot parse (research/sinks.md C: error object, status). */
function unparsable(type: string, reason: string): { status: number, body: unknown } {
  return { status: 400, body: { error: { root_cause: [{ type, reason }], type, reason }, status: 400 } }
}

test('a whole-request 400 for its content is halved down to the documents responsible: they are dead-lettered with Elasticsearch\'s reason, the others delivered', async (t) => {
  // The bug (issue 21, item 1): a _bulk request refused as a whole for what one document held
  // stopped the destination as a cluster problem, and the batch was retried forever.
  const { es, sink } = await setup(t)
  const bad = new Set(['"RayID":"r13"', '"RayID":"r77"'])
  es.onRequest = (call) => call.docs.some((d) => [...bad].some((b) => d.source.includes(b)))
    ? unparsable('x_content_parse_exception', '[1:45] Unexpected character (\'}\' (code 125))')
    : undefined
  const input = lines(100)
  const read = 0
  const { progress, calls } = recorder(() => read)
  const result = await sink.deliver(batchOf(input), progress)
  const rejected = calls.flatMap((c) => c.rejected)
  assert.deepEqual(rejected.map((r) => r.raw), [input[13], input[77]])
  for (const r of rejected) {
    assert.equal(r.code, 'LPR_ERR_SINK_ELASTICSEARCH_UNPARSABLE')
    assert.match(r.reason, /^HTTP 400 x_content_parse_exception: \[1:45\] Unexpected character/)
  }
  assert.equal(result.delivered, 98)
  assert.equal((sink.health() as any).stopped, null)
  // Halving: about 2 log2(100) requests per bad document, and no probe (halves were taken).
  assert.ok(es.bulks.length <= 1 + 2 * 2 * 7, `${es.bulks.length} requests`)
  assert.equal(es.bulks.filter((b) => b.deletes > 0).length, 0)
})

test('a batch of the one refused document, before anything was delivered: a request holding no document is taken, so the document is dead-lettered', async (t) => {
  // The bug (issue 21, item 1): a fresh process with only that document to send had nothing
  // to tell the document's fault from Elasticsearch's.
  const { es, sink } = await setup(t)
  es.onRequest = (call) => call.docs.length > 0 ? unparsable('illegal_argument_exception', 'Malformed action/metadata line [3], expected START_OBJECT or END_OBJECT but found [VALUE_STRING]') : undefined
  const read = 0
  const { progress, calls } = recorder(() => read)
  const result = await sink.deliver(batchOf(lines(1)), progress)
  assert.equal(result.delivered, 0)
  assert.deepEqual(calls.flatMap((c) => c.rejected).map((r) => r.code), ['LPR_ERR_SINK_ELASTICSEARCH_UNPARSABLE'])
  assert.equal(es.bulks.filter((b) => b.deletes === 1 && b.docs.length === 0).length, 1, 'one probe')
})

test('a 400 every request gets, even one holding no document, is no document\'s fault: delivery stops, nothing is dead-lettered', async (t) => {
  const { es, sink } = await setup(t)
  es.onRequest = () => unparsable('illegal_argument_exception', 'request [/_bulk] contains unrecognized parameter: [filter_path]')
  const read = 0
  const { progress, calls } = recorder(() => read)
  await assert.rejects(sink.deliver(batchOf(lines(8)), progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER' && /holding no document/.test(e.message))
  assert.deepEqual(calls.flatMap((c) => c.rejected), [])
  assert.equal((sink.health() as any).stopped.code, 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER')
})

test('a 400 without Elasticsearch\'s error object (a wrong URL path, a proxy) stops delivery at once, without halving', async (t) => {
  const { es, sink } = await setup(t)
  es.onRequest = () => ({ status: 400, body: { error: 'no handler found for uri [/x/y/_bulk] and method [POST]', status: 400 } })
  const read = 0
  const { progress, calls } = recorder(() => read)
  await assert.rejects(sink.deliver(batchOf(lines(8)), progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER')
  assert.deepEqual(calls.flatMap((c) => c.rejected), [])
  assert.equal(es.bulks.length, 1)
})

test('a 400 every request gets from a node that took requests earlier is still no document\'s fault: delivery stops, nothing is dead-lettered', async (t) => {
  // The bug: once any request had been taken since start, a 400 with Elasticsearch's error
  // object was blamed on the documents without asking the node again, so a node (or a proxy
  // speaking its error format) that began refusing every request had every document of every
  // batch dead-lettered one by one instead of stopping the destination.
  const { es, sink } = await setup(t)
  const first = recorder(() => 0)
  assert.equal((await sink.deliver(batchOf(lines(4)), first.progress)).delivered, 4)
  es.onRequest = () => unparsable('illegal_argument_exception', 'request [/_bulk] contains unrecognized parameter: [filter_path]')
  const { progress, calls } = recorder(() => 0)
  await assert.rejects(sink.deliver(batchOf(lines(8)), progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER' && /holding no document/.test(e.message))
  assert.deepEqual(calls.flatMap((c) => c.rejected), [])
  assert.equal((sink.health() as any).stopped.code, 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER')
})

test('a bulk whose every document makes Elasticsearch refuse the request: each is found alone and dead-lettered, the node asked once with no document, delivery goes on', async (t) => {
  // Hostile case of the halving: 2n-1 requests for n documents, none taken, so only the probe
  // tells the documents' fault from the node's.
  const { es, sink } = await setup(t)
  es.onRequest = (call) => call.docs.length > 0 ? unparsable('x_content_parse_exception', '[1:2] Unexpected end-of-input') : undefined
  const { progress, calls } = recorder(() => 0)
  const input = lines(16)
  const result = await sink.deliver(batchOf(input), progress)
  assert.equal(result.delivered, 0)
  assert.deepEqual(calls.flatMap((c) => c.rejected).map((r) => r.raw), input)
  assert.equal(es.bulks.filter((b) => b.docs.length > 0).length, 2 * 16 - 1)
  assert.equal(es.bulks.filter((b) => b.docs.length === 0 && b.deletes === 1).length, 1, 'one probe')
  assert.equal((sink.health() as any).stopped, null)
})
