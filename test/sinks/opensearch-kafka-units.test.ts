// Server-free checks of the OpenSearch and Kafka destinations' pure parts: the OpenSearch
// templates derived from the Elasticsearch ones, the ISM policy, the Kafka error verdicts and the
// LZ4 frame Kafka reads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import lz4 from 'lz4js'
import { loadSchemas } from '../helpers/dataset-lines.js'
import { indexTemplate, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { ismPolicy, openSearchTemplate } from '../../src/sinks/opensearch/index.js'
import { errorTypes, verdictOf } from '../../src/sinks/kafka/index.js'
import { lz4Frame } from '../../src/sinks/kafka/lz4-frame.js'
import { schemasDir } from '../../src/paths.js'
import { join } from 'node:path'

test('OpenSearch templates are the Elasticsearch ones with flattened as flat_object, without index.mode, _source mode or lifecycle', () => {
  const ecs = loadEcs(join(schemasDir, 'ecs'))
  for (const [id, schema] of loadSchemas()) {
    const opts = { ecs: { mapping: ecs.mappings.get(id), types: ecs.types } }
    const os = openSearchTemplate(id, schema, opts) as any
    const es = indexTemplate(id, schema, opts) as any
    const text = JSON.stringify(os)
    assert.ok(!text.includes('"flattened"'), `${id}: no flattened`)
    assert.deepEqual(Object.keys(os.template), ['mappings'], `${id}: mappings only`)
    assert.deepEqual(os.index_patterns, es.index_patterns)
    // Same fields, same types but for flattened -> flat_object: one source for both.
    const want = JSON.parse(JSON.stringify(es.template.mappings).replace(/\{"type":"flattened"(,"ignore_above":\d+)?\}/g, '{"type":"flat_object"}'))
    assert.deepEqual(os.template.mappings, want, id)
  }
})

test('the ISM policy rolls over, and deletes only with a retention; it attaches to our data streams\' backing indices', () => {
  const keep = ismPolicy('') as any
  assert.deepEqual(keep.policy.states.map((s: any) => s.name), ['hot'])
  assert.deepEqual(keep.policy.ism_template, [{ index_patterns: ['.ds-logs-cloudflare.*'], priority: 100 }])
  const drop = ismPolicy('30d') as any
  assert.deepEqual(drop.policy.states.map((s: any) => s.name), ['hot', 'delete'])
  assert.deepEqual(drop.policy.states[0].transitions, [{ state_name: 'delete', conditions: { min_rollover_age: '30d' } }])
})

test('Kafka error verdicts: too large, missing topic and credentials are told apart, nested as KafkaJS nests them', () => {
  const nested = (type: string): unknown => ({ name: 'KafkaJSNumberOfRetriesExceeded', cause: { name: 'KafkaJSProtocolError', type } })
  assert.equal(verdictOf(errorTypes(nested('MESSAGE_TOO_LARGE'))), 'too-large')
  assert.equal(verdictOf(errorTypes({ name: 'KafkaJSAggregateError', errors: [nested('UNKNOWN_TOPIC_OR_PARTITION')] })), 'topic')
  assert.equal(verdictOf(errorTypes({ name: 'KafkaJSSASLAuthenticationError' })), 'auth')
  assert.equal(verdictOf(errorTypes(nested('TOPIC_AUTHORIZATION_FAILED'))), 'auth')
  assert.equal(verdictOf(errorTypes({ name: 'KafkaJSConnectionError' })), 'retry')
  const loop: any = { name: 'x' }
  loop.cause = loop
  assert.deepEqual(errorTypes(loop), ['x'], 'a cause cycle ends')
})

test('the LZ4 frame declares independent blocks and decodes to the input, across block boundaries and incompressible data', () => {
  for (const input of [Buffer.alloc(0), Buffer.from('a'), Buffer.from('abc'.repeat(100_000)), randomBytes(200_000)]) {
    const frame = lz4Frame(input)
    assert.equal(frame.readUInt32LE(0), 0x184d2204)
    assert.equal(frame[4]! & 0x20, 0x20, 'block independence flag')
    assert.ok(Buffer.from(lz4.decompress(frame)).equals(input), `${input.length} bytes round-trip`)
  }
})
