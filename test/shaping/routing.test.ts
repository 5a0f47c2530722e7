// Routing by field to tenants: each tenant's lines reach only its own Elasticsearch namespace,
// Splunk index and file folder; values not in the table go to the default, values that would
// make an invalid name too, counted; names are checked against Elasticsearch's and Splunk's rules
// at start. The isolation test runs against the REAL Elasticsearch (CI=true starts it).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { writeFileSync } from 'node:fs'
import { loadConfig } from '../../src/config/index.js'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildRouters, type RoutingRule, type TenantConfig } from '../../src/shaping/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { documentId } from '../../src/sinks/elasticsearch/document.js'
import { post, startServer } from '../helpers/server.js'
import { eventLines, esCount } from '../helpers/stored.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { DEFAULT_HEC_TOKEN, HecDouble } from '../helpers/hec-double.js'

const datasets = loadDatasets(schemasDir)

const line = (i: number, zone: string): string => `{"RayID":"r${i}","ZoneName":"${zone}","EdgeStartTimestamp":${1700000000000000000 + i},"EdgeResponseStatus":200}`

async function configFile(content: unknown): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-routing-')), 'receiver.json')
  await writeFile(path, JSON.stringify(content))
  return path
}

function providerConfig(suffix: string): { tenants: Record<string, TenantConfig>, routing: RoutingRule[] } {
  return {
    tenants: {
      [`acme${suffix}`]: {},
      [`bravo${suffix}`]: { splunk: { index: `bravo-idx${suffix}` }, file: { folder: `bravo-files${suffix}` } },
      [`charlie${suffix}`]: {},
      [`shared${suffix}`]: {}
    },
    routing: [{
      name: 'by-zone',
      datasets: ['http_requests'],
      field: 'ZoneName',
      table: { 'acme.example': `acme${suffix}`, 'bravo.example': `bravo${suffix}`, 'charlie.example': `charlie${suffix}` },
      default: `shared${suffix}`
    }]
  }
}

/** 30 lines over three customers' zones and one unknown zone, interleaved. */
const ZONES = ['acme.example', 'bravo.example', 'charlie.example', 'unknown.example']
const mixed = (): string[] => Array.from({ length: 40 }, (_, i) => line(i, ZONES[i % 4]!))

test('names are checked against Elasticsearch and Splunk rules at start', () => {
  const fails = (tenants: Record<string, TenantConfig>, rules: RoutingRule[], why: RegExp): void => {
    assert.throws(() => buildRouters(rules, tenants, ['file', 'elasticsearch', 'splunk'], datasets), (e: Error & { code?: string }) => e.code === 'LPR_ERR_CONFIG_INVALID' && why.test(e.message), String(why))
  }
  const rule: RoutingRule = { name: 'z', datasets: ['http_requests'], field: 'ZoneName', table: { 'a.example': 'acme' } }
  fails({ 'Acme-Corp': {} }, [], /"Acme-Corp" is no tenant name/)
  fails({ acme: { elasticsearch: { namespace: 'has-dash' } } }, [], /"has-dash" is no Elasticsearch namespace/)
  fails({ acme: { splunk: { index: '_internal' } } }, [], /"_internal" is no Splunk index name/)
  fails({ acme: { splunk: { index: 'my_kvstore' } } }, [], /no Splunk index name/)
  fails({}, [rule], /table\["a.example"\] names tenant "acme", which tenants does not list/)
  fails({ acme: {} }, [{ ...rule, field: 'NoSuchField' }], /routes by field "NoSuchField", which dataset http_requests does not have/)
  fails({ acme: {} }, [{ ...rule, default: 'nobody' }], /default names tenant "nobody"/)
  fails({ acme: {} }, [{ ...rule, sinks: ['kafka'] }], /names destination "kafka", which is not in SINKS/)
})

test('each tenant\'s lines go to its own file folder; unknown values to the default, counted', async (t) => {
  const cfg = providerConfig('')
  const server = await startServer(t, { SINKS: 'file', CONFIG_FILE: await configFile(cfg) })
  const lines = mixed()
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(30_000))
  const byZone = (zone: string): string[] => lines.filter((l) => l.includes(`"ZoneName":"${zone}"`))
  assert.deepEqual(await eventLines(server.dataDir, 'acme/http_requests'), byZone('acme.example'))
  assert.deepEqual(await eventLines(server.dataDir, 'bravo-files/http_requests'), byZone('bravo.example'))
  assert.deepEqual(await eventLines(server.dataDir, 'charlie/http_requests'), byZone('charlie.example'))
  assert.deepEqual(await eventLines(server.dataDir, 'shared/http_requests'), byZone('unknown.example'))
  assert.deepEqual(await eventLines(server.dataDir, 'http_requests'), [], 'nothing in the untenanted folder')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="file",rule="by-zone",outcome="default"\} 10/)
  assert.match(metrics, /lpr_lines_delivered_total\{sink="file",dataset="http_requests"\} 40/)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.match(health.sinks.file.shaping, /^routing: http_requests \[by-zone: by ZoneName to 3 tenants, else shared\]$/)
})

