// The Splunk HEC sink against the HEC double (real HTTP on loopback, Splunk's documented answers).
// Every delivery test compares what the double indexed with the input, event by event and byte
// for byte: a lost event, a duplicate or a re-serialised number fails it.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { pino } from 'pino'
import type { DeliveryBatch, Progress, Rejection } from '../../src/delivery.js'
import { backoffMs, classify, envelope, envelopeMeta, SplunkHecSink, type SplunkHecSinkOptions } from '../../src/sinks/splunk-hec/index.js'
import { DeliveryStopped } from '../../src/sinks/index.js'
import { DEFAULT_HEC_TOKEN, HecDouble, type HecDoubleOptions, type HecEvent } from '../helpers/hec-double.js'

const EVENT_PATH = '/services/collector/event'
const ACK_PATH = '/services/collector/ack'
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

function batchOf(lines: readonly string[], from = 0, dataset = 'http_requests'): DeliveryBatch {
  return {
    seq: 1,
    dataset,
    from,
    count: lines.length,
    async * lines () { yield * lines.slice(from) },
    async * payloads () { for (const line of lines.slice(from)) yield Buffer.from(line) },
    async * blocks () { for (const line of lines.slice(from)) yield { lines: 1, data: Buffer.from(line + '\n') } }
  }
}

interface Call { lines: number, rejected: readonly Rejection[] }

function recorder(onCall?: (call: Call) => void): { progress: Progress, calls: Call[] } {
  const calls: Call[] = []
  return {
    calls,
    progress: async (lines, rejected) => {
      const call = { lines, rejected }
      calls.push(call)
      onCall?.(call)
    }
  }
}

async function startHec(t: TestContext, opts: HecDoubleOptions = {}): Promise<HecDouble> {
  const hec = await HecDouble.start(opts)
  t.after(() => hec.close())
  return hec
}

function sinkFor(t: TestContext, hec: HecDouble, opts: Partial<SplunkHecSinkOptions> = {}): SplunkHecSink {
  const sink = new SplunkHecSink({
    url: hec.url,
    token: DEFAULT_HEC_TOKEN,
    caFile: '',
    tlsVerify: true,
    sourcetype: 'cloudflare:json',
    source: '',
    host: '',
    indexes: new Map(),
    defaultIndex: '',
    batchBytes: 1024 * 1024,
    gzip: false,
    retryMs: 10_000,
    requestTimeoutMs: 5000,
    ack: false,
    ackPollMs: 20,
    ackTimeoutMs: 2000,
    eventTimeFields: new Map([['http_requests', 'EdgeStartTimestamp'], ['firewall_events', 'Datetime'], ['dns_logs', 'Timestamp']]),
    log: pino({ level: 'silent' }),
    ...opts
  })
  t.after(() => sink.close())
  return sink
}

/** http_requests lines with a 19-digit unixnano (above 2^53) and a string needing escapes. */
function httpLines(n: number): string[] {
  return Array.from({ length: n }, (_, i) =>
    `{"RayID":"7c0f${String(i).padStart(4, '0')}","EdgeStartTimestamp":${1652295571783000123n + BigInt(i)},"ClientRequestURI":"/p?q=\\u00fc\\/${i}","EdgeResponseStatus":200}`)
}

/** The `event` text of an envelope as the double received it. */
function eventText(e: HecEvent): string {
  const at = e.raw.indexOf('"event":')
  return e.raw.slice(at + '"event":'.length, -1)
}

function eventPosts(hec: HecDouble): Array<HecDouble['requests'][number]> {
  return hec.requests.filter((r) => r.path === EVENT_PATH)
}

