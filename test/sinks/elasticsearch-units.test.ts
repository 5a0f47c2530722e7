import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { backoffMs, classifyItem, classifyRequest, compileEcs, documentId, documentText, eventTime, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { schemasDir } from '../../src/paths.js'

test('bulk item statuses: created, duplicate, retry or reject', () => {
  const table: Array<[number, string]> = [
    [201, 'created'], [200, 'created'], [409, 'duplicate'], [429, 'retry'], [500, 'retry'], [503, 'retry'],
    [400, 'reject'], [404, 'reject'], [413, 'reject']
  ]
  for (const [status, verdict] of table) assert.equal(classifyItem(status), verdict, String(status))
})

test('whole-request failures: retry, split or fail', () => {
  const table: Array<[number | undefined, string]> = [
    [undefined, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry'], [504, 'retry'],
    [413, 'split'], [400, 'fail'], [401, 'fail'], [403, 'fail'], [404, 'fail']
  ]
  for (const [status, verdict] of table) assert.equal(classifyRequest(status), verdict, String(status))
})

test('backoff grows exponentially, is capped, and is jittered between half and all of it', () => {
  assert.equal(backoffMs(0, 200, 5000, () => 1), 200)
  assert.equal(backoffMs(3, 200, 5000, () => 1), 1600)
  assert.equal(backoffMs(10, 200, 5000, () => 1), 5000)
  assert.equal(backoffMs(3, 200, 5000, () => 0), 800)
})

test('event time from every Cloudflare timestamp format, nanoseconds exact', () => {
  const cases: Array<[string, string | undefined]> = [
    ['{"T":1652295571783000123}', '2022-05-11T18:59:31.783000123Z'],
    ['{"T":1652295571}', '2022-05-11T18:59:31.000000000Z'],
    ['{"T":1652295571783}', '2022-05-11T18:59:31.783000000Z'],
    ['{"T":"2022-05-11T18:59:31Z"}', '2022-05-11T18:59:31.000000000Z'],
    ['{"T":"2022-05-11T18:59:31.5-01:30"}', '2022-05-11T20:29:31.500000000Z'],
    ['{"T":"2022-05-11T18:59:31.123456789+00:00"}', '2022-05-11T18:59:31.123456789Z'],
    ['{"T":"yesterday"}', undefined],
    ['{"U":1}', undefined]
  ]
  for (const [line, want] of cases) assert.equal(eventTime(line, JSON.parse(line), 'T'), want, line)
})

test('documents put ECS fields in front and keep the line exactly', () => {
  const line = '{"RayID":"r1","EdgeStartTimestamp":1652295571783000123,"ClientIP":"192.0.2.1"}'
  const ecs = loadEcs(join(schemasDir, 'ecs'))
  const builder = compileEcs(ecs.mappings.get('http_requests')!, ecs.types)
  const doc = documentText(line, JSON.parse(line), { dataset: 'http_requests', namespace: 'default', eventTimeField: 'EdgeStartTimestamp', ingested: '2026-11-24T07:00:00.000Z', ecs: builder })
  assert.ok(doc.endsWith(line.slice(1)), 'the Cloudflare fields follow unchanged')
  const parsed = JSON.parse(doc)
  assert.equal(parsed['@timestamp'], '2022-05-11T18:59:31.783000123Z')
  assert.equal(parsed.source.ip, '192.0.2.1')
  assert.equal(parsed.event.id, 'r1')
  const empty = documentText('{}', {}, { dataset: 'http_requests', namespace: 'default', eventTimeField: 'EdgeStartTimestamp', ingested: '2026-11-24T07:00:00.000Z' })
  assert.equal(JSON.parse(empty)['@timestamp'], '2026-11-24T07:00:00.000000000Z')
})

test('ids depend on dataset and exact bytes, and fit Elasticsearch\'s 512-byte limit', () => {
  const a = documentId('http_requests', '{"a":1}')
  assert.equal(a, documentId('http_requests', '{"a":1}'))
  assert.notEqual(a, documentId('http_requests', '{"a":1.0}'))
  assert.notEqual(a, documentId('dns_logs', '{"a":1}'))
  assert.ok(documentId('x', 'y'.repeat(100_000)).length <= 512)
})
