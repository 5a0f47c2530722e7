// Server-free checks of the OpenSearch and Kafka destinations' pure parts: the OpenSearch
// templates derived from the Elasticsearch ones, the ISM policy and the Kafka error verdicts.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AuthenticationError, MultipleErrors, NetworkError, ProtocolError, ResponseError, UserError } from '@platformatic/kafka'
import { loadSchemas } from '../helpers/dataset-lines.js'
import { indexTemplate, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { ismPolicy, openSearchTemplate } from '../../src/sinks/opensearch/index.js'
import { errorTypes, verdictOf } from '../../src/sinks/kafka/index.js'
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

test('Kafka error verdicts: too large, missing topic, credentials and refused certificates are told apart, nested as @platformatic/kafka nests them', () => {
  // The client's own error classes, nested as a failed produce comes back: a response error
  // holding one ProtocolError per partition (codes 10 MESSAGE_TOO_LARGE, 18 RECORD_LIST_TOO_LARGE, 3 UNKNOWN_TOPIC_OR_PARTITION), inside a retry's MultipleErrors.
  const response = (code: number): Error => new ResponseError(0, 11, { '/topics/0/partitions/0': [code, null] }, {})
  const retried = (code: number): Error => new MultipleErrors('retries exhausted', [response(code)])
  assert.equal(verdictOf(errorTypes(retried(10))), 'too-large')
  assert.equal(verdictOf(errorTypes(response(18))), 'too-large')
  assert.equal(verdictOf(errorTypes(retried(3))), 'topic')
  // A metadata request for a missing topic: the client replaces the protocol error by this UserError.
  assert.equal(verdictOf(errorTypes(new UserError('Unknown topic cloudflare.dns_logs.'))), 'topic')
  assert.equal(verdictOf(errorTypes(new UserError('Invalid option'))), 'retry')
  assert.equal(verdictOf(errorTypes(new ProtocolError('TOPIC_AUTHORIZATION_FAILED'))), 'auth')
  assert.equal(verdictOf(errorTypes(new MultipleErrors('x', [new AuthenticationError('SASL authentication failed')]))), 'auth')
  assert.equal(verdictOf(errorTypes(new NetworkError('Connection closed'))), 'retry')
  // A refused broker certificate: the connection's NetworkError holds Node's TLS error as its cause.
  const refused = (code: string): Error => new MultipleErrors('retries exhausted', [new NetworkError('Connection to 127.0.0.1:9093 failed.', { cause: Object.assign(new Error('certificate refused'), { code }) })])
  assert.equal(verdictOf(errorTypes(refused('UNABLE_TO_VERIFY_LEAF_SIGNATURE'))), 'tls')
  assert.equal(verdictOf(errorTypes(refused('ERR_TLS_CERT_ALTNAME_INVALID'))), 'tls')
  assert.equal(verdictOf(errorTypes(refused('ECONNREFUSED'))), 'retry', 'a broker down is retried')
  const loop: any = { name: 'x' }
  loop.cause = loop
  assert.deepEqual(errorTypes(loop), ['x'], 'a cause cycle ends')
})

test('OpenSearch Serverless, which stores a document without _id, has its checkpoints written per batch, not lagging', async () => {
  // The bug this pins: the OpenSearch destination said it "replays without duplicates" whatever
  // its target, so its checkpoints lagged by SPOOL_CHECKPOINT_INTERVAL_MS; on Serverless (aoss)
  // documents go without _id and a replayed one is stored again, so a crash doubled every batch
  // of that lag instead of at most the one in flight.
  const { OpenSearchSink } = await import('../../src/sinks/opensearch/index.js')
  const { createLogger } = await import('../../src/observability/index.js')
  const opts = { url: 'http://127.0.0.1:9', username: '', password: '', caFile: '', tlsVerify: true, awsRegion: 'eu-west-1', namespace: 'default', bulkBytes: 1 << 20, concurrency: 1, retryMs: 1, requestTimeoutMs: 1000, dataRetention: '', datasets: new Map(), log: createLogger('silent'), awsCredentials: async () => ({ accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' }) }
  const serverless = new OpenSearchSink({ ...opts, auth: 'aws-sigv4', awsService: 'aoss' })
  const managed = new OpenSearchSink({ ...opts, auth: 'aws-sigv4', awsService: 'es' })
  const plain = new OpenSearchSink({ ...opts, auth: 'none', awsService: 'es' })
  assert.notEqual(serverless.replaysWithoutDuplicates, true, 'aoss: no _id, a replay stores again')
  assert.equal(managed.replaysWithoutDuplicates, true)
  assert.equal(plain.replaysWithoutDuplicates, true)
  await Promise.all([serverless, managed, plain].map((s) => s.close()))
})

test('a record Kafka refuses as too large is dead-lettered with its own bytes, though the spool reused its read buffer for the lines read after it', async () => {
  // The bug: the dead letter was made from the payload as the spool gave it, a view into a read
  // buffer that is valid only until the next payload (spool.ts payloads()); held until the send,
  // its bytes had become those of later lines. Here every payload reuses one buffer, as a refill
  // of the spool's buffer does.
  const { KafkaSink } = await import('../../src/sinks/kafka/index.js')
  const { createLogger } = await import('../../src/observability/index.js')
  const sink = new KafkaSink({ brokers: ['127.0.0.1:9'], clientId: 'test', topic: 'cloudflare.{dataset}', key: 'hash', compression: 'none', sasl: 'none', username: '', password: '', tls: false, caFile: '', tlsVerify: true, batchBytes: 1 << 20, requestTimeoutMs: 1000, eventTimeFields: new Map(), log: createLogger('silent') })
  const internals = sink as unknown as { knownTopics: Map<string, number | undefined>, getProducer: () => unknown }
  internals.knownTopics.set('cloudflare.http_requests', undefined) // exists; its max.message.bytes not known
  const sent: string[] = []
  internals.getProducer = () => ({
    close: async () => {},
    send: async ({ messages }: { messages: Array<{ value: Buffer }> }) => {
      if (messages.some((m) => m.value.length > 1000)) throw new MultipleErrors('retries exhausted', [new ResponseError(0, 11, { '/topics/0/partitions/0': [10, null] }, {})])
      sent.push(...messages.map((m) => m.value.toString('utf8')))
    }
  })
  const big = `{"RayID":"big","ClientRequestPath":"/${'x'.repeat(2000)}"}`
  const lines = [big, ...Array.from({ length: 5 }, (_, i) => `{"RayID":"${i}","ClientRequestPath":"/${i}"}`)]
  const shared = Buffer.alloc(4096)
  const batch = {
    seq: 1, dataset: 'http_requests', digest: 'd', from: 0, count: lines.length,
    lines: async function * () { yield * lines },
    payloads: async function * () { for (const l of lines) yield shared.subarray(0, shared.write(l)) },
    blocks: async function * () {}
  }
  const rejected: Array<{ code: string, raw: string }> = []
  await sink.deliver(batch as never, (async (_pos: number, r: Array<{ code: string, raw: string }> = []) => { rejected.push(...r) }) as never)
  assert.deepEqual(rejected.map((r) => r.code), ['LPR_ERR_SINK_KAFKA_TOO_LARGE'])
  assert.equal(rejected[0]!.raw, big)
  assert.equal(sent.length, 5, 'the other lines are sent')
})