test('byValue: a value that makes a valid name is the tenant; one that does not goes to the default, counted', async (t) => {
  const server = await startServer(t, {
    SINKS: 'file',
    CONFIG_FILE: await configFile({ tenants: { fallback: {} }, routing: [{ name: 'by-host', datasets: ['http_requests'], field: 'ZoneName', byValue: true, default: 'fallback' }] })
  })
  const lines = [line(1, 'acme'), line(2, 'Not A Name!'), line(3, 'bravo_2'), line(4, '../etc')] // not-a-path: a hostile routing value
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(30_000))
  assert.deepEqual(await eventLines(server.dataDir, 'acme/http_requests'), [lines[0]])
  assert.deepEqual(await eventLines(server.dataDir, 'bravo_2/http_requests'), [lines[2]])
  assert.deepEqual(await eventLines(server.dataDir, 'fallback/http_requests'), [lines[1], lines[3]], 'a value that would be a path stays a value')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="file",rule="by-host",outcome="invalid"\} 2/)
})

test('Splunk: each tenant\'s events carry its own index', async (t) => {
  const hec = await HecDouble.start({ indexes: ['main', 'acme', 'bravo-idx', 'charlie', 'shared'] })
  t.after(() => hec.close())
  const server = await startServer(t, { SINKS: 'splunk', SPLUNK_HEC_URL: hec.url, SPLUNK_HEC_TOKEN: DEFAULT_HEC_TOKEN, CONFIG_FILE: await configFile(providerConfig('')) })
  const lines = mixed()
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(30_000))
  const events = hec.events
  assert.equal(events.length, 40)
  for (const e of events) {
    const zone = (e.event as { ZoneName: string }).ZoneName
    const expected = { 'acme.example': 'acme', 'bravo.example': 'bravo-idx', 'charlie.example': 'charlie', 'unknown.example': 'shared' }[zone]
    assert.equal(e.index, expected, zone)
  }
})

test('tenant isolation against the real Elasticsearch: one tenant\'s lines never reach another tenant\'s data stream', { timeout: 180_000 }, async (t: TestContext) => {
  const url = requireElasticsearch(t)
  if (!url) return
  const suffix = `_${randomBytes(3).toString('hex')}`
  const cfg = providerConfig(suffix)
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, CONFIG_FILE: await configFile(cfg) })
  const lines = mixed()
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(120_000), 'the spool drained')
  const zoneOf = { [`acme${suffix}`]: 'acme.example', [`bravo${suffix}`]: 'bravo.example', [`charlie${suffix}`]: 'charlie.example', [`shared${suffix}`]: 'unknown.example' }
  for (const [tenant, zone] of Object.entries(zoneOf)) {
    const stream = `logs-cloudflare.http_requests-${tenant}`
    assert.equal(await esCount(url, stream), 10, stream)
    const res = await fetch(`${url}/${stream}/_search?size=100`)
    const hits = ((await res.json()) as any).hits.hits as Array<{ _id: string, _source: { ZoneName: string } }>
    for (const h of hits) {
      assert.equal(h._source.ZoneName, zone, `${stream} holds only ${zone}`)
      assert.ok(lines.some((l) => documentId('http_requests', l) === h._id), 'the _id is that of a stored line')
    }
  }
  // Sending the batch again creates nothing new anywhere (the _id is the stored line's).
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n', { headers: { 'x-request-id': 'again' } })).status, 200)
  assert.ok(await server.built.drained(120_000))
  for (const tenant of Object.keys(zoneOf)) assert.equal(await esCount(url, `logs-cloudflare.http_requests-${tenant}`), 10)
})

test('only the last tenant\'s delivery moves the checkpoint; refusals of the earlier ones are still dead-lettered', async () => {
  // Routing delivers a batch once per tenant: if an earlier tenant's delivery could checkpoint
  // line N, a failure in a later one would skip that later tenant's lines before N for good.
  const { RoutingSink } = await import('../../src/shaping/index.js')
  const routers = buildRouters(providerConfig('').routing, providerConfig('').tenants, ['file'], datasets).get('file')!
  const lines = mixed().slice(0, 8)
  const calls: Array<{ tenant: string | undefined, lines: number, refused: number }> = []
  let current: string | undefined
  const inner = {
    name: 'file',
    async init() {},
    async close() {},
    async deliver(batch: any, progress: (lines: number, refused: any[]) => Promise<void>) {
      current = batch.route?.folder
      let pos = batch.from
      let delivered = 0
      for await (const l of batch.lines()) { pos++; if (l.length > 0) delivered++ }
      // Each tenant's delivery reports progress to its end and refuses its first line.
      await progress(pos, [{ dataset: 'http_requests', sink: 'file', code: 'X', reason: current ?? '', raw: '' }])
      return { delivered, duplicates: 0, rejected: [] }
    }
  }
  const sink = new RoutingSink(inner as any, routers, () => {})
  const batch = { seq: 1, dataset: 'http_requests', from: 2, count: 10, async * lines() { yield * lines }, async * payloads() {}, async * blocks() {} }
  const result = await sink.deliver(batch as any, async (n, refused) => { calls.push({ tenant: current, lines: n, refused: refused.length }) }, new AbortController().signal)
  assert.equal(result.delivered, 8)
  assert.deepEqual(calls, [
    { tenant: 'acme', lines: 2, refused: 1 },
    { tenant: 'bravo-files', lines: 2, refused: 1 },
    { tenant: 'charlie', lines: 2, refused: 1 },
    { tenant: 'shared', lines: 10, refused: 1 }
  ])
})