async function until(cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

test('classify: every HEC answer to ok, retry, partial, split or fail', () => {
  const table: Array<[number | undefined, Record<string, unknown> | undefined, string, number]> = [
    [200, { text: 'Success', code: 0 }, 'ok', 10],
    [200, { text: 'Success', code: 0, ackId: 3 }, 'ok', 10],
    [200, undefined, 'fail', 0], // a proxy's page is not delivery
    [undefined, undefined, 'retry', 0],
    [503, { text: 'Server is busy', code: 9 }, 'retry', 0],
    [503, { text: 'Server is busy', code: 9, 'invalid-event-number': 4 }, 'retry', 4],
    [503, { text: 'Server is busy', code: 9, 'invalid-event-number': 10 }, 'retry', 10], // all taken
    [503, { text: 'Server is busy', code: 9, 'invalid-event-number': 11 }, 'retry', 0], // nonsense: resend all
    [503, { text: 'HEC is unhealthy, queues are full', code: 18 }, 'retry', 0],
    [500, { text: 'Internal server error', code: 8 }, 'retry', 0],
    [502, undefined, 'retry', 0],
    [429, { text: 'Too Many Requests' }, 'retry', 0],
    [408, { text: 'Request Timeout' }, 'retry', 0],
    [501, undefined, 'fail', 0],
    [413, { text: 'Content-Length too large' }, 'split', 0],
    [400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 2 }, 'partial', 2],
    [400, { text: 'Event field is required', code: 12, 'invalid-event-number': 0 }, 'partial', 0],
    [400, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': 9 }, 'partial', 9],
    [400, { text: 'Error in handling indexed fields', code: 15, 'invalid-event-number': 1 }, 'partial', 1],
    [400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 10 }, 'fail', 0], // beyond the request
    [400, { text: 'Invalid data format', code: 6 }, 'fail', 0],
    [400, { text: 'Incorrect index', code: 7, 'invalid-event-number': 3 }, 'fail', 3], // a setting, not the data
    [400, { text: 'Data channel is missing', code: 10 }, 'fail', 0],
    [400, { text: 'No data', code: 5 }, 'fail', 0],
    [401, { text: 'Token is required', code: 2 }, 'fail', 0],
    [401, { text: 'Invalid authorization', code: 3 }, 'fail', 0],
    [403, { text: 'Token disabled', code: 1 }, 'fail', 0],
    [403, { text: 'Invalid token', code: 4 }, 'fail', 0],
    [404, undefined, 'fail', 0]
  ]
  for (const [status, answer, verdict, indexed] of table) {
    assert.deepEqual(classify(status, answer, 10), { verdict, indexed }, `${status} ${JSON.stringify(answer)}`)
  }
})

test('backoff grows exponentially, is capped, and is jittered between half and all of it', () => {
  assert.equal(backoffMs(0, 200, 5000, () => 1), 200)
  assert.equal(backoffMs(3, 200, 5000, () => 1), 1600)
  assert.equal(backoffMs(10, 200, 5000, () => 1), 5000)
  assert.equal(backoffMs(3, 200, 5000, () => 0), 800)
})

test('envelopes: time in epoch seconds from every timestamp format, the line spliced in as sent', () => {
  const meta = envelopeMeta({ host: '', source: 'cloudflare:x', sourcetype: 'cloudflare:json', index: '' })
  assert.equal(meta, '"source":"cloudflare:x","sourcetype":"cloudflare:json",')
  const cases: Array<[string, string]> = [
    ['{"T":1652295571783000123}', '{"time":1652295571.783000123,"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"T":1652295571783000123}}'],
    ['{"T":1652295571}', '{"time":1652295571,"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"T":1652295571}}'],
    ['{"T":1652295571783}', '{"time":1652295571.783,"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"T":1652295571783}}'],
    ['{"T":"2022-05-11T18:59:31.25+01:00"}', '{"time":1652291971.25,"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"T":"2022-05-11T18:59:31.25+01:00"}}'],
    ['{"U":1}', '{"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"U":1}}'],
    ['{"T":"soon"}', '{"source":"cloudflare:x","sourcetype":"cloudflare:json","event":{"T":"soon"}}'],
    ['{"T":1', '{"source":"cloudflare:x","sourcetype":"cloudflare:json","event":"{\\"T\\":1"}']
  ]
  for (const [line, want] of cases) assert.equal(envelope(line, meta, 'T'), want, line)
  assert.equal(envelope('{"T":1652295571}', '', undefined), '{"event":{"T":1652295571}}')
})

