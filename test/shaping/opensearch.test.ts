// Shaping and tenants at the OpenSearch destination, as at the Elasticsearch one: shaped
// documents with the _id of the line as stored (re-sends and replays stay idempotent), a tenant's
// lines in the tenant's namespace only, a hashed IP field mapped as a keyword, shaping counted in
// lpr_shaped_lines_total and shown in /health. The isolation test runs against the REAL
// OpenSearch (CI=true or TEST_OPENSEARCH=managed starts it); the others against the _bulk double.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac, randomBytes } from 'node:crypto'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildShapers, schemasForElasticsearch, type RoutingRule, type ShapingRule, type TenantConfig } from '../../src/shaping/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { documentId } from '../../src/sinks/elasticsearch/document.js'
import { openSearchTemplate } from '../../src/sinks/opensearch/index.js'
import { EsDouble } from '../helpers/es-double.js'
import { requireOpenSearch } from '../helpers/extra-servers.js'
import { post, readDeadLetters, startServer } from '../helpers/server.js'

const KEY = 'a-key-of-at-least-16-bytes-for-tests'
const KEY_ENV = 'LPR_TEST_OS_SHAPING_KEY'
const ZONES = ['acme.example', 'bravo.example', 'unknown.example']

const line = (i: number): string =>
  `{"RayID":"r${i}","ZoneName":"${ZONES[i % 3]!}","ClientIP":"198.51.100.${i}","EdgeStartTimestamp":${1700000000000000000 + i},"EdgeResponseStatus":${i % 2 === 0 ? 503 : 200},"Cookies":{"session":"s${i}"}}`
const lines = (): string[] => Array.from({ length: 30 }, (_, i) => line(i))

const SHAPING: ShapingRule[] = [{
  name: 'errors-only',
  sinks: ['opensearch'],
  datasets: ['http_requests'],
  filter: JSON.stringify({ where: { key: 'EdgeResponseStatus', operator: 'geq', value: 500 } }),
  drop: ['Cookies'],
  transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: KEY_ENV }]
} as ShapingRule]

function tenants(suffix: string): { tenants: Record<string, TenantConfig>, routing: RoutingRule[] } {
  return {
    tenants: { [`acme${suffix}`]: {}, [`bravo${suffix}`]: { elasticsearch: { namespace: `bravo_ns${suffix}` } }, [`shared${suffix}`]: {} },
    routing: [{
      name: 'by-zone',
      sinks: ['opensearch'],
      datasets: ['http_requests'],
      field: 'ZoneName',
      table: { 'acme.example': `acme${suffix}`, 'bravo.example': `bravo${suffix}` },
      default: `shared${suffix}`
    }]
  }
}

/** Namespace -> the zone whose lines, and only those, it holds. */
const namespaces = (suffix: string): Record<string, string> => ({ [`acme${suffix}`]: 'acme.example', [`bravo_ns${suffix}`]: 'bravo.example', [`shared${suffix}`]: 'unknown.example' })

async function configFile(content: unknown): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-os-shaping-')), 'receiver.json')
  await writeFile(path, JSON.stringify(content))
  return path
}

function withKey(t: TestContext): void {
  process.env[KEY_ENV] = KEY
  t.after(() => { delete process.env[KEY_ENV] })
}

const hmac = (ip: string): string => createHmac('sha256', KEY).update(ip).digest('hex')

test('a field OpenSearch gets hashed is mapped as a keyword in its template, not an ip; Elasticsearch\'s mapping is left alone', (t) => {
  withKey(t)
  const datasets = loadDatasets(schemasDir)
  const shapers = buildShapers(SHAPING, ['elasticsearch', 'opensearch'], datasets)
  const ecs = loadEcs(join(schemasDir, 'ecs'))
  const mappingOf = (sink: string): any => {
    const schema = schemasForElasticsearch(datasets, shapers, sink).get('http_requests')!
    return (openSearchTemplate('http_requests', schema, { ecs: { mapping: ecs.mappings.get('http_requests'), types: ecs.types } }) as any).template.mappings.properties
  }
  assert.equal(mappingOf('opensearch').ClientIP.type, 'keyword')
  assert.equal(mappingOf('elasticsearch').ClientIP.type, 'ip', 'the rule names opensearch only')
})

