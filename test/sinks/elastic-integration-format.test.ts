// ELASTICSEARCH_FORMAT=elastic-integration: for the datasets Elastic's Cloudflare Logpush
// integration covers, documents go to its data streams in the shape its Agent input sends, so its
// ingest pipelines and dashboards work unchanged. Held against the integration's published
// base-fields.yml of each data stream (test/fixtures/elastic-ecs/<stream>/fields).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse as parseYaml } from 'yaml'
import { integrationDataStreamName, integrationDocumentText, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot, schemasDir } from '../../src/paths.js'

const streamsDir = join(packageRoot, 'test', 'fixtures', 'elastic-ecs')
const ecs = loadEcs(join(schemasDir, 'ecs'))
const covered = new Map([...ecs.mappings].flatMap(([d, m]) => m.elastic ? [[d, m.elastic] as const] : []))
const published = readdirSync(streamsDir).filter((s) => existsSync(join(streamsDir, s, 'fields', 'base-fields.yml')))

interface FieldDef { name: string, type?: string, value?: string }
const baseFields = (stream: string): FieldDef[] => parseYaml(readFileSync(join(streamsDir, stream, 'fields', 'base-fields.yml'), 'utf8')) as FieldDef[]

test('each of Elastic\'s Cloudflare Logpush data streams is the target of exactly one dataset, and every target is one of them', () => {
  assert.deepEqual([...covered.values()].sort(), [...published].sort())
  assert.equal(new Set(covered.values()).size, covered.size, 'no stream serves two datasets')
})

test('the data stream names are logs-<the event.dataset the integration declares>-<namespace>', () => {
  for (const [dataset, stream] of covered) {
    const declared = baseFields(stream).find((f) => f.name === 'event.dataset')?.value
    assert.equal(declared, `cloudflare_logpush.${stream}`, `${stream}/fields/base-fields.yml`)
    assert.equal(integrationDataStreamName(stream, 'prod'), `logs-${declared}-prod`, dataset)
  }
})

test('documents carry the line as message and only fields the integration declares, with its constant values', () => {
  const line = '{"ClientIP":"192.0.2.1","EdgeStartTimestamp":1652295571783000123,"RayID":"7a\\u00fc\\/x"}'
  for (const [, stream] of covered) {
    const doc = JSON.parse(integrationDocumentText(line, JSON.parse(line), { stream, namespace: 'prod', eventTimeField: 'EdgeStartTimestamp', ingested: '2026-01-01T00:00:00.000Z' }))
    // The integration's pipeline reads `message` (its pipeline tests feed each line as message)
    // and parses it itself: the line must arrive exactly as Cloudflare sent it.
    assert.equal(doc.message, line)
    assert.equal(doc['@timestamp'], '2022-05-11T18:59:31.783000123Z')
    const declared = new Map(baseFields(stream).map((f) => [f.name, f]))
    const flat: Array<[string, unknown]> = []
    const walk = (o: Record<string, unknown>, p: string): void => {
      for (const [k, v] of Object.entries(o)) {
        if (v !== null && typeof v === 'object') walk(v as Record<string, unknown>, `${p}${k}.`)
        else flat.push([`${p}${k}`, v])
      }
    }
    walk(doc, '')
    for (const [field, value] of flat) {
      if (field === 'message') continue
      const def = declared.get(field)
      assert.ok(def, `${stream}: ${field} is declared in base-fields.yml`)
      if (def.value !== undefined) assert.equal(value, def.value, `${stream}: ${field} is the constant the template sets`)
    }
    assert.deepEqual(doc.data_stream, { type: 'logs', dataset: `cloudflare_logpush.${stream}`, namespace: 'prod' })
  }
})