test('envelopes reach HEC with time, source, sourcetype, host and index per dataset, and the exact line', async (t) => {
  const hec = await startHec(t, { indexes: ['main', 'cf_http'] })
  const sink = sinkFor(t, hec, { host: 'edge-1', indexes: new Map([['http_requests', 'cf_http']]), defaultIndex: 'main' })
  const http = httpLines(3)
  const firewall = ['{"Datetime":"2022-05-11T18:59:31.123456789Z","Action":"block"}']
  const dns = ['{"Timestamp":1652295571,"QueryName":"example.com"}']
  const workers = ['{"Outcome":"ok"}']
  await sink.deliver(batchOf(http), recorder().progress)
  await sink.deliver(batchOf(firewall, 0, 'firewall_events'), recorder().progress)
  await sink.deliver(batchOf(dns, 0, 'dns_logs'), recorder().progress)
  await sink.deliver(batchOf(workers, 0, 'workers_trace_events'), recorder().progress)

  assert.deepEqual(hec.events.map(eventText), [...http, ...firewall, ...dns, ...workers])
  const [h0, h1, , fw, d, w] = hec.events
  assert.ok(h0!.raw.startsWith('{"time":1652295571.783000123,"host":"edge-1","source":"cloudflare:http_requests","sourcetype":"cloudflare:json","index":"cf_http","event":{'), h0!.raw)
  assert.ok(h1!.raw.startsWith('{"time":1652295571.783000124,'), 'nanoseconds kept, not rounded through a double')
  assert.ok(h0!.raw.includes('"EdgeStartTimestamp":1652295571783000123,'), 'all 19 digits of the unixnano value')
  assert.ok(h0!.raw.includes('"/p?q=\\u00fc\\/0"'), 'escapes as sent')
  assert.deepEqual([h0!.index, h0!.source, h0!.sourcetype, h0!.host], ['cf_http', 'cloudflare:http_requests', 'cloudflare:json', 'edge-1'])
  assert.ok(fw!.raw.startsWith('{"time":1652295571.123456789,"host":"edge-1","source":"cloudflare:firewall_events","sourcetype":"cloudflare:json","index":"main",'), fw!.raw)
  assert.equal(d!.time, 1652295571)
  assert.equal(d!.index, 'main')
  assert.equal(w!.time, undefined, 'no event time field: Splunk stamps it')
  assert.equal(w!.raw, '{"host":"edge-1","source":"cloudflare:workers_trace_events","sourcetype":"cloudflare:json","index":"main","event":{"Outcome":"ok"}}')

  const req = eventPosts(hec)[0]!
  assert.equal(req.headers.authorization, `Splunk ${DEFAULT_HEC_TOKEN}`)
  assert.match(String(req.headers['x-splunk-request-channel']), GUID)
  assert.equal(new Set(eventPosts(hec).map((r) => r.headers['x-splunk-request-channel'])).size, 1, 'one channel per sink')
  assert.equal(req.headers['content-encoding'], undefined)
  assert.deepEqual(sink.health(), { url: `${hec.url}/`, lastStatus: 200, acksPending: 0, stopped: null })
})

test('an explicit source, no index and no sourcetype are honoured; per-dataset sources and sourcetypes win', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec, { source: 'cf', sourcetype: '', sources: new Map([['dns_logs', 'cf:dns']]), sourcetypes: new Map([['dns_logs', 'cloudflare:dns']]) })
  await sink.deliver(batchOf(['{"a":1}'], 0, 'audit_logs'), recorder().progress)
  await sink.deliver(batchOf(['{"a":2}'], 0, 'dns_logs'), recorder().progress)
  assert.deepEqual(hec.events.map((e) => e.raw), ['{"source":"cf","event":{"a":1}}', '{"source":"cf:dns","sourcetype":"cloudflare:dns","event":{"a":2}}'])
})

test('gzip: bodies go compressed with Content-Encoding: gzip', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec, { gzip: true, batchBytes: 1000 })
  const lines = httpLines(30)
  const result = await sink.deliver(batchOf(lines), recorder().progress)
  assert.deepEqual(hec.events.map(eventText), lines)
  assert.deepEqual(result, { delivered: 30, duplicates: 0, rejected: [] })
  assert.ok(eventPosts(hec).length > 1)
  for (const r of eventPosts(hec)) assert.equal(r.headers['content-encoding'], 'gzip')
})

