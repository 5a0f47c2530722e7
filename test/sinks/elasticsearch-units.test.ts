import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { backoffMs, classifyItem, classifyRequest, compileEcs, documentId, documentText, eventTime, loadEcs, oneTooLarge, stopCause } from '../../src/sinks/elasticsearch/index.js'
import { schemasDir } from '../../src/paths.js'

test('bulk item statuses: created, duplicate, retry or reject', () => {
  const table: Array<[number, string]> = [
    [201, 'created'], [200, 'created'], [409, 'duplicate'], [429, 'retry'], [500, 'retry'], [503, 'retry'],
    [400, 'reject'], [413, 'reject']
  ]
  for (const [status, verdict] of table) assert.equal(classifyItem(status), verdict, String(status))
})

test('bulk item errors by type: the document\'s are dead-lettered, ours and the cluster\'s stop delivery', () => {
  // The bug: every item 4xx but 409 was dead-lettered, so a missing privilege (403
  // security_exception), a read-only or flood-stage block (403 cluster_block_exception) or a data
  // stream that may not be created (404 index_not_found_exception) emptied the whole stream into
  // the dead-letter store, line by line, instead of waiting in the spool for the fix.
  const table: Array<[number, string | undefined, string, string?]> = [
    [201, undefined, 'created'],
    [409, 'version_conflict_engine_exception', 'duplicate'],
    [409, 'resource_already_exists_exception', 'retry'],
    [429, 'es_rejected_execution_exception', 'retry'],
    [429, 'circuit_breaking_exception', 'retry'],
    [500, 'illegal_state_exception', 'retry'],
    [503, 'cluster_block_exception', 'retry'], // no master / state not recovered: passes by itself
    [503, 'unavailable_shards_exception', 'retry'],
    [400, 'mapper_parsing_exception', 'reject'],
    [400, 'document_parsing_exception', 'reject'],
    [400, 'strict_dynamic_mapping_exception', 'reject'],
    [400, 'illegal_argument_exception', 'reject'],
    [400, 'x_content_parse_exception', 'reject'],
    [400, undefined, 'reject'],
    [401, undefined, 'stop', 'credentials'],
    [401, 'security_exception', 'stop', 'credentials'],
    [403, 'security_exception', 'stop', 'credentials'],
    [403, undefined, 'stop', 'credentials'],
    [403, 'cluster_block_exception', 'stop', 'cluster'],
    [404, 'index_not_found_exception', 'stop', 'cluster'],
    [404, undefined, 'stop', 'cluster'],
    [400, 'index_closed_exception', 'stop', 'cluster'],
    [400, 'invalid_index_name_exception', 'stop', 'cluster'],
    [404, 'resource_not_found_exception', 'stop', 'cluster']
  ]
  for (const [status, type, verdict, cause] of table) {
    assert.equal(classifyItem(status, type), verdict, `${status} ${type}`)
    if (cause) assert.equal(stopCause(status, type), cause, `${status} ${type}`)
  }
})

test('whole-request failures: retry, split or stop', () => {
  const table: Array<[number | undefined, string]> = [
    [undefined, 'retry'], [429, 'retry'], [500, 'retry'], [502, 'retry'], [503, 'retry'], [504, 'retry'],
    [413, 'split'], [400, 'stop'], [401, 'stop'], [403, 'stop'], [404, 'stop']
  ]
  for (const [status, verdict] of table) assert.equal(classifyRequest(status), verdict, String(status))
})

test('one document alone answered 413: dead-lettered unless the limit is evidently not about its size', () => {
  // The bug: a document over the request size limit was split down to itself and then retried
  // forever; the spool filled behind it and every intake got 503.
  const table: Array<[number, number, boolean, string]> = [
    [2_000_000, 1_000_000, false, 'reject'], // bigger than anything the node took: its own size
    [2_000_000, 0, true, 'reject'], // alone in its bulk, no evidence either way: the 413 is its answer
    [2_000_000, 0, false, 'stop'], // the node took none of its neighbours: the limit is the problem
    [500_000, 1_000_000, false, 'stop'], // the node took larger bodies: the limit was lowered since
    [1_000_000, 1_000_000, true, 'stop']
  ]
  for (const [bytes, largest, alone, verdict] of table) assert.equal(oneTooLarge(bytes, largest, alone), verdict, `${bytes} ${largest} ${alone}`)
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
