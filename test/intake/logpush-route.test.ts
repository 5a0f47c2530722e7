import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { BIG_UNIXNANO, batchText, loadSchema, recordLine } from '../helpers/fixtures.js'
import { TEST_TOKEN, post, readDeadLetters, readStore, startServer } from '../helpers/server.js'

for (const dataset of ['http_requests', 'network_analytics_logs']) {
  test(`${dataset}: thousands of lines with every documented field land byte-exact`, async (t) => {
    const server = await startServer(t)
    const first = batchText(dataset, 3000, 'unixnano')
    const second = batchText(dataset, 2000, 'rfc3339', 3000) + batchText(dataset, 1000, 'unix', 5000)
    const r1 = await post(server, `/logpush/${dataset}`, first)
    assert.equal(r1.status, 200)
    assert.deepEqual(r1.json, { dataset, accepted: 3000, rejected: 0 })
    const r2 = await post(server, `/logpush/${dataset}`, second)
    assert.deepEqual(r2.json, { dataset, accepted: 3000, rejected: 0 })
    assert.equal(await readStore(server, 'events', dataset), first + second)
    const fields = Object.keys(loadSchema(dataset).properties)
    const line = first.slice(0, first.indexOf('\n'))
    for (const f of fields) assert.ok(line.includes(`"${f}":`), `fixture line carries ${f}`)
    assert.deepEqual(server.built.stats.dataset(dataset).unknownFields.size, 0)
  })
}

test('an unixnano value above 2^53 survives byte for byte', async (t) => {
  const server = await startServer(t)
  const line = `{"RayID":"7c0ffee","EdgeStartTimestamp":${BIG_UNIXNANO},"EdgeEndTimestamp":1652295571783999999,"ClientIP":"203.0.113.9"}`
  assert.notEqual(String(JSON.parse(line).EdgeStartTimestamp), BIG_UNIXNANO, 'JSON.parse alone would round it')
  const r = await post(server, '/logpush/http_requests', line + '\n')
  assert.equal(r.status, 200)
  assert.equal(await readStore(server, 'events', 'http_requests'), line + '\n')
})

test('mixed valid and invalid lines: valid ones stored, invalid ones dead-lettered with reasons', async (t) => {
  const server = await startServer(t)
  const schema = loadSchema('network_analytics_logs')
  const good = [recordLine(schema, 1), recordLine(schema, 2), recordLine(schema, 3)]
  const lines = [
    good[0],
    '{"Datetime":1700000000,"DestinationPort":"eighty"}',
    good[1],
    'this is not json',
    '[1,2,3]',
    '',
    '{"Datetime":"yesterday"}',
    good[2],
    '{"SourceASN":1.5}'
  ]
  const r = await post(server, '/logpush/network_analytics_logs', lines.join('\n') + '\n')
  assert.equal(r.status, 200)
  assert.deepEqual(r.json, { dataset: 'network_analytics_logs', accepted: 3, rejected: 5 })
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), good.join('\n') + '\n')
  const dead = await readDeadLetters(server, 'network_analytics_logs')
  assert.deepEqual(dead.map((d) => [d.line, d.code, d.reason]), [
    [2, 'LPR_ERR_PIPELINE_LINE_SCHEMA', '/DestinationPort must be integer or null'],
    [4, 'LPR_ERR_PIPELINE_LINE_NOT_JSON', dead[1].reason],
    [5, 'LPR_ERR_PIPELINE_LINE_NOT_OBJECT', 'not a JSON object but an array'],
    [7, 'LPR_ERR_PIPELINE_LINE_SCHEMA', '/Datetime must match pattern "' + schema.properties.Datetime!.pattern + '"'],
    [9, 'LPR_ERR_PIPELINE_LINE_SCHEMA', '/SourceASN must be integer or null']
  ])
  assert.match(dead[1].reason, /^not JSON: /)
  for (const d of dead) {
    assert.equal(d.dataset, 'network_analytics_logs')
    assert.equal(d.stage, 'validation')
    assert.ok(!Number.isNaN(Date.parse(d.time)))
    assert.equal(d.raw, lines[d.line - 1])
  }
  const stats = server.built.stats.dataset('network_analytics_logs')
  assert.equal(stats.accepted, 3)
  assert.equal(stats.rejected, 5)
})

