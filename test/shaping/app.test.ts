// Shaping through the whole service: the spool keeps every line exact, a destination without
// rules gets the stored bytes, a shaped one gets its lines shaped with Elasticsearch's _id still
// the hash of the stored line, the kept-back lines are counted (never as rejected), /health shows
// each destination's shaping in one line, and a rule that does not fit stops the start.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { createHmac } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/index.js'
import { documentId } from '../../src/sinks/elasticsearch/document.js'
import { EsDouble } from '../helpers/es-double.js'
import { post, readStore, startServer, TEST_TOKEN } from '../helpers/server.js'
import { BIG_UNIXNANO } from '../helpers/fixtures.js'

const KEY = 'a-key-of-at-least-16-bytes-for-tests'

function line(i: number): string {
  return `{"RayID":"${(0x7c00 + i).toString(16)}","EdgeStartTimestamp":${BigInt(BIG_UNIXNANO) + BigInt(i)},"ClientIP":"198.51.100.${i}","ClientRequestHost":"example.com","ClientRequestURI":"\\/p\\/${i}?t=caf\\u00e9","EdgeResponseStatus":${i % 3 === 0 ? 503 : 200},"Cookies":{"session":"s${i}"}}`
}

async function configFile(rules: unknown): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-shaping-')), 'receiver.json')
  await writeFile(path, JSON.stringify({ shaping: rules }))
  return path
}

async function withEs(t: TestContext): Promise<EsDouble> {
  const es = await EsDouble.start()
  t.after(() => es.close())
  return es
}

const SPLUNK_LIKE = [{
  name: 'errors-only',
  sinks: ['elasticsearch'],
  datasets: ['http_requests'],
  // As a Logpush job holds it: the escaped JSON string.
  filter: JSON.stringify({ where: { and: [{ key: 'EdgeResponseStatus', operator: 'geq', value: 500 }, { key: 'ClientRequestHost', operator: 'eq', value: 'example.com' }] } }),
  drop: ['Cookies'],
  transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'LPR_TEST_SHAPING_KEY' }]
}]

test('a shaped destination gets its lines shaped, an unshaped one the stored bytes; _id stays the stored line\'s', async (t) => {
  process.env.LPR_TEST_SHAPING_KEY = KEY
  t.after(() => { delete process.env.LPR_TEST_SHAPING_KEY })
  const es = await withEs(t)
  const server = await startServer(t, { SINKS: 'file,elasticsearch', ELASTICSEARCH_URL: es.url, CONFIG_FILE: await configFile(SPLUNK_LIKE) })
  const lines = Array.from({ length: 30 }, (_, i) => line(i))
  const body = lines.join('\n') + '\n'
  assert.equal((await post(server, '/logpush/http_requests', body)).status, 200)
  // The file destination has no rule: byte for byte what was sent.
  assert.equal(await readStore(server, 'events', 'http_requests'), body)
  const docs = es.bulks.flatMap((b) => b.docs)
  const kept = lines.filter((_, i) => i % 3 === 0)
  assert.equal(docs.length, kept.length, 'only the 5xx lines reach Elasticsearch')
  for (const [i, doc] of docs.entries()) {
    const original = kept[i]!
    assert.equal(doc.id, documentId('http_requests', original), 'the _id is the hash of the line as stored')
    const source = JSON.parse(doc.source) as Record<string, unknown>
    assert.equal(source.Cookies, undefined)
    assert.equal(source.ClientIP, createHmac('sha256', KEY).update((JSON.parse(original) as { ClientIP: string }).ClientIP).digest('hex'))
    assert.ok(doc.source.includes(`"EdgeStartTimestamp":${/"EdgeStartTimestamp":(\d{19})/.exec(original)![1]!}`), 'the 19-digit time goes out as sent')
    assert.equal((source as any).source?.ip, undefined, 'a hashed address never goes to ECS source.ip')
  }
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="elasticsearch",rule="errors-only",outcome="filtered"\} 20/)
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="elasticsearch",rule="errors-only",outcome="passed"\} 10/)
  assert.match(metrics, /lpr_lines_delivered_total\{sink="elasticsearch",dataset="http_requests"\} 10/)
  assert.doesNotMatch(metrics, /lpr_lines_dead_lettered_total\{[^}]*\} [1-9]/, 'kept-back lines are not refused')
  assert.doesNotMatch(metrics, /lpr_lines_rejected_total\{[^}]*\} [1-9]/)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.equal(typeof health.sinks.elasticsearch.shaping, 'string')
  assert.match(health.sinks.elasticsearch.shaping, /^http_requests \[errors-only: filter on EdgeResponseStatus, ClientRequestHost; drop 1 fields; hmac-sha256 ClientIP\]$/)
  assert.equal(health.sinks.file.shaping, undefined, 'a destination without rules shows none')
  const page = await (await fetch(`${server.url}/`, { headers: { authorization: `Bearer ${server.token}` } })).text()
  assert.match(page, /Shaping: <code>http_requests \[errors-only: [^<]*\]<\/code><br><span class="muted">since start: 20 kept back by filters, 0 by sampling/)
  assert.equal(page.match(/Shaping:/g)?.length, 1, 'only the shaped destination shows a shaping row')
  assert.equal(health.datasets.http_requests.accepted, 30)
  assert.equal(health.datasets.http_requests.rejected, 0)
})