test('batching: requests of about batchBytes, one at a time, progress after each is indexed', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec, { batchBytes: 1000 })
  const lines = httpLines(40)
  const indexedAtProgress: number[] = []
  const { progress, calls } = recorder(() => indexedAtProgress.push(hec.events.length))
  const result = await sink.deliver(batchOf(lines, 10), progress)

  assert.deepEqual(hec.events.map(eventText), lines.slice(10))
  assert.deepEqual(result, { delivered: 30, duplicates: 0, rejected: [] })
  const posts = eventPosts(hec)
  assert.ok(posts.length >= 4, `${posts.length} requests`)
  for (const r of posts) assert.ok(r.requestBody.length <= 1000, 'within batchBytes')
  assert.equal(calls.length, posts.length, 'one progress per request')
  assert.equal(calls.at(-1)!.lines, 40)
  assert.deepEqual(calls.map((c) => c.lines), [...calls.map((c) => c.lines)].sort((a, b) => a - b))
  // Progress counts lines from the start of the segment, and only once HEC has them.
  assert.deepEqual(indexedAtProgress, calls.map((c) => c.lines - 10))
  // Concatenated envelopes, newline-separated, no array.
  assert.equal(posts[0]!.requestBody.split('\n').length, posts[0]!.requestBody.match(/"event":/g)!.length)
  assert.ok(posts[0]!.requestBody.startsWith('{"time":'))
})

const retryable: Array<[string, Parameters<HecDouble['injectFaults']>]> = [
  ['503 code 9 (server busy), twice', [{ status: 503, code: 9 }, { status: 503, code: 9 }]],
  ['503 code 18 (queues full)', [{ status: 503, code: 18 }]],
  ['500 code 8', [{ status: 500, code: 8 }]],
  ['429', [{ status: 429 }]],
  ['408', [{ status: 408 }]],
  ['a closed socket', [{ status: 503, closeSocket: true }]],
  ['503 code 9 after indexing the first 3 events', [{ status: 503, code: 9, afterEvents: 3 }]],
  ['503 code 9 after indexing every event of the request', [{ status: 503, code: 9, afterEvents: 1000 }]],
  ['503 after 3, then 500 after 2 more', [{ status: 503, code: 9, afterEvents: 3 }, { status: 500, code: 8, afterEvents: 2 }]]
]

for (const [name, faults] of retryable) {
  test(`retry: ${name} → every event indexed exactly once`, async (t) => {
    const hec = await startHec(t)
    const sink = sinkFor(t, hec, { batchBytes: 1200 })
    const lines = httpLines(20)
    hec.injectFaults(...faults)
    const { progress, calls } = recorder()
    const result = await sink.deliver(batchOf(lines), progress)
    assert.equal(hec.pendingFaults, 0)
    assert.deepEqual(hec.events.map(eventText), lines)
    assert.deepEqual(result, { delivered: 20, duplicates: 0, rejected: [] })
    assert.equal(calls.at(-1)!.lines, 20)
    assert.ok(calls.every((c) => c.rejected.length === 0))
  })
}

test('retry after partial indexing resends only from invalid-event-number, and checkpoints the indexed part first', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec)
  const lines = httpLines(8)
  hec.injectFaults({ status: 503, code: 9, afterEvents: 3 })
  const { progress, calls } = recorder()
  await sink.deliver(batchOf(lines), progress)
  const posts = eventPosts(hec)
  assert.deepEqual(posts.map((r) => r.status), [503, 200])
  assert.equal(JSON.parse(posts[0]!.body)['invalid-event-number'], 3)
  assert.equal(posts[1]!.requestBody.match(/"event":/g)!.length, 5)
  assert.ok(posts[1]!.requestBody.includes(lines[3]!) && !posts[1]!.requestBody.includes(lines[2]!))
  assert.deepEqual(calls.map((c) => c.lines), [3, 8])
  assert.deepEqual(hec.events.map(eventText), lines)
})

test('400 with invalid-event-number: the events before it indexed once, the bad one dead-lettered with HEC\'s text, the rest delivered', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec)
  const lines = httpLines(6)
  hec.injectFaults({ status: 400, code: 6, afterEvents: 2 })
  const { progress, calls } = recorder()
  const result = await sink.deliver(batchOf(lines), progress)
  assert.deepEqual(hec.events.map(eventText), [...lines.slice(0, 2), ...lines.slice(3)])
  assert.deepEqual(eventPosts(hec).map((r) => r.status), [400, 200])
  assert.deepEqual(calls.map((c) => c.lines), [3, 6])
  assert.deepEqual(calls[0]!.rejected, [{
    dataset: 'http_requests',
    sink: 'splunk',
    code: 'LPR_ERR_SINK_SPLUNK_EVENT',
    reason: 'Invalid data format (HEC code 6, HTTP 400)',
    raw: lines[2]
  }])
  assert.deepEqual(calls[1]!.rejected, [])
  assert.deepEqual(result, { delivered: 5, duplicates: 0, rejected: [] })
})

