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
import { batchText } from '../helpers/fixtures.js'
import { compileEcs, loadEcs, type EcsType } from '../../src/sinks/elasticsearch/index.js'
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
            message: { type: 'match_only_text' },
            data_stream: { properties: { type: { type: 'constant_keyword' }, dataset: { type: 'constant_keyword' }, namespace: { type: 'constant_keyword' } } },
            event: { properties: { dataset: { type: 'constant_keyword', value: dataset }, module: { type: 'constant_keyword', value: 'cloudflare_logpush' } } }
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
  assert.ok(await server.built.drained(60_000), 'delivered')
  for (const [stream, lines] of [['http_request', http], ['network_analytics', na]] as const) {
    const name = `logs-cloudflare_logpush.${stream}-${namespace}`
    const ds = await es(url, `/_data_stream/${name}`)
    assert.equal(ds.data_streams[0]?.name, name, 'a data stream of the integration\'s template')
    await es(url, `/${name}/_refresh`, { method: 'POST' })
    const hits: any[] = (await es(url, `/${name}/_search?size=10`)).hits.hits.map((h: any) => h._source)
    assert.deepEqual(hits.map((h: any) => h.message).sort(), [...lines].sort(), 'message is the line as sent')
    for (const h of hits) {
      assert.deepEqual(Object.keys(h).sort(), ['@timestamp', 'data_stream', 'event', 'message'])
      assert.equal(h.event.dataset, `cloudflare_logpush.${stream}`)
    }
  }
  // Nothing went to our own streams for the datasets Elastic covers.
  const ours = await fetch(`${url}/_data_stream/logs-cloudflare.http_requests-${namespace}`)
  assert.equal(ours.status, 404)
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
  const LINES = 4
  // One request (so one bulk) per dataset: lines with every field of the schema filled.
  for (const dataset of datasets.keys()) {
    const r = await post(server, `/logpush/${dataset}`, batchText(dataset, LINES))
    assert.deepEqual(r.json, { dataset, accepted: LINES, rejected: 0 }, dataset)
  }
  assert.ok(await server.built.drained(240_000), 'delivered')
  for (const [dataset, d] of datasets) {
    assert.deepEqual(await readDeadLetters(server, dataset), [], `${dataset}: no mapping errors`)
    const stream = `logs-cloudflare.${dataset}-${namespace}`
    await es(url, `/${stream}/_refresh`, { method: 'POST' })
    const hits: any[] = (await es(url, `/${stream}/_search?size=${LINES}`)).hits.hits.map((h: any) => h._source)
    assert.equal(hits.length, LINES, dataset)
    const mapping: any = (Object.values(await es(url, `/${stream}/_mapping`))[0] as any).mappings
    const builder = compileEcs(ecs.mappings.get(dataset)!, ecs.types)
    let fromLine = 0
    for (const source of hits) {
      const record = Object.fromEntries(Object.entries(source).filter(([k]) => d.knownFields.has(k)))
      const made: Record<string, unknown> = {}
      builder(record, made)
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