test('a shaped file destination writes only the lines that pass, shaped', async (t) => {
  const server = await startServer(t, {
    SINKS: 'file',
    CONFIG_FILE: await configFile([{ name: 'tenth', datasets: ['http_requests'], sample: 0.5, keep: ['RayID', 'EdgeResponseStatus'], transforms: [{ field: 'ClientIP', type: 'truncate-ip' }] }])
  })
  const lines = Array.from({ length: 200 }, (_, i) => line(i))
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  const stored = (await readStore(server, 'events', 'http_requests')).split('\n').filter(Boolean)
  assert.ok(stored.length > 60 && stored.length < 140, `about half kept (${stored.length} of 200)`)
  for (const s of stored) assert.match(s, /^\{"RayID":"[0-9a-f]+","EdgeStartTimestamp":\d{19},"EdgeResponseStatus":\d+\}$/)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, new RegExp(`lpr_shaped_lines_total\\{dataset="http_requests",sink="file",rule="tenth",outcome="sampled"\\} ${200 - stored.length}\\n`))
  assert.match(metrics, new RegExp(`lpr_lines_delivered_total\\{sink="file",dataset="http_requests"\\} ${stored.length}\\n`))
})

test('a filter on a field the dataset lacks, or an operator on the wrong type, stops the start naming it', async () => {
  for (const [filter, why] of [
    [{ where: { key: 'ClientRequestHostname', operator: 'eq', value: 'x' } }, /rule "bad" for dataset http_requests: filter\.where: field "ClientRequestHostname" is not a field/],
    [{ where: { and: [{ key: 'EdgeResponseStatus', operator: 'startsWith', value: '5' }] } }, /filter\.where\.and\[0\]: operator "startsWith" does not apply to field "EdgeResponseStatus" of type int/]
  ] as const) {
    const dataDir = await mkdtemp(join(tmpdir(), 'lpr-shaping-bad-'))
    const config = loadConfig({ LOGPUSH_TOKENS: TEST_TOKEN, LOG_LEVEL: 'silent', DATA_DIR: dataDir, SINKS: 'file', CONFIG_FILE: await configFile([{ name: 'bad', datasets: ['http_requests'], filter }]) })
    await assert.rejects(buildApp(config, createLogger('silent')), (e: Error & { code?: string }) => e.code === 'LPR_ERR_CONFIG_INVALID' && why.test(e.message))
  }
  // The shape of the rules is checked when the file is read.
  await assert.rejects(async () => loadConfig({ LOGPUSH_TOKENS: TEST_TOKEN, CONFIG_FILE: await configFile([{ name: 'x', sample: 0 }]) }), /sample must be > 0/)
})