test('the file destination cuts a tenant\'s events file back to its checkpoint after a crash, as it does a dataset\'s', async () => {
  // Without a look into tenant folders at start, a batch written to events/<tenant>/<dataset>/
  // but not checkpointed before a crash would stay there and be written again after it.
  const { FileSink } = await import('../../src/sinks/file/sink.js')
  const { pino } = await import('pino')
  const { readFile: read } = await import('node:fs/promises')
  const dir = await mkdtemp(join(tmpdir(), 'lpr-routing-crash-'))
  const opts = { dir, rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: false, log: pino({ level: 'silent' }) }
  const batchOf = (lines: string[]): any => ({ seq: 1, dataset: 'http_requests', from: 0, count: lines.length, route: { namespace: 'acme', index: 'acme', folder: 'acme' }, async * lines() { yield * lines }, async * payloads() {}, async * blocks() { yield { lines: lines.length, data: Buffer.from(lines.join('\n') + '\n'), verbatim: false } } })
  const first = new FileSink(opts)
  await first.init(undefined)
  const state = (await first.deliver(batchOf([line(1, 'acme.example')]))).state
  // The next batch reaches the file; the crash comes before its checkpoint.
  await first.deliver(batchOf([line(2, 'acme.example')]))
  await first.close()
  const second = new FileSink(opts)
  await second.init(state)
  await second.close()
  const [path] = Object.values((state as { files: Record<string, { path: string }> }).files).map((f) => f.path)
  assert.match(path!, /\/acme\/http_requests\/events-/)
  assert.equal(await read(path!, 'utf8'), line(1, 'acme.example') + '\n', 'cut back to the checkpointed batch')
})

test('a token that names a tenant sends all its batches to that tenant, even the same bytes another tenant sent', async (t) => {
  const acmeToken = 'acme-token-0123456789abcdef'
  const bravoToken = 'bravo-token-0123456789abcdef'
  process.env.LPR_TEST_ACME_TOKEN = acmeToken
  process.env.LPR_TEST_BRAVO_TOKEN = bravoToken
  t.after(() => { delete process.env.LPR_TEST_ACME_TOKEN; delete process.env.LPR_TEST_BRAVO_TOKEN })
  const cfg = providerConfig('')
  const server = await startServer(t, {
    SINKS: 'file',
    LPR_TEST_ACME_TOKEN: acmeToken,
    LPR_TEST_BRAVO_TOKEN: bravoToken,
    CONFIG_FILE: await configFile({ ...cfg, tokens: [{ tokenEnv: 'LPR_TEST_ACME_TOKEN', tenant: 'acme' }, { tokenEnv: 'LPR_TEST_BRAVO_TOKEN', tenant: 'bravo' }] })
  })
  // Lines whose ZoneName says charlie: a tenant's token wins over the lines' fields.
  const lines = Array.from({ length: 5 }, (_, i) => line(i, 'charlie.example'))
  const body = lines.join('\n') + '\n'
  for (const token of [acmeToken, bravoToken, server.token]) assert.equal((await post({ url: server.url, token }, '/logpush/http_requests', body)).status, 200)
  assert.ok(await server.built.drained(30_000))
  assert.deepEqual(await eventLines(server.dataDir, 'acme/http_requests'), lines)
  assert.deepEqual(await eventLines(server.dataDir, 'bravo-files/http_requests'), lines, 'the same bytes from another tenant are its own batch, not a re-send')
  assert.deepEqual(await eventLines(server.dataDir, 'charlie/http_requests'), lines, 'the token without a tenant: routed by the field')
  // A token's tenant must be listed, and its variable set.
  assert.throws(() => loadConfigWith({ tokens: [{ tokenEnv: 'LPR_TEST_ACME_TOKEN', tenant: 'nobody' }], tenants: {} }), /names tenant "nobody"/)
  assert.throws(() => loadConfigWith({ tokens: [{ tokenEnv: 'LPR_UNSET_TOKEN_VAR', tenant: 'acme' }], tenants: { acme: {} } }), /LPR_UNSET_TOKEN_VAR is not set/)
})

function loadConfigWith(content: unknown): unknown {
  const path = join(tmpdir(), `lpr-routing-tokens-${process.pid}-${Math.random().toString(36).slice(2)}.json`)
  writeFileSync(path, JSON.stringify(content))
  return loadConfig({ LOGPUSH_TOKENS: 'test-token-0123456789abcdef', CONFIG_FILE: path, LPR_TEST_ACME_TOKEN: 'acme-token-0123456789abcdef' })
}