test('unknown fields are kept and counted as schema drift', async (t) => {
  const server = await startServer(t)
  const line = '{"RayID":"1","BrandNewField":42,"AnotherOne":"x"}'
  const r = await post(server, '/logpush/http_requests', `${line}\n${line}\n`)
  assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 2, rejected: 0 })
  assert.equal(await readStore(server, 'events', 'http_requests'), `${line}\n${line}\n`)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.deepEqual(health.datasets.http_requests.unknownFields, { BrandNewField: 2, AnotherOne: 2 })
  // The counts name the command that compares the schema with Cloudflare's field list.
  assert.match(health.datasets.http_requests.unknownFieldsCheck, /^npx logpush-receiver schemas check --dataset http_requests --zone <zone_id> \(or --account <account_id>\)/)
})

const validationUploads = ['test', 'test\n', '{"content":"tests"}', '{"content":"tests"}\n', '{"content":"test","filename":"test.txt"}']
for (const body of validationUploads) {
  for (const gzip of [true, false]) {
    test(`validation upload ${JSON.stringify(body)} (${gzip ? 'gzip' : 'plain'}) answers 200 and stores nothing`, async (t) => {
      const server = await startServer(t)
      const r = await post(server, '/logpush/http_requests', body, { gzip, headers: gzip ? {} : { 'content-type': 'application/json' } })
      assert.equal(r.status, 200)
      assert.equal(r.json.validation, true)
      assert.equal(await readStore(server, 'events', 'http_requests'), '')
      assert.equal(server.built.stats.dataset('http_requests').pings, 1)
    })
  }
}

test('an ownership-challenge token is not ingested and can be read by the operator only', async (t) => {
  const server = await startServer(t)
  const jwt = 'eyJhbGciOiJIUzI1NiJ9.eyJkZXN0aW5hdGlvbl9jb25mIjoiaHR0cHM6Ly9leGFtcGxlIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ'
  const r = await post(server, '/logpush/network_analytics_logs', jwt)
  assert.equal(r.status, 200)
  assert.equal(r.json.challenge, true)
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), '')
  const denied = await fetch(`${server.url}/logpush/challenges`)
  assert.equal(denied.status, 401)
  const listed = await (await fetch(`${server.url}/logpush/challenges`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json() as any
  assert.equal(listed.challenges.length, 1)
  assert.equal(listed.challenges[0].token, jwt)
  assert.equal(listed.challenges[0].dataset, 'network_analytics_logs')
})

test('bodies are accepted with any or no Content-Type, gzip by header or by magic bytes, or plain', async (t) => {
  const server = await startServer(t)
  const cases: Array<[string, boolean, Record<string, string>]> = [
    ['gzip, no content-type', true, { 'content-encoding': 'gzip' }],
    ['gzip, text/plain', true, { 'content-encoding': 'gzip', 'content-type': 'text/plain; charset=utf-8' }],
    ['x-gzip, application/json', true, { 'content-encoding': 'x-gzip', 'content-type': 'application/json' }],
    ['gzip bytes without the header', true, { 'content-type': 'application/octet-stream' }],
    ['header says gzip, a proxy already inflated it', false, { 'content-encoding': 'gzip' }],
    ['identity', false, { 'content-encoding': 'identity', 'content-type': 'application/x-ndjson' }]
  ]
  let expected = ''
  for (const [i, [name, gzip, headers]] of cases.entries()) {
    const text = batchText('http_requests', 5, 'unixnano', i * 5)
    expected += text
    const res = await fetch(`${server.url}/logpush/http_requests`, { method: 'POST', body: gzip ? gzipSync(text) : Buffer.from(text), headers: { ...headers, authorization: `Bearer ${TEST_TOKEN}` } })
    assert.equal(res.status, 200, name)
    assert.deepEqual(await res.json(), { dataset: 'http_requests', accepted: 5, rejected: 0 }, name)
  }
  assert.equal(await readStore(server, 'events', 'http_requests'), expected)
})

