// ECS documents and the elastic-integration format against a REAL Elasticsearch node (see
// test/support/run-tests.ts). The node has no ingest-common module, so Elastic's integration
// pipelines cannot run on it: the elastic-integration test stands in the integration's index
// templates (data stream + its constant fields, from its base-fields.yml) and checks what reaches
// them, which is all this service controls.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { join } from 'node:path'
import { post, readDeadLetters, startServer } from '../helpers/server.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { TIMESTAMP_FORMATS, fullLine, loadSchemas } from '../helpers/dataset-lines.js'
import { compileEcs, documentId, loadEcs, type EcsType } from '../../src/sinks/elasticsearch/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'

async function es(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return JSON.parse(text)
}

/** What installing Elastic's integration puts in place for one stream, minus its ingest pipeline. */
async function integrationTemplate(url: string, stream: string): Promise<void> {
  const dataset = `cloudflare_logpush.${stream}`
  await es(url, `/_index_template/logs-${dataset}`, {
    method: 'PUT',
    body: JSON.stringify({
      index_patterns: [`logs-${dataset}-*`],
      data_stream: {},
      priority: 200,
      template: {
        mappings: {
          properties: {
            '@timestamp': { type: 'date' },
            message: { type: 'text' },
            // The integration maps these as constant_keyword, which the test node (no mapper-constant-keyword module) lacks.
            data_stream: { properties: { type: { type: 'keyword' }, dataset: { type: 'keyword' }, namespace: { type: 'keyword' } } },
            event: { properties: { dataset: { type: 'keyword' }, module: { type: 'keyword' } } }
          }
        }
      }
    })
  })
}