test('an event HEC itself refuses (blank event, code 13) is dead-lettered; its neighbours are delivered once', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec, { batchBytes: 700 })
  const lines = httpLines(9)
  lines.splice(4, 0, '{}')
  const { progress, calls } = recorder()
  const result = await sink.deliver(batchOf(lines), progress)
  assert.deepEqual(hec.events.map(eventText), lines.filter((l) => l !== '{}'))
  const rejected = calls.flatMap((c) => c.rejected)
  assert.equal(rejected.length, 1)
  assert.equal(rejected[0]!.raw, '{}')
  assert.equal(rejected[0]!.reason, 'Event field cannot be blank (HEC code 13, HTTP 400)')
  assert.equal(calls.at(-1)!.lines, 10)
  assert.equal(result.delivered, 9)
})

test('413: the request is split in halves until each part fits', async (t) => {
  const hec = await startHec(t, { maxContentLength: 1500 })
  const sink = sinkFor(t, hec)
  const lines = httpLines(24)
  const { progress, calls } = recorder()
  const result = await sink.deliver(batchOf(lines), progress)
  assert.deepEqual(hec.events.map(eventText), lines)
  assert.equal(eventPosts(hec)[0]!.status, 413)
  assert.ok(eventPosts(hec).filter((r) => r.status === 200).length >= 2)
  assert.equal(calls.at(-1)!.lines, 24)
  assert.deepEqual(calls.map((c) => c.lines), [...calls.map((c) => c.lines)].sort((a, b) => a - b))
  assert.equal(result.delivered, 24)
})

test('413 on a single event: that event is dead-lettered with HEC\'s answer, the others are delivered once', async (t) => {
  // The bug: an event over HEC's max_content_length was split down to itself and then retried
  // forever; the spool filled behind it and every intake got 503.
  const hec = await startHec(t, { maxContentLength: 1500 })
  const sink = sinkFor(t, hec)
  const lines = httpLines(12)
  const big = `{"RayID":"big","EdgeStartTimestamp":1652295571783000123,"ClientRequestURI":"/${'x'.repeat(3000)}"}`
  lines.splice(5, 0, big)
  const { progress, calls } = recorder()
  const result = await sink.deliver(batchOf(lines), progress)
  assert.deepEqual(hec.events.map(eventText), lines.filter((l) => l !== big), 'the others indexed once, in order')
  const rejected = calls.flatMap((c) => c.rejected)
  assert.equal(rejected.length, 1)
  assert.equal(rejected[0]!.raw, big)
  assert.equal(rejected[0]!.code, 'LPR_ERR_SINK_SPLUNK_TOO_LARGE')
  assert.match(rejected[0]!.reason, /^HTTP 413 "Content-Length of \d+ too large \(maximum is 1500\)": the event alone makes a \d+-byte request/)
  assert.equal(calls.at(-1)!.lines, 13)
  assert.deepEqual(calls.map((c) => c.lines), [...calls.map((c) => c.lines)].sort((a, b) => a - b))
  // The line before the big one is checkpointed only together with the big one's dead letter.
  assert.ok(calls.every((c) => c.lines <= 5 || c.rejected.length > 0 || calls.some((d) => d.lines <= c.lines && d.rejected.length > 0)))
  assert.equal(result.delivered, 12)
  assert.equal((sink.health() as any).stopped, null)
})

test('413 on a single event alone in its batch is dead-lettered too: nothing says the limit is not about its size', async (t) => {
  const hec = await startHec(t, { maxContentLength: 50 })
  const sink = sinkFor(t, hec)
  const { progress, calls } = recorder()
  const result = await sink.deliver(batchOf(httpLines(1)), progress)
  assert.equal(calls.flatMap((c) => c.rejected).length, 1)
  assert.equal(result.delivered, 0)
})

test('413 on every event of a request: the limit is a setting, not bad data; delivery stops, nothing dead-lettered', async (t) => {
  const hec = await startHec(t, { maxContentLength: 50 })
  const sink = sinkFor(t, hec)
  const { progress, calls } = recorder()
  await assert.rejects(sink.deliver(batchOf(httpLines(2)), progress), (e: unknown) => e instanceof DeliveryStopped && e.code === 'LPR_ERR_SINK_SPLUNK_CONFIG' && /413.*max_content_length/.test(e.message))
  assert.deepEqual(calls, [])
  assert.deepEqual(hec.events, [])
  assert.equal((sink.health() as any).stopped.code, 'LPR_ERR_SINK_SPLUNK_CONFIG')
})