test('a byte-identical re-send is answered 200 and stored once', async (t) => {
  const server = await startServer(t)
  const body = batchText('http_requests', 50) + 'broken line\n'
  const first = await post(server, '/logpush/http_requests', body)
  assert.deepEqual(first.json, { dataset: 'http_requests', accepted: 50, rejected: 1 })
  for (let i = 0; i < 2; i++) {
    // gzipSync is deterministic: the same upload, byte for byte, as Logpush re-sends it.
    const again = await post(server, '/logpush/http_requests', body)
    assert.equal(again.status, 200)
    assert.deepEqual(again.json, { dataset: 'http_requests', accepted: 50, rejected: 1, duplicate: true })
  }
  assert.equal(await readStore(server, 'events', 'http_requests'), batchText('http_requests', 50))
  assert.equal((await readDeadLetters(server, 'http_requests')).length, 1)
  assert.equal(server.built.stats.dataset('http_requests').batches, 1)
})

test('tokens: several at once, Bearer or Splunk scheme or a configured header; missing or wrong is 401', async (t) => {
  const server = await startServer(t, { LOGPUSH_TOKENS: 'old-token-aaaaaaaa, new-token-bbbbbbbb', AUTH_HEADER: 'X-Logpush-Secret' })
  let n = 0
  const body = (): string => batchText('http_requests', 1, 'unixnano', n++)
  const ok: Array<Record<string, string>> = [
    { authorization: 'Bearer old-token-aaaaaaaa' },
    { authorization: 'Bearer new-token-bbbbbbbb' },
    { authorization: 'bearer   new-token-bbbbbbbb' },
    { authorization: 'Splunk old-token-aaaaaaaa' },
    { 'x-logpush-secret': 'new-token-bbbbbbbb' }
  ]
  for (const headers of ok) {
    const r = await post(server, '/logpush/http_requests', body(), { token: null, headers })
    assert.equal(r.status, 200, JSON.stringify(headers))
  }
  const missing = await post(server, '/logpush/http_requests', body(), { token: null })
  assert.equal(missing.status, 401)
  assert.equal(missing.json.code, 'LPR_ERR_INTAKE_TOKEN_MISSING')
  for (const headers of [{ authorization: "Bearer old-token-aaaaaaa" } as Record<string, string>, { authorization: 'Basic old-token-aaaaaaaa' }, { 'x-logpush-secret': 'nope' }]) {
    const r = await post(server, '/logpush/http_requests', body(), { token: null, headers })
    assert.equal(r.status, 401, JSON.stringify(headers))
  }
  assert.equal((await readStore(server, 'events', 'http_requests')).split('\n').length - 1, ok.length)
})

