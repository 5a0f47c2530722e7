// The HEC-compatible intake, as a Logpush splunk:// job and other HEC senders call it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { BIG_UNIXNANO, batchText } from '../helpers/fixtures.js'
import { TEST_TOKEN, readDeadLetters, readStore, startServer, type TestServer } from '../helpers/server.js'

const CHANNEL = '6f0c5e1e-4d1f-4c1b-9a7e-2c3d4e5f6a7b'

async function hec(server: TestServer, path: string, body: string | Buffer, headers: Record<string, string> = {}, gzip = true): Promise<{ status: number, json: any }> {
  const res = await fetch(server.url + path, {
    method: 'POST',
    body: gzip ? gzipSync(body) : body,
    headers: { authorization: `Splunk ${TEST_TOKEN}`, ...(gzip ? { 'content-encoding': 'gzip' } : {}), ...headers }
  })
  return { status: res.status, json: await res.json() }
}

test('a Logpush splunk:// upload to /services/collector/raw is stored byte-exact and answered like HEC', async (t) => {
  const server = await startServer(t)
  const first = batchText('http_requests', 300)
  const second = batchText('http_requests', 200, 'rfc3339', 300)
  const r1 = await hec(server, `/services/collector/raw?channel=${CHANNEL}&sourcetype=cloudflare:json&dataset=http_requests`, first)
  assert.equal(r1.status, 200)
  assert.deepEqual(r1.json, { text: 'Success', code: 0 })
  const r2 = await hec(server, `/services/collector/raw?channel=${CHANNEL}&dataset=http_requests`, second, { 'x-splunk-request-channel': CHANNEL }, false)
  assert.deepEqual(r2.json, { text: 'Success', code: 0 })
  assert.equal(await readStore(server, 'events', 'http_requests'), first + second)
})

test('without ?dataset= the dataset is recognised from the records', async (t) => {
  const server = await startServer(t)
  const nal = batchText('network_analytics_logs', 50)
  // RayID, ClientRequestHost and EdgeStartTimestamp are websocket_analytics fields too: CacheCacheStatus is http_requests' alone.
  const http = '{"RayID":"r","ClientRequestHost":"example.com","CacheCacheStatus":"hit","EdgeStartTimestamp":' + BIG_UNIXNANO + '}\n'
  assert.equal((await hec(server, `/services/collector/raw?channel=${CHANNEL}`, nal)).status, 200)
  assert.equal((await hec(server, `/services/collector/raw?channel=${CHANNEL}`, http)).status, 200)
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), nal)
  assert.equal(await readStore(server, 'events', 'http_requests'), http)
  // A batch no schema recognises is kept as dead letters, not refused (see hec-dataset.test.ts).
  const unknown = await hec(server, '/services/collector/raw', '{"Foo":1}\n{"Bar":2}\n')
  assert.deepEqual(unknown, { status: 200, json: { text: 'Success', code: 0 } })
  const wrong = await hec(server, '/services/collector/raw?dataset=nope', nal)
  assert.equal(wrong.status, 400)
  assert.match(wrong.json.detail, /Known datasets/)
})

test('/services/collector/event takes concatenated envelopes and keeps each event exactly', async (t) => {
  const server = await startServer(t)
  const a = `{"RayID":"a","EdgeStartTimestamp":${BIG_UNIXNANO},"ClientRequestPath":"\\/x\\u00e9"}`
  const b = '{"RayID":"b","ClientIP":"192.0.2.1"}'
  const body = `{"time":1652295571.783,"sourcetype":"cloudflare:json","event":${a}}  {"event": ${JSON.stringify(b)}, "host":"h"}\n{"host":"no-event"}{"event":${b.replace('"b"', '"c"')},"fields":{"x":"{not json}"}}`
  const r = await hec(server, '/services/collector/event?dataset=http_requests', body)
  assert.equal(r.status, 200, JSON.stringify(r.json))
  assert.deepEqual(r.json, { text: 'Success', code: 0 })
  assert.equal(await readStore(server, 'events', 'http_requests'), `${a}\n${b}\n${b.replace('"b"', '"c"')}\n`)
  const dead = await readDeadLetters(server, 'http_requests')
  assert.equal(dead.length, 1)
  assert.equal(dead[0].code, 'LPR_ERR_PIPELINE_HEC_ENVELOPE')
  assert.equal(dead[0].raw, '{"host":"no-event"}')
  const array = await hec(server, '/services/collector/event?dataset=http_requests', `[${body}]`)
  assert.equal(array.status, 400)
  assert.equal(array.json.code, 6)
})

test('HEC status codes for tokens, health, validation uploads', async (t) => {
  const server = await startServer(t)
  const body = batchText('http_requests', 1)
  const cases: Array<[Record<string, string>, number, number]> = [
    [{ authorization: '' }, 401, 2],
    [{ authorization: `Token ${TEST_TOKEN}` }, 401, 3],
    [{ authorization: 'Splunk not-the-token' }, 403, 4]
  ]
  for (const [headers, status, code] of cases) {
    const res = await fetch(`${server.url}/services/collector/raw?dataset=http_requests`, { method: 'POST', body, headers: headers.authorization === '' ? {} : headers })
    assert.equal(res.status, status, JSON.stringify(headers))
    assert.equal(((await res.json()) as any).code, code)
  }
  const health = await fetch(`${server.url}/services/collector/health`)
  assert.equal(health.status, 200)
  assert.deepEqual(await health.json(), { text: 'HEC is healthy', code: 17 })
  for (const ping of ['test', '{"content":"tests"}', '']) {
    const r = await hec(server, `/services/collector/raw?channel=${CHANNEL}`, ping)
    assert.deepEqual(r, { status: 200, json: { text: 'Success', code: 0 } }, JSON.stringify(ping))
  }
  assert.equal(await readStore(server, 'events', 'http_requests'), '')
})