test('413 on one event after HEC took larger requests: the limit was lowered, delivery stops', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec)
  await sink.deliver(batchOf(httpLines(10)), recorder().progress)
  assert.equal(hec.events.length, 10)
  hec.injectFaults({ status: 413, text: 'Content-Length too large' })
  const { progress, calls } = recorder()
  await assert.rejects(sink.deliver(batchOf(httpLines(1)), progress), (e: unknown) => e instanceof DeliveryStopped && /took a \d+-byte request before/.test(e.message))
  assert.deepEqual(calls, [])
})

const operatorProblems: Array<[string, Partial<SplunkHecSinkOptions>, HecDoubleOptions, RegExp]> = [
  ['403 invalid token', { token: 'not-the-token' }, {}, /HTTP 403, code 4 "Invalid token".*token/],
  ['403 disabled token', { token: 'old' }, { disabledTokens: ['old'] }, /HTTP 403, code 1 "Token disabled".*disabled/],
  ['401 empty token', { token: '' }, {}, /HTTP 401, code 3 "Invalid authorization"/],
  ['400 code 7 incorrect index', { defaultIndex: 'nope' }, {}, /HTTP 400, code 7 "Incorrect index".*index/]
]

for (const [name, sinkOpts, hecOpts, message] of operatorProblems) {
  test(`${name}: throws a clear error, dead-letters nothing, checkpoints nothing`, async (t) => {
    const hec = await startHec(t, hecOpts)
    const sink = sinkFor(t, hec, sinkOpts)
    const { progress, calls } = recorder()
    await assert.rejects(sink.deliver(batchOf(httpLines(5)), progress), (e: unknown) => e instanceof DeliveryStopped && message.test(e.message))
    assert.equal((sink.health() as any).stopped.code, 'LPR_ERR_SINK_SPLUNK_CONFIG')
    assert.deepEqual(calls, [])
    assert.deepEqual(hec.events, [])
    assert.equal(eventPosts(hec).length, 1, 'not retried')
  })
}

test('401 injected after auth (code 2) also fails without retrying', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec)
  hec.injectFaults({ status: 401, code: 2 })
  await assert.rejects(sink.deliver(batchOf(httpLines(2)), recorder().progress), /HTTP 401, code 2/)
  assert.equal(eventPosts(hec).length, 1)
})

test('retry budget spent: deliver() throws; a later deliver() from the last progress completes with no duplicate', async (t) => {
  const hec = await startHec(t)
  // retryMs 0: the first backoff is already over budget, so exactly one fault is consumed.
  const sink = sinkFor(t, hec, { batchBytes: 700, retryMs: 0 })
  const lines = httpLines(15)
  let calls = 0
  const first = recorder((call) => {
    if (++calls > 1) return
    assert.equal(call.lines, hec.events.length)
    hec.injectFaults({ status: 503, code: 9 })
  })
  await assert.rejects(sink.deliver(batchOf(lines), first.progress), /no progress within the retry budget.*HTTP 503, code 9/)
  assert.equal(first.calls.length, 1)
  const checkpoint = first.calls[0]!.lines
  assert.ok(checkpoint > 0 && checkpoint < 15)
  assert.deepEqual(hec.events.map(eventText), lines.slice(0, checkpoint))

  const second = recorder()
  const result = await sink.deliver(batchOf(lines, checkpoint), second.progress)
  assert.deepEqual(hec.events.map(eventText), lines, 'nothing lost, nothing twice')
  assert.equal(result.delivered, 15 - checkpoint)
  assert.equal(second.calls.at(-1)!.lines, 15)
})

test('abort: a delivery waiting out a backoff stops at once', async (t) => {
  const hec = await startHec(t)
  const sink = sinkFor(t, hec)
  hec.injectFaults(...Array.from({ length: 20 }, () => ({ status: 503, code: 9 })))
  const ac = new AbortController()
  const delivery = sink.deliver(batchOf(httpLines(3)), recorder().progress, ac.signal)
  await until(() => eventPosts(hec).length >= 1)
  ac.abort()
  await assert.rejects(delivery, { name: 'AbortError' })
})