test('error answers: status, stable code and a message that says what to do', async (t) => {
  const server = await startServer(t, { MAX_INFLATED_BYTES: String(2 * 1024 * 1024), MAX_LINE_BYTES: '65536', MAX_BODY_BYTES: String(1024 * 1024) })
  const good = batchText('http_requests', 200)
  const gz = gzipSync(good)
  const cases: Array<{ name: string, path?: string, body: Buffer, headers?: Record<string, string>, status: number, code: string, message?: RegExp }> = [
    { name: 'unknown dataset', path: '/logpush/dns_lgos', body: gz, headers: { 'content-encoding': 'gzip' }, status: 404, code: 'LPR_ERR_INTAKE_UNKNOWN_DATASET', message: /Known datasets: access_requests, .*http_requests, .*network_analytics_logs/ },
    { name: 'corrupt gzip', body: Buffer.concat([gz.subarray(0, 20), Buffer.alloc(50, 0x55), gz.subarray(70)]), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'LPR_ERR_INTAKE_BAD_GZIP' },
    { name: 'truncated gzip', body: gz.subarray(0, Math.floor(gz.length / 2)), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'LPR_ERR_INTAKE_BAD_GZIP' },
    { name: 'CSV output_type', body: gzipSync('ClientIP,RayID,EdgeStartTimestamp\n"1.2.3.4","abc",1\n"1.2.3.5","abd",2\n'), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'LPR_ERR_PIPELINE_NOT_NDJSON', message: /output_type "ndjson"/ },
    { name: 'batch_prefix framing', body: gzipSync('{"events":[\n{"RayID":"a"},\n{"RayID":"b"}\n]}\n'), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'LPR_ERR_PIPELINE_NOT_NDJSON', message: /batch_prefix/ },
    { name: 'one JSON document wrapping the batch', body: gzipSync('{"events":[{"RayID":"a"},{"RayID":"b"}]}\n'), headers: { 'content-encoding': 'gzip' }, status: 400, code: 'LPR_ERR_PIPELINE_NOT_NDJSON', message: /batch_prefix/ },
    { name: 'decompression bomb', body: gzipSync(Buffer.alloc(8 * 1024 * 1024, 0x0a)), headers: { 'content-encoding': 'gzip' }, status: 413, code: 'LPR_ERR_INTAKE_INFLATED_TOO_LARGE' },
    { name: 'line too long', body: gzipSync(`{"RayID":"${'x'.repeat(100_000)}"}\n`), headers: { 'content-encoding': 'gzip' }, status: 413, code: 'LPR_ERR_PIPELINE_LINE_TOO_LONG' },
    { name: 'body too large on the wire', body: Buffer.alloc(1024 * 1024 + 10, 0x0a), headers: {}, status: 413, code: 'LPR_ERR_INTAKE_BODY_TOO_LARGE' },
    { name: 'unsupported encoding', body: gz, headers: { 'content-encoding': 'zstd' }, status: 415, code: 'LPR_ERR_INTAKE_UNSUPPORTED_ENCODING' }
  ]
  for (const c of cases) {
    const res = await fetch(server.url + (c.path ?? '/logpush/http_requests'), { method: 'POST', body: c.body, headers: { ...c.headers, authorization: `Bearer ${TEST_TOKEN}` } })
    const json = await res.json() as any
    assert.equal(res.status, c.status, `${c.name}: ${JSON.stringify(json)}`)
    assert.equal(json.code, c.code, c.name)
    assert.equal(json.statusCode, c.status, c.name)
    assert.equal(typeof json.message, 'string', c.name)
    if (c.message) assert.match(json.message, c.message, c.name)
  }
  // Nothing of any failed batch was stored, not even its valid first lines.
  assert.equal(await readStore(server, 'events', 'http_requests'), '')
  assert.equal(await readStore(server, 'dead-letter', 'http_requests'), '')
  // And the service still works.
  const r = await post(server, '/logpush/http_requests', good)
  assert.equal(r.status, 200)
  assert.equal(await readStore(server, 'events', 'http_requests'), good)
})

test('health reports version, uptime and per-dataset counters', async (t) => {
  const server = await startServer(t)
  await post(server, '/logpush/http_requests', batchText('http_requests', 4) + 'bad\n')
  await post(server, '/logpush/http_requests', 'test')
  const res = await fetch(`${server.url}/health`)
  assert.equal(res.status, 200)
  const h = await res.json() as any
  assert.equal(h.status, 'ok')
  assert.match(h.version, /^\d+\.\d+\.\d+/)
  assert.equal(typeof h.uptimeSeconds, 'number')
  assert.deepEqual({ ...h.datasets.http_requests, rejectedByCode: undefined, unknownFields: undefined }, {
    batches: 1, accepted: 4, rejected: 1, pings: 1, challenges: 0, duplicates: 0, rejectedByCode: undefined, unknownFields: undefined, typeMismatches: {}
  })
  assert.deepEqual(h.datasets.http_requests.rejectedByCode, { LPR_ERR_PIPELINE_LINE_NOT_JSON: 1 })
})