test('ELASTICSEARCH_FORMAT=elastic-integration: {@timestamp, message} documents land in Elastic\'s data streams, the line byte-exact', { timeout: 120_000 }, async (t) => {
  const url = requireElasticsearch(t)
  if (!url) return
  for (const stream of ['http_request', 'network_analytics']) await integrationTemplate(url, stream)
  const namespace = `t${randomBytes(4).toString('hex')}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace, ELASTICSEARCH_FORMAT: 'elastic-integration' })
  const http = [
    '{"RayID":"compat-1","EdgeStartTimestamp":1652295571783000123,"ClientIP":"192.0.2.1","ClientRequestURI":"/a?b=\\u00fc"}',
    '{"RayID":"compat-2","EdgeStartTimestamp":"2022-05-11T18:59:31Z","ClientIP":"2001:db8::1"}'
  ]
  const na = ['{"Datetime":1652295571783000123,"IPSourceAddress":"198.51.100.7","Outcome":"pass","SourcePort":443}']
  assert.deepEqual((await post(server, '/logpush/http_requests', http.join('\n') + '\n')).json, { dataset: 'http_requests', accepted: 2, rejected: 0 })
  assert.deepEqual((await post(server, '/logpush/network_analytics_logs', na.join('\n') + '\n')).json, { dataset: 'network_analytics_logs', accepted: 1, rejected: 0 })
  // A dataset Elastic has no stream for keeps our format and our stream.
  const zaraz = '{"TimestampStart":1652295571783000123,"EventType":"track","IP":"192.0.2.9"}'
  assert.deepEqual((await post(server, '/logpush/zaraz_events', zaraz + '\n')).json, { dataset: 'zaraz_events', accepted: 1, rejected: 0 })
  assert.ok(await server.built.drained(60_000), 'delivered')
  for (const [stream, lines] of [['http_request', http], ['network_analytics', na]] as const) {
    const name = `logs-cloudflare_logpush.${stream}-${namespace}`
    // GET /_data_stream is not in the test node; _resolve/index (core) names data streams too.
    const resolved = await es(url, `/_resolve/index/${name}`)
    assert.deepEqual(resolved.data_streams.map((d: { name: string }) => d.name), [name], 'a data stream of the integration\'s template')
    await es(url, `/${name}/_refresh`, { method: 'POST' })
    const hits: any[] = (await es(url, `/${name}/_search?size=10`)).hits.hits.map((h: any) => h._source)
    assert.deepEqual(hits.map((h: any) => h.message).sort(), [...lines].sort(), 'message is the line as sent')
    for (const h of hits) {
      assert.deepEqual(Object.keys(h).sort(), ['@timestamp', 'data_stream', 'event', 'message'])
      assert.equal(h.event.dataset, `cloudflare_logpush.${stream}`)
    }
  }
  // Our own streams got only the dataset Elastic does not cover, as an ECS document.
  const ours = await es(url, `/_resolve/index/logs-cloudflare.*-${namespace}`)
  assert.deepEqual([...ours.data_streams.map((d: { name: string }) => d.name), ...ours.indices.map((i: { name: string }) => i.name)], [`logs-cloudflare.zaraz_events-${namespace}`])
  await es(url, `/logs-cloudflare.zaraz_events-${namespace}/_refresh`, { method: 'POST' })
  const z = (await es(url, `/logs-cloudflare.zaraz_events-${namespace}/_search`)).hits.hits[0]._source
  assert.deepEqual([z.source.ip, z.event.action, z.IP], ['192.0.2.9', 'track', '192.0.2.9'])
  assert.deepEqual(await readDeadLetters(server, 'http_requests'), [])
})

function leaves(value: unknown, prefix: string, out: Map<string, unknown>): Map<string, unknown> {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) leaves(v, prefix ? `${prefix}.${k}` : k, out)
  } else out.set(prefix, value)
  return out
}

const MAPPED: Readonly<Record<EcsType, string>> = { keyword: 'keyword', long: 'long', double: 'double', ip: 'ip', date: 'date_nanos', boolean: 'boolean', flattened: 'flattened', object: 'object' }

test('every dataset: the ECS fields its mapping file makes of a line are stored as made, typed as _types.yaml says, with no mapping error', { timeout: 300_000 }, async (t) => {
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `t${randomBytes(4).toString('hex')}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace })
  const ecs = loadEcs(join(schemasDir, 'ecs'))
  const datasets = loadDatasets(schemasDir)
  const schemas = loadSchemas()
  const LINES = TIMESTAMP_FORMATS.length
  // One request (so one bulk) per dataset: a line with every field of the reference filled, in each timestamp format.
  const sent = new Map<string, string>()
  for (const dataset of datasets.keys()) {
    const lines = TIMESTAMP_FORMATS.map((format, i) => fullLine(schemas.get(dataset)!, format, i))
    for (const line of lines) sent.set(documentId(dataset, line), line)
    const r = await post(server, `/logpush/${dataset}`, lines.join('\n') + '\n')
    assert.deepEqual(r.json, { dataset, accepted: LINES, rejected: 0 }, dataset)
  }
  assert.ok(await server.built.drained(240_000), 'delivered')
  for (const dataset of datasets.keys()) {
    assert.deepEqual(await readDeadLetters(server, dataset), [], `${dataset}: no mapping errors`)
    const stream = `logs-cloudflare.${dataset}-${namespace}`
    await es(url, `/${stream}/_refresh`, { method: 'POST' })
    const hits: any[] = (await es(url, `/${stream}/_search?size=${LINES}`)).hits.hits
    assert.equal(hits.length, LINES, dataset)
    const mapping: any = (Object.values(await es(url, `/${stream}/_mapping`))[0] as any).mappings
    const builder = compileEcs(ecs.mappings.get(dataset)!, ecs.types)
    let fromLine = 0
    for (const { _id: id, _source: source } of hits) {
      // The line this document was made of (its _id says which): the builder sees it as the sink did.
      const line = sent.get(id)!
      const made: Record<string, unknown> = {}
      builder(JSON.parse(line), made, line)
      for (const [field, value] of leaves(made, '', new Map())) {
        const stored = field.split('.').reduce<any>((o, k) => o?.[k], source)
        assert.deepEqual(stored, value, `${dataset}: ${field} stored as made`)
        const type = ecs.types.get(field)!
        const mapped: any = field.split('.').reduce<any>((m, k) => m?.properties?.[k], mapping)
        if (type !== 'object') assert.equal(mapped?.type, MAPPED[type], `${dataset}: ${field} mapped as ${MAPPED[type]}`)
        if (!['event.kind', 'event.category', 'event.type'].includes(field)) fromLine++
      }
    }
    assert.ok(fromLine > 0, `${dataset}: ECS fields from the line itself, not only constants`)
  }
})