test('ack mode: each request waits for its ackId to read true before progress; true ids are not polled again', async (t) => {
  const hec = await startHec(t, { ack: true })
  const sink = sinkFor(t, hec, { ack: true, batchBytes: 1200 })
  const lines = httpLines(20)
  const pollsAtProgress: number[] = []
  const { progress, calls } = recorder(() => pollsAtProgress.push(hec.requests.filter((r) => r.path === ACK_PATH && r.body.includes('true')).length))
  const result = await sink.deliver(batchOf(lines), progress)
  assert.deepEqual(hec.events.map(eventText), lines)
  assert.deepEqual(result, { delivered: 20, duplicates: 0, rejected: [] })

  const posts = eventPosts(hec)
  assert.ok(posts.length >= 2)
  assert.deepEqual(posts.map((r) => JSON.parse(r.body).ackId), posts.map((_, i) => i))
  const polls = hec.requests.filter((r) => r.path === ACK_PATH)
  for (let id = 0; id < posts.length; id++) {
    const mine = polls.filter((r) => JSON.parse(r.requestBody).acks[0] === id)
    assert.ok(mine.length >= 1)
    assert.deepEqual(mine.map((r) => JSON.parse(r.body).acks[String(id)]).slice(-1), [true])
    assert.equal(mine.filter((r) => JSON.parse(r.body).acks[String(id)] === true).length, 1, 'never polled after true')
    assert.equal(mine[0]!.headers['x-splunk-request-channel'], posts[0]!.headers['x-splunk-request-channel'])
  }
  // Progress only after each request's ack came back true.
  assert.deepEqual(pollsAtProgress, calls.map((_, i) => i + 1))
  assert.equal(sink.health().acksPending, 0)
})

test('ack mode: an ackId still false after ackTimeoutMs is resent; Splunk indexing late means duplicates, as it documents', async (t) => {
  const hec = await startHec(t, { ack: true })
  const sink = sinkFor(t, hec, { ack: true, ackPollMs: 20, ackTimeoutMs: 150 })
  const lines = httpLines(6)
  hec.acknowledge('none')
  const { progress, calls } = recorder()
  const delivery = sink.deliver(batchOf(lines), progress)
  await until(() => eventPosts(hec).length >= 2 && sink.health().acksPending === 1)
  assert.equal(calls.length, 0, 'nothing checkpointed while unacknowledged')
  // The held requests are indexed after all: each one the sink sent is in Splunk now.
  hec.acknowledge('all')
  const result = await delivery
  const sent = eventPosts(hec).length
  assert.ok(sent >= 2)
  assert.deepEqual(hec.events.map(eventText), Array.from({ length: sent }, () => lines).flat())
  assert.deepEqual(calls.map((c) => c.lines), [6])
  assert.equal(result.delivered, 6)
})

test('ack mode: a request whose ackId never comes true (lost) is resent and lands exactly once', async (t) => {
  const hec = await startHec(t, { ack: true })
  const sink = sinkFor(t, hec, { ack: true, ackPollMs: 20, ackTimeoutMs: 150 })
  const lines = httpLines(6)
  hec.acknowledge('none')
  const { progress, calls } = recorder()
  const delivery = sink.deliver(batchOf(lines), progress)
  await until(() => eventPosts(hec).length >= 1)
  hec.dropUnacknowledged()
  hec.acknowledge('all')
  await delivery
  assert.equal(eventPosts(hec).length, 2)
  assert.deepEqual(hec.events.map(eventText), lines)
  assert.deepEqual(calls.map((c) => c.lines), [6])
})

test('ack mode with a 400 after indexed events: the prefix waits for its ackId, the bad event is dead-lettered', async (t) => {
  const hec = await startHec(t, { ack: true })
  const sink = sinkFor(t, hec, { ack: true })
  const lines = httpLines(5)
  hec.injectFaults({ status: 400, code: 6, afterEvents: 2 })
  const { progress, calls } = recorder()
  await sink.deliver(batchOf(lines), progress)
  assert.equal(JSON.parse(eventPosts(hec)[0]!.body).ackId, 0)
  assert.ok(hec.requests.some((r) => r.path === ACK_PATH && JSON.parse(r.requestBody).acks[0] === 0))
  assert.deepEqual(hec.events.map(eventText), [...lines.slice(0, 2), ...lines.slice(3)])
  assert.deepEqual(calls.map((c) => [c.lines, c.rejected.map((r) => r.raw)]), [[3, [lines[2]]], [5, []]])
})
