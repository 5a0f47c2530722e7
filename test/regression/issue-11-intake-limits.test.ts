// Issue 11, items 5, 7 and 8 (intake): what a sender controls must be bounded and never logged
// where it can hold a secret, and a refusal must cost little. Each test names its bug.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { gzipSync } from 'node:zlib'
import { buildApp, groupDeliveryDeadLetters } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/index.js'
import { TEST_TOKEN, post, startServer } from '../helpers/server.js'

/** The real app with its log lines captured (parsed), on a port of its own. */
async function startLogged(t: TestContext, env: Record<string, string> = {}): Promise<{ url: string, port: number, logs: any[] }> {
  const logs: any[] = []
  const sink = new Writable({ write (chunk: Buffer, _enc, done) { for (const l of chunk.toString().split('\n')) if (l) logs.push(JSON.parse(l)); done() } })
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-test-'))
  const config = loadConfig({ LOGPUSH_TOKENS: TEST_TOKEN, LOG_LEVEL: 'info', ADMIN_ON_INTAKE: 'true', ...env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1' })
  const built = await buildApp(config, createLogger('info', sink))
  t.after(() => built.close())
  const port = (built.app.server.address() as { port: number }).port
  return { url: `http://127.0.0.1:${port}`, port, logs }
}

test('a token in the query string of an unknown route is neither logged nor echoed', async (t) => {
  // fastify's own 404 wrote "Route POST:/<path>?header_Authorization=Bearer <token> not found" to
  // the log (README promises tokens are never logged) and sent it back in the answer.
  const server = await startLogged(t)
  const secret = 'sekrit-token-4f9a1c'
  const res = await fetch(`${server.url}/logpsuh/http_requests?header_Authorization=Bearer%20${secret}`, { method: 'POST', body: 'x' })
  assert.equal(res.status, 404)
  assert.ok(!(await res.text()).includes(secret), 'the answer does not echo the token')
  assert.ok(server.logs.length > 0)
  assert.ok(!JSON.stringify(server.logs).includes(secret), 'no log line holds the token')
})

test('an expected 503 refusal is logged as one line without a stack', async (t) => {
  // Every 503 (spool full, disk nearly full) logged a full stack trace, 2 KB each: 18 MB of log
  // while the disk was already full.
  const server = await startLogged(t, { SPOOL_MIN_FREE_BYTES: String(2 ** 52) })
  const r = await post({ url: server.url, token: TEST_TOKEN }, '/logpush/http_requests', '{"RayID":"a"}\n')
  assert.equal(r.status, 503)
  const refusals = server.logs.filter((l) => l.code === 'LPR_ERR_INTAKE_NOT_READY' || l.err?.code === 'LPR_ERR_INTAKE_NOT_READY')
  assert.equal(refusals.length, 1)
  assert.equal(refusals[0].err, undefined, 'no error object with its stack')
  assert.ok(JSON.stringify(refusals[0]).length < 600)
})

test('a sender\'s X-Request-Id is kept only when short and plain', async (t) => {
  // The header was taken verbatim as the request id, which is stored with the batch, each dead
  // letter and every log line of the request: up to the header size limit, once per line.
  const server = await startLogged(t)
  const long = 'r'.repeat(5000)
  await post({ url: server.url, token: TEST_TOKEN }, '/logpush/http_requests', '{"RayID":"a"}\n', { headers: { 'x-request-id': long } })
  await post({ url: server.url, token: TEST_TOKEN }, '/logpush/http_requests', '{"RayID":"b"}\n', { headers: { 'x-request-id': 'lb-1234.abc' } })
  const ids = new Set(server.logs.map((l) => l.reqId).filter(Boolean))
  assert.ok(![...ids].some((id) => String(id).length > 128), 'no long id')
  assert.ok(ids.has('lb-1234.abc'), 'a plain id is kept')
})

test('unfinished lines of all requests together are held within LINE_BUFFER_BUDGET_BYTES', async (t) => {
  // A 1 MB line with no newline, held open by 100 connections, made the parse workers run out of
  // memory: each kept its unfinished lines as text without any bound across requests. Now the
  // main thread holds them as bytes, and past the budget a request is refused with a 503.
  const server = await startServer(t, { PARSE_WORKERS: '1', MAX_LINE_BYTES: '65536', LINE_BUFFER_BUDGET_BYTES: '100000' })
  const port = Number(new URL(server.url).port)
  const unfinished = Buffer.from(`{"RayID":"${'x'.repeat(40_000)}`) // 40 KB, no newline: held
  const holders = [0, 1, 2].map(() => new Promise<string>((resolve) => {
    let answer = ''
    const s = connect(port, '127.0.0.1', () => {
      s.write(`POST /logpush/http_requests HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Length: ${unfinished.length + 1000}\r\n\r\n`)
      s.write(unfinished)
    })
    s.on('data', (d: Buffer) => { answer += d.toString() })
    s.on('error', () => {})
    s.on('close', () => resolve(answer))
    setTimeout(() => s.destroy(), 3000)
  }))
  const answers = await Promise.all(holders)
  const busy = answers.filter((a) => a.startsWith('HTTP/1.1 503') && a.includes('LPR_ERR_PIPELINE_LINES_BUSY'))
  assert.equal(busy.length, 1, `the third holder is refused: ${answers.map((a) => a.slice(0, 12)).join(' | ')}`)
  assert.match(busy[0]!, /retry-after: 30/i)
  // Once the holders are gone their bytes are given back: a normal batch goes through.
  const r = await post(server, '/logpush/http_requests', '{"RayID":"after"}\n')
  assert.equal(r.status, 200)
})

test('dead letters of a delivery are grouped in one pass and counted per code', () => {
  // Each rejected line copied the whole list of its dataset's rejections so far (40k rejections:
  // 11 s of blocked main thread), and the lot was counted under the first line's code.
  const rejected = Array.from({ length: 50_000 }, (_, i) => ({
    dataset: i % 2 === 0 ? 'http_requests' : 'dns_logs',
    sink: 'elasticsearch',
    code: i % 3 === 0 ? 'LPR_ERR_SINK_ELASTICSEARCH_MAPPING' : 'LPR_ERR_SINK_SPLUNK_EVENT',
    reason: 'r',
    raw: `{"n":${i}}`
  }))
  const groups = groupDeliveryDeadLetters(rejected, '2026-01-01T00:00:00.000Z')
  assert.deepEqual([...groups.keys()].sort(), ['dns_logs', 'http_requests'])
  const http = groups.get('http_requests')!
  assert.equal(http.text.split('\n').filter(Boolean).length, 25_000)
  assert.deepEqual(Object.fromEntries(http.byCode), { LPR_ERR_SINK_ELASTICSEARCH_MAPPING: 8334, LPR_ERR_SINK_SPLUNK_EVENT: 16_666 })
  assert.equal(JSON.parse(http.text.split('\n')[1]!).raw, '{"n":2}', 'in order')
})

test('a gzip body is refused with a bounded echo of an unsupported Content-Encoding', async (t) => {
  // The Content-Encoding value was echoed whole in the answer and the log line.
  const server = await startServer(t)
  const res = await fetch(`${server.url}/logpush/http_requests`, { method: 'POST', body: gzipSync('{}'), headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-encoding': 'z'.repeat(8000) } })
  assert.equal(res.status, 415)
  assert.ok((await res.text()).length < 1500)
})
