import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { DEFAULT_HEC_TOKEN, HecDouble, splitConcatenatedJson, type HecDoubleOptions } from './hec-double.js'

const CHANNEL = '0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba'
const OTHER_CHANNEL = 'F5BDA9B5-70D2-4E02-9C4F-1A3B5C7D9E0F'

async function start(t: TestContext, opts: HecDoubleOptions = {}): Promise<HecDouble> {
  const hec = await HecDouble.start(opts)
  t.after(() => hec.close())
  return hec
}

interface SendOptions {
  readonly method?: string
  readonly headers?: Record<string, string>
  readonly gzip?: boolean
  readonly token?: string | null
}

async function send(hec: HecDouble, path: string, body?: string | Buffer, opts: SendOptions = {}): Promise<{ status: number, json: any, headers: Headers }> {
  const headers: Record<string, string> = { ...opts.headers }
  const token = opts.token === undefined ? DEFAULT_HEC_TOKEN : opts.token
  if (token !== null && !('authorization' in headers)) headers.authorization = `Splunk ${token}`
  let payload: Buffer | undefined = body === undefined ? undefined : Buffer.from(body)
  if (opts.gzip === true && payload !== undefined) {
    payload = gzipSync(payload)
    headers['content-encoding'] = 'gzip'
  }
  const res = await fetch(hec.url + path, { method: opts.method ?? (body === undefined ? 'GET' : 'POST'), headers, body: payload })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

const EVENT = '/services/collector/event'
const RAW = '/services/collector/raw'
const ACK = '/services/collector/ack'
const HEALTH = '/services/collector/health'

test('splitter: concatenated objects, strings and escapes respected, arrays and junk flagged', () => {
  const body = '{"event":"a}{\\"b"} \n\t{"event":{"x":[1,{"y":"]"}]}}{"event":"\\\\"}'
  const pieces = [...splitConcatenatedJson(body)]
  assert.deepEqual(pieces.map((p) => p.kind), ['object', 'object', 'object'])
  assert.deepEqual(pieces.map((p) => JSON.parse(p.text).event), ['a}{"b', { x: [1, { y: ']' }] }, '\\'])
  assert.deepEqual([...splitConcatenatedJson('{"event":1}[{"event":2}]{"event":3}')].map((p) => p.kind), ['object', 'array', 'object'])
  assert.deepEqual([...splitConcatenatedJson('{"event":1} 42 {"event":3}')].map((p) => p.kind), ['object', 'invalid'])
  assert.deepEqual([...splitConcatenatedJson('{"event":"unterminated}')].map((p) => p.kind), ['invalid'])
  assert.deepEqual([...splitConcatenatedJson('  \n ')], [])
})

test('auth: Splunk header, Basic with the token as password, and the documented failure codes', async (t) => {
  const hec = await start(t, { tokens: ['good-token'], disabledTokens: ['old-token'] })
  const body = '{"event":"x"}'
  assert.deepEqual(await send(hec, EVENT, body, { token: 'good-token' }).then((r) => [r.status, r.json]), [200, { text: 'Success', code: 0 }])
  const basic = Buffer.from('anyuser:good-token').toString('base64')
  assert.equal((await send(hec, EVENT, body, { headers: { authorization: `Basic ${basic}` } })).status, 200)

  const missing = await send(hec, EVENT, body, { token: null })
  assert.deepEqual([missing.status, missing.json], [401, { text: 'Token is required', code: 2 }])
  const malformed = await send(hec, EVENT, body, { headers: { authorization: 'Bearer good-token' } })
  assert.deepEqual([malformed.status, malformed.json], [401, { text: 'Invalid authorization', code: 3 }])
  const bare = await send(hec, EVENT, body, { headers: { authorization: 'good-token' } })
  assert.deepEqual([bare.status, bare.json.code], [401, 3])
  const unknown = await send(hec, EVENT, body, { token: 'nope' })
  assert.deepEqual([unknown.status, unknown.json], [403, { text: 'Invalid token', code: 4 }])
  const disabled = await send(hec, EVENT, body, { token: 'old-token' })
  assert.deepEqual([disabled.status, disabled.json], [403, { text: 'Token disabled', code: 1 }])

  const query = await send(hec, `${EVENT}?token=good-token`, body, { token: null })
  assert.deepEqual([query.status, query.json], [400, { text: 'Query string authorization is not enabled', code: 16 }])
  assert.equal(hec.events.length, 2)
})

test('auth: query-string token accepted when the token allows it', async (t) => {
  const hec = await start(t, { tokens: ['qs-token'], queryStringAuth: true })
  const ok = await send(hec, `${EVENT}?token=qs-token`, '{"event":"x"}', { token: null })
  assert.equal(ok.status, 200)
  const bad = await send(hec, `${EVENT}?token=other`, '{"event":"x"}', { token: null })
  assert.deepEqual([bad.status, bad.json.code], [403, 4])
})

test('/event: concatenated envelopes with metadata, in order, on every alias', async (t) => {
  const hec = await start(t, { indexes: ['main', 'cloudflare'] })
  const envelopes = [
    '{"time":1433188255.500,"host":"h1","source":"s1","sourcetype":"cloudflare:json","index":"cloudflare","event":{"RayID":"a{b}"},"fields":{"zone":"example.com","tags":["x","y"]}}',
    '{"event":"line two"}',
    '{"event":3}'
  ]
  const res = await send(hec, EVENT, envelopes.join('\n  '))
  assert.deepEqual([res.status, res.json], [200, { text: 'Success', code: 0 }])
  assert.equal(hec.events.length, 3)
  const [first, second, third] = hec.events
  assert.deepEqual(first, {
    event: { RayID: 'a{b}' },
    raw: envelopes[0],
    endpoint: 'event',
    time: 1433188255.5,
    host: 'h1',
    source: 's1',
    sourcetype: 'cloudflare:json',
    index: 'cloudflare',
    fields: { zone: 'example.com', tags: ['x', 'y'] }
  })
  assert.equal(second!.event, 'line two')
  assert.equal(third!.event, 3)

  for (const alias of ['/services/collector', '/services/collector/event/1.0']) {
    assert.equal((await send(hec, alias, '{"event":"alias"}{"event":"alias"}')).status, 200)
  }
  assert.equal(hec.events.length, 7)
  assert.equal(hec.requests.at(-1)!.body, '{"text":"Success","code":0}')
})

test('/event: an array is code 6 at its position; events before it are indexed', async (t) => {
  const hec = await start(t)
  const array = await send(hec, EVENT, '[{"event":"a"},{"event":"b"}]')
  assert.deepEqual([array.status, array.json], [400, { text: 'Invalid data format', code: 6, 'invalid-event-number': 0 }])
  assert.equal(hec.events.length, 0)

  const later = await send(hec, EVENT, '{"event":"a"}[{"event":"b"}]')
  assert.deepEqual(later.json, { text: 'Invalid data format', code: 6, 'invalid-event-number': 1 })
  assert.deepEqual(hec.events.map((e) => e.event), ['a'])
})

test('/event: processing stops at the first bad event and reports its 0-based number', async (t) => {
  const hec = await start(t, { indexes: ['main'] })
  const cases: Array<[string, number, number, string]> = [
    ['{"event":"a"}{"event":"b"}{"host":"no-event"}{"event":"never"}', 2, 12, 'Event field is required'],
    ['{"event":"a"}{"event":""}', 1, 13, 'Event field cannot be blank'],
    ['{"event":"   "}', 0, 13, 'Event field cannot be blank'],
    ['{"event":{}}', 0, 13, 'Event field cannot be blank'],
    ['{"event":"a"}{"event":"b","index":"secret"}', 1, 7, 'Incorrect index'],
    ['{"event":null}', 0, 6, 'Invalid data format'],
    ['{"event":"a"}{"event":"b" "oops":1}', 1, 6, 'Invalid data format'],
    ['{"event":"a"}{"event":"b"', 1, 6, 'Invalid data format'],
    ['{"event":"a"}"just a string"', 1, 6, 'Invalid data format'],
    ['{"event":"a"}{"event":"b","fields":{"nested":{"no":1}}}', 1, 15, 'Error in handling indexed fields']
  ]
  for (const [body, n, code, text] of cases) {
    const before = hec.events.length
    const res = await send(hec, EVENT, body)
    assert.equal(res.status, 400, body)
    assert.deepEqual(res.json, { text, code, 'invalid-event-number': n }, body)
    assert.equal(hec.events.length - before, n, `events kept before the bad one: ${body}`)
  }
})

test('/event and /raw: an empty body is code 5 "No data"', async (t) => {
  const hec = await start(t)
  for (const [path, body] of [[EVENT, ''], [EVENT, ' \n '], [RAW, ''], [RAW, '\n\r\n']] as const) {
    const res = await send(hec, path, body)
    assert.deepEqual([res.status, res.json], [400, { text: 'No data', code: 5 }], `${path} ${JSON.stringify(body)}`)
  }
})

test('/raw: lines become events with query-string metadata and the channel', async (t) => {
  const hec = await start(t, { indexes: ['main', 'cf'] })
  const body = '{"RayID":"1"}\n{"RayID":"2"}\r\n\n{"RayID":"3"}\n'
  const res = await send(hec, `${RAW}?channel=${CHANNEL}&sourcetype=cloudflare:json&host=logpush&index=cf&source=http_requests`, body)
  assert.deepEqual([res.status, res.json], [200, { text: 'Success', code: 0 }])
  assert.deepEqual(hec.events.map((e) => e.raw), ['{"RayID":"1"}', '{"RayID":"2"}', '{"RayID":"3"}'])
  assert.deepEqual(hec.events[0], {
    event: '{"RayID":"1"}', raw: '{"RayID":"1"}', endpoint: 'raw',
    sourcetype: 'cloudflare:json', host: 'logpush', index: 'cf', source: 'http_requests', channel: CHANNEL
  })

  await send(hec, RAW, 'from header', { headers: { 'x-splunk-request-channel': OTHER_CHANNEL } })
  assert.equal(hec.events.at(-1)!.channel, OTHER_CHANNEL)

  const badIndex = await send(hec, `${RAW}?index=nope`, 'x')
  assert.deepEqual([badIndex.status, badIndex.json], [400, { text: 'Incorrect index', code: 7 }])
  assert.equal(hec.events.length, 4)
})

test('gzip bodies are inflated on /event and /raw; a bad gzip body is code 6', async (t) => {
  const hec = await start(t)
  assert.equal((await send(hec, EVENT, '{"event":"zipped"}{"event":"too"}', { gzip: true })).status, 200)
  assert.equal((await send(hec, RAW, 'raw zipped\nline 2', { gzip: true })).status, 200)
  assert.deepEqual(hec.events.map((e) => e.event), ['zipped', 'too', 'raw zipped', 'line 2'])
  assert.equal(hec.requests[0]!.requestBody, '{"event":"zipped"}{"event":"too"}')

  const bad = await send(hec, EVENT, 'not gzip', { headers: { 'content-encoding': 'gzip' } })
  assert.deepEqual([bad.status, bad.json], [400, { text: 'Invalid data format', code: 6 }])
})

test('ack mode: channel required, ackIds per channel, /ack polling reports each true once', async (t) => {
  const hec = await start(t, { ack: true })
  const noChannel = await send(hec, EVENT, '{"event":"a"}')
  assert.deepEqual([noChannel.status, noChannel.json], [400, { text: 'Data channel is missing', code: 10 }])
  const rawNoChannel = await send(hec, RAW, 'a')
  assert.deepEqual(rawNoChannel.json, { text: 'Data channel is missing', code: 10 })
  const badChannel = await send(hec, EVENT, '{"event":"a"}', { headers: { 'x-splunk-request-channel': 'not-a-guid' } })
  assert.deepEqual([badChannel.status, badChannel.json], [400, { text: 'Invalid data channel', code: 11 }])
  assert.equal(hec.events.length, 0)

  const h = { 'x-splunk-request-channel': CHANNEL }
  assert.deepEqual((await send(hec, EVENT, '{"event":"a"}', { headers: h })).json, { text: 'Success', code: 0, ackId: 0 })
  assert.deepEqual((await send(hec, `${RAW}?channel=${CHANNEL}`, 'b')).json, { text: 'Success', code: 0, ackId: 1 })
  assert.deepEqual((await send(hec, EVENT, '{"event":"c"}', { headers: { 'x-splunk-request-channel': OTHER_CHANNEL } })).json, { text: 'Success', code: 0, ackId: 0 })
  assert.equal(hec.events.length, 3)

  const poll = await send(hec, ACK, JSON.stringify({ acks: [0, 1, 7] }), { headers: h })
  assert.deepEqual([poll.status, poll.json], [200, { acks: { 0: true, 1: true, 7: false } }])
  const again = await send(hec, ACK, JSON.stringify({ acks: [0, 1] }), { headers: h })
  assert.deepEqual(again.json, { acks: { 0: false, 1: false } }, 'a true is reported once, then forgotten')
  const other = await send(hec, `${ACK}?channel=${OTHER_CHANNEL}`, '{"acks":[0]}')
  assert.deepEqual(other.json, { acks: { 0: true } })

  const ackNoChannel = await send(hec, ACK, '{"acks":[0]}')
  assert.deepEqual(ackNoChannel.json, { text: 'Data channel is missing', code: 10 })
  const ackBadBody = await send(hec, ACK, '{"acks":"zero"}', { headers: h })
  assert.deepEqual([ackBadBody.status, ackBadBody.json.code], [400, 6])
})

test('ack mode: a partly accepted request carries an ackId; a wholly rejected one does not', async (t) => {
  const hec = await start(t, { ack: true })
  const h = { 'x-splunk-request-channel': CHANNEL }
  const partial = await send(hec, EVENT, '{"event":"a"}{"event":"b"}{"event":""}', { headers: h })
  assert.deepEqual([partial.status, partial.json], [400, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': 2, ackId: 0 }])
  const none = await send(hec, EVENT, '{"event":""}', { headers: h })
  assert.deepEqual(none.json, { text: 'Event field cannot be blank', code: 13, 'invalid-event-number': 0 })
  assert.deepEqual(hec.events.map((e) => e.event), ['a', 'b'])
})

test("ack mode: acknowledge('none') holds events back; dropUnacknowledged loses them; 'all' commits", async (t) => {
  const hec = await start(t, { ack: true })
  const h = { 'x-splunk-request-channel': CHANNEL }
  hec.acknowledge('none')
  assert.equal((await send(hec, EVENT, '{"event":"lost"}', { headers: h })).json.ackId, 0)
  assert.deepEqual((await send(hec, ACK, '{"acks":[0]}', { headers: h })).json, { acks: { 0: false } })
  assert.equal(hec.events.length, 0)
  hec.dropUnacknowledged()

  assert.equal((await send(hec, EVENT, '{"event":"kept"}', { headers: h })).json.ackId, 1)
  assert.deepEqual((await send(hec, ACK, '{"acks":[0,1]}', { headers: h })).json, { acks: { 0: false, 1: false } })
  hec.acknowledge('all')
  assert.deepEqual(hec.events.map((e) => e.event), ['kept'])
  assert.deepEqual((await send(hec, ACK, '{"acks":[0,1]}', { headers: h })).json, { acks: { 0: false, 1: true } })
})

test('/ack without ack mode is code 14', async (t) => {
  const hec = await start(t)
  const res = await send(hec, ACK, '{"acks":[0]}', { headers: { 'x-splunk-request-channel': CHANNEL } })
  assert.deepEqual([res.status, res.json], [400, { text: 'ACK is disabled', code: 14 }])
})

test('health: 17 when healthy, 503 code 18 when not, on both paths; an unknown token is 400 code 21', async (t) => {
  const hec = await start(t)
  for (const path of [HEALTH, `${HEALTH}/1.0`]) {
    const res = await send(hec, path, undefined, { token: null })
    assert.deepEqual([res.status, res.json], [200, { text: 'HEC is healthy', code: 17 }])
  }
  assert.equal((await send(hec, HEALTH)).status, 200, 'a valid token is fine')
  hec.setHealthy(false)
  const sick = await send(hec, HEALTH, undefined, { token: null })
  assert.deepEqual([sick.status, sick.json], [503, { text: 'HEC is unhealthy, queues are full', code: 18 }])
  const unknown = await send(hec, HEALTH, undefined, { token: 'nope' })
  assert.deepEqual([unknown.status, unknown.json], [400, { text: 'Invalid token', code: 21 }])
})

test('faults: default texts, plain 429/408, queue order, and health/ack do not consume them', async (t) => {
  const hec = await start(t)
  hec.injectFaults({ status: 503, code: 9 }, { status: 500, code: 8 }, { status: 429 }, { status: 408 }, { status: 503, code: 9, text: 'custom' })
  await send(hec, HEALTH)
  const busy = await send(hec, EVENT, '{"event":"a"}')
  assert.deepEqual([busy.status, busy.json], [503, { text: 'Server is busy', code: 9 }])
  const internal = await send(hec, RAW, 'a')
  assert.deepEqual([internal.status, internal.json], [500, { text: 'Internal server error', code: 8 }])
  const tooMany = await send(hec, EVENT, '{"event":"a"}')
  assert.equal(tooMany.status, 429)
  assert.equal(tooMany.json.code, undefined)
  assert.equal((await send(hec, EVENT, '{"event":"a"}')).status, 408)
  assert.deepEqual((await send(hec, EVENT, '{"event":"a"}')).json, { text: 'custom', code: 9 })
  assert.equal(hec.events.length, 0, 'a fault without afterEvents indexes nothing')
  assert.equal(hec.pendingFaults, 0)
  assert.equal((await send(hec, EVENT, '{"event":"a"}')).status, 200)
  assert.equal(hec.events.length, 1)
})

test('faults: afterEvents indexes a prefix and reports invalid-event-number, even on 503', async (t) => {
  const hec = await start(t)
  hec.injectFaults({ status: 503, code: 9, afterEvents: 2 }, { status: 500, code: 8, afterEvents: 1 })
  const res = await send(hec, EVENT, '{"event":"a"}{"event":"b"}{"event":"c"}')
  assert.deepEqual([res.status, res.json], [503, { text: 'Server is busy', code: 9, 'invalid-event-number': 2 }])
  assert.deepEqual(hec.events.map((e) => e.event), ['a', 'b'])
  const raw = await send(hec, RAW, 'x\ny\nz')
  assert.deepEqual([raw.status, raw.json], [500, { text: 'Internal server error', code: 8, 'invalid-event-number': 1 }])
  assert.deepEqual(hec.events.map((e) => e.event), ['a', 'b', 'x'])
})

test('faults: a bad event before afterEvents wins over the injected fault', async (t) => {
  const hec = await start(t)
  hec.injectFaults({ status: 503, code: 9, afterEvents: 3 })
  const res = await send(hec, EVENT, '{"event":"a"}{"nope":1}{"event":"c"}')
  assert.deepEqual([res.status, res.json], [400, { text: 'Event field is required', code: 12, 'invalid-event-number': 1 }])
  assert.equal(hec.events.length, 1)
})

test('faults: closeSocket destroys the connection without an answer', async (t) => {
  const hec = await start(t)
  hec.injectFaults({ status: 0, closeSocket: true })
  await assert.rejects(send(hec, EVENT, '{"event":"a"}'))
  assert.equal(hec.events.length, 0)
  assert.equal(hec.requests.at(-1)!.status, 0)
  assert.equal((await send(hec, EVENT, '{"event":"a"}')).status, 200)
})

test('413 when the body on the wire exceeds maxContentLength (compressed size counts)', async (t) => {
  const hec = await start(t, { maxContentLength: 100 })
  const big = `{"event":"${'x'.repeat(200)}"}`
  const res = await send(hec, EVENT, big)
  assert.equal(res.status, 413)
  assert.match(res.json.text, /too large/)
  assert.equal(hec.events.length, 0)
  assert.equal((await send(hec, EVENT, big, { gzip: true })).status, 200, 'gzip brings it under the limit')
})

test('every answer is application/json; charset=UTF-8, including 404 and 405', async (t) => {
  const hec = await start(t)
  const answers = [
    await send(hec, EVENT, '{"event":"a"}'),
    await send(hec, EVENT, '[]'),
    await send(hec, EVENT, '{"event":"a"}', { token: null }),
    await send(hec, HEALTH),
    await send(hec, '/services/collector/nope', 'x'),
    await send(hec, EVENT, undefined)
  ]
  assert.deepEqual(answers.map((a) => a.status), [200, 400, 401, 200, 404, 405])
  for (const a of answers) assert.equal(a.headers.get('content-type'), 'application/json; charset=UTF-8')
  assert.equal(hec.requests.length, answers.length)
})

test('waitForEvents resolves when enough events arrive', async (t) => {
  const hec = await start(t)
  const waiting = hec.waitForEvents(2, 2000)
  await send(hec, EVENT, '{"event":"a"}')
  await send(hec, EVENT, '{"event":"b"}')
  assert.equal((await waiting).length, 2)
  await assert.rejects(hec.waitForEvents(3, 50), /2 of 3 events/)
})