test('OpenSearch gets shaped documents in each tenant\'s namespace, _id of the stored line; counted in lpr_shaped_lines_total and shown in /health', async (t) => {
  withKey(t)
  const double = await EsDouble.start()
  t.after(() => double.close())
  const server = await startServer(t, { SINKS: 'file,opensearch', OPENSEARCH_URL: double.url, CONFIG_FILE: await configFile({ shaping: SHAPING, ...tenants('') }) })
  const sent = lines()
  assert.equal((await post(server, '/logpush/http_requests', sent.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(60_000))
  const docs = double.bulks.flatMap((b) => b.docs)
  assert.equal(docs.length, 15, 'only the 5xx lines reach OpenSearch')
  for (const doc of docs) {
    const source = JSON.parse(doc.source) as { RayID: string, ZoneName: string, ClientIP: string, Cookies?: unknown, data_stream: { namespace: string } }
    const stored = sent.find((l) => (JSON.parse(l) as { RayID: string }).RayID === source.RayID)!
    assert.equal(doc.id, documentId('http_requests', stored), 'the _id is the hash of the line as stored')
    assert.equal(source.ClientIP, hmac((JSON.parse(stored) as { ClientIP: string }).ClientIP))
    assert.equal(source.Cookies, undefined)
    const ns = Object.entries(namespaces('')).find(([, zone]) => zone === source.ZoneName)![0]
    assert.equal(doc.index, `logs-cloudflare.http_requests-${ns}`, source.ZoneName)
    assert.equal(source.data_stream.namespace, ns)
  }
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="opensearch",rule="errors-only",outcome="filtered"\} 15/)
  assert.match(metrics, /lpr_shaped_lines_total\{dataset="http_requests",sink="opensearch",rule="errors-only",outcome="passed"\} 15/)
  const health = await (await fetch(`${server.url}/health`)).json() as { sinks: Record<string, { shaping?: string }> }
  assert.match(health.sinks.opensearch!.shaping!, /^http_requests \[errors-only: filter on EdgeResponseStatus; drop 1 fields; hmac-sha256 ClientIP\]; routing: /)
  assert.equal(health.sinks.file!.shaping, undefined)
})

test('a shaped document OpenSearch refuses is dead-lettered as the line was stored, not as shaped', async (t) => {
  withKey(t)
  const double = await EsDouble.start()
  t.after(() => double.close())
  const refused = line(4)
  double.onItem = (doc) => doc.id === documentId('http_requests', refused) ? { status: 400, type: 'mapper_parsing_exception', reason: 'failed to parse field [ClientIP]' } : { status: 201 }
  const server = await startServer(t, { SINKS: 'opensearch', OPENSEARCH_URL: double.url, CONFIG_FILE: await configFile({ shaping: SHAPING }) })
  assert.equal((await post(server, '/logpush/http_requests', lines().join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(60_000))
  const dead = await readDeadLetters(server, 'http_requests')
  assert.equal(dead.length, 1)
  assert.equal(dead[0].sink, 'opensearch')
  assert.equal(dead[0].code, 'LPR_ERR_SINK_OPENSEARCH_MAPPING')
  assert.equal(dead[0].raw, refused, 'the stored line (ClientIP and Cookies as received), so a replay shapes it once')
})

async function osJson(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

async function osCount(url: string, stream: string): Promise<number> {
  await osJson(url, `/${stream}/_refresh`, { method: 'POST' })
  return (await osJson(url, `/${stream}/_count`)).count
}

test('tenant isolation against the real OpenSearch: one tenant\'s lines never reach another tenant\'s data stream; shaped, _id of the stored line, a re-send adds nothing', { timeout: 300_000 }, async (t: TestContext) => {
  const url = requireOpenSearch(t)
  if (!url) return
  withKey(t)
  const suffix = `_${randomBytes(3).toString('hex')}`
  // Re-send detection off: the second send must be stopped by the _id, not by the spool.
  const server = await startServer(t, { SINKS: 'opensearch', OPENSEARCH_URL: url, OPENSEARCH_NAMESPACE: `own${suffix}`, DEDUPE_WINDOW_SECONDS: '0', CONFIG_FILE: await configFile({ shaping: SHAPING, ...tenants(suffix) }) })
  const sent = lines()
  assert.equal((await post(server, '/logpush/http_requests', sent.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(240_000), 'the spool drained')
  for (const [ns, zone] of Object.entries(namespaces(suffix))) {
    const stream = `logs-cloudflare.http_requests-${ns}`
    assert.equal(await osCount(url, stream), 5, stream)
    const hits = (await osJson(url, `/${stream}/_search?size=100`)).hits.hits as Array<{ _id: string, _source: { ZoneName: string, ClientIP: string, RayID: string } }>
    for (const h of hits) {
      assert.equal(h._source.ZoneName, zone, `${stream} holds only ${zone}`)
      const stored = sent.find((l) => (JSON.parse(l) as { RayID: string }).RayID === h._source.RayID)!
      assert.equal(h._id, documentId('http_requests', stored), 'the _id is that of the stored line')
      assert.equal(h._source.ClientIP, hmac((JSON.parse(stored) as { ClientIP: string }).ClientIP))
    }
    // The hashed IP indexes as a keyword: an ip field would have refused (or not indexed) it.
    const mapping = await osJson(url, `/${stream}/_mapping/field/ClientIP`)
    const field = Object.values(mapping as Record<string, { mappings: { ClientIP: { mapping: { ClientIP: { type: string } } } } }>)[0]!
    assert.equal(field.mappings.ClientIP.mapping.ClientIP.type, 'keyword')
  }
  // Nothing in the destination's own namespace: every line had a tenant.
  assert.equal((await fetch(`${url}/logs-cloudflare.http_requests-own${suffix}`)).status, 404)
  // Sending the batch again creates nothing new anywhere (the _id is the stored line's).
  assert.equal((await post(server, '/logpush/http_requests', sent.join('\n') + '\n', { headers: { 'x-request-id': 'again' } })).status, 200)
  assert.ok(await server.built.drained(240_000))
  for (const ns of Object.keys(namespaces(suffix))) assert.equal(await osCount(url, `logs-cloudflare.http_requests-${ns}`), 5)
})
