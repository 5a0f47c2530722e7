// The Kafka destination against a REAL Apache Kafka 4 broker in KRaft mode (test/support/kafka.ts,
// auto.create.topics.enable=false): every line arrives byte for byte as a record value with its
// key and headers, in each compression; a broker killed with SIGKILL in the middle of the
// deliveries and restarted loses nothing that was answered 200; a missing topic is a coded, visible
// stop; a record over the topic's size limit is dead-lettered alone.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, Consumer } from '@platformatic/kafka'
import { batchText } from '../helpers/fixtures.js'
import { health, post, readDeadLetters, startServer, until } from '../helpers/server.js'
import { controlServer, requireKafka } from '../helpers/extra-servers.js'
import { makeCertificates } from '../support/certificates.js'
import { packageRoot } from '../../src/paths.js'

interface Record { value: Buffer, key: string | null, headers: { [k: string]: string } }

async function createTopics(brokers: string, topics: string[], config: Array<{ name: string, value: string }> = []): Promise<void> {
  const admin = new Admin({ clientId: 'lpr-test', bootstrapBrokers: [brokers], retries: 10 })
  try {
    await admin.createTopics({ topics, partitions: 3, replicas: 1, configs: config })
    // Wait for the leaders, as a producer would otherwise see the topic without them for a moment.
    for (let i = 0; ; i++) {
      const meta = await admin.metadata({ topics, forceUpdate: true })
      if (topics.every((t) => meta.topics.get(t)?.partitions.every((p) => p.leader >= 0))) break
      if (i > 50) throw new Error(`no leaders for ${topics.join(', ')}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  } finally {
    await admin.close()
  }
}

/** Every record of `topic` from the beginning, once at least `min` have arrived and no more came for a moment. */
async function consume(brokers: string, topic: string, min: number, timeoutMs = 120_000): Promise<Record[]> {
  const consumer = new Consumer({ clientId: 'lpr-test', bootstrapBrokers: [brokers], groupId: `lpr-test-${randomBytes(4).toString('hex')}`, retries: 10 })
  const out: Record[] = []
  try {
    const stream = await consumer.consume({ topics: [topic], mode: 'earliest' })
    stream.on('data', (message) => {
      const headers: { [k: string]: string } = {}
      for (const [k, v] of message.headers) headers[k.toString()] = v.toString()
      out.push({ value: message.value, key: message.key && message.key.length > 0 ? message.key.toString() : null, headers })
    })
    const end = Date.now() + timeoutMs
    let last = -1
    while (Date.now() < end) {
      await new Promise((r) => setTimeout(r, 1500))
      if (out.length >= min && out.length === last) break
      last = out.length
    }
    await stream.close()
  } finally {
    await consumer.close(true)
  }
  return out
}

const prefix = (): string => `t${randomBytes(4).toString('hex')}`

for (const compression of ['zstd', 'lz4', 'gzip', 'none'] as const) {
  test(`every line arrives byte-exact as a record value (${compression}), keyed by the line's hash, with dataset, event time and batch digest headers`, { timeout: 180_000 }, async (t: TestContext) => {
    const brokers = requireKafka(t)
    if (!brokers) return
    const p = prefix()
    await createTopics(brokers, [`${p}.http_requests`, `${p}.dns_logs`])
    const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_COMPRESSION: compression, KAFKA_BATCH_BYTES: String(32 * 1024) })
    // Lines as Cloudflare may send them: odd spacing, escapes, non-ASCII, a 19-digit unixnano
    // that a parse-and-serialise would round.
    const odd = [
      '{"EdgeStartTimestamp":1700000000123456789,"RayID":"odd1","ClientRequestHost":"ex\\u00e4mple.com" }',
      '{ "EdgeStartTimestamp" : 1700000000987654321 , "RayID":"odd2","ClientRequestPath":"/caf\u00e9/\u{1F600}?a=1&b=\\"q\\""}'
    ]
    const http = odd.join('\n') + '\n' + batchText('http_requests', 3000, 'unixnano', 10)
    const dns = batchText('dns_logs', 500, 'rfc3339')
    assert.equal((await post(server, '/logpush/http_requests', http)).status, 200)
    assert.equal((await post(server, '/logpush/dns_logs', dns)).status, 200)
    assert.ok(await server.built.drained(120_000), 'delivered to Kafka')
    for (const [dataset, body] of [['http_requests', http], ['dns_logs', dns]] as const) {
      const sent = body.split('\n').filter(Boolean)
      const records = await consume(brokers, `${p}.${dataset}`, sent.length)
      assert.equal(records.length, sent.length, `${dataset}: one record per line`)
      const got = new Set(records.map((r) => r.value.toString('base64')))
      for (const line of sent) assert.ok(got.has(Buffer.from(line).toString('base64')), `${dataset}: ${line.slice(0, 80)} arrived byte for byte`)
      const digest = records[0]!.headers.batch_digest
      assert.match(digest ?? '', /^[A-Za-z0-9_-]{20,}$/)
      for (const r of records) {
        assert.equal(r.key, createHash('sha256').update(r.value).digest('base64url'))
        assert.equal(r.headers.dataset, dataset)
        assert.equal(r.headers.batch_digest, digest, 'one batch, one digest')
        assert.match(r.headers.event_time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{9})?Z$/)
      }
      if (dataset === 'http_requests') {
        const first = records.find((r) => r.value.toString().includes('"odd1"'))!
        assert.equal(first.headers.event_time, '2023-11-14T22:13:20.123456789Z', 'event time with every nanosecond')
      }
    }
  })
}

test('KAFKA_KEY=ZoneName keys each record by its zone, so a zone stays in one partition', { timeout: 120_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const p = prefix()
  await createTopics(brokers, [`${p}.http_requests`])
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_KEY: 'ZoneName' })
  const body = [0, 1, 2, 3].map((i) => `{"EdgeStartTimestamp":1700000000000000000,"RayID":"r${i}","ZoneName":"zone${i % 2}.example"}`).join('\n') + '\n'
  assert.equal((await post(server, '/logpush/http_requests', body)).status, 200)
  assert.ok(await server.built.drained(60_000))
  const records = await consume(brokers, `${p}.http_requests`, 4)
  assert.deepEqual(records.map((r) => r.key).sort(), ['zone0.example', 'zone0.example', 'zone1.example', 'zone1.example'])
})

// The Kafka destination had no {tenant} in its topic: with routing, every tenant's lines went to
// the one topic of the dataset. Each tenant now has its own topic, every line arrives once, keyed
// by the hash of the line as stored.
test('routing: KAFKA_TOPIC with {tenant} puts each tenant\'s lines on its own topic, each line once, keyed by the stored line\'s hash', { timeout: 180_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const p = prefix()
  await createTopics(brokers, ['acme', 'bravo', 'shared'].map((tenant) => `${p}.${tenant}.http_requests`))
  const dir = await mkdtemp(join(tmpdir(), 'lpr-kafka-routing-'))
  const config = join(dir, 'receiver.json')
  await writeFile(config, JSON.stringify({
    tenants: { acme: {}, bravo: {}, shared: {} },
    routing: [{ name: 'by-zone', datasets: ['http_requests'], field: 'ZoneName', table: { 'acme.example': 'acme', 'bravo.example': 'bravo' }, default: 'shared' }]
  }))
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{tenant}.{dataset}`, CONFIG_FILE: config })
  const zones = ['acme.example', 'bravo.example', 'other.example']
  const lines = Array.from({ length: 30 }, (_, i) => `{"EdgeStartTimestamp":${1700000000000000000 + i},"RayID":"r${i}","ZoneName":"${zones[i % 3]}"}`)
  assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
  assert.ok(await server.built.drained(60_000))
  for (const [tenant, zone] of [['acme', 'acme.example'], ['bravo', 'bravo.example'], ['shared', 'other.example']] as const) {
    const records = await consume(brokers, `${p}.${tenant}.http_requests`, 10)
    assert.deepEqual(records.map((r) => r.value.toString()).sort(), lines.filter((l) => l.includes(`"${zone}"`)).sort(), `${tenant}'s lines, each once`)
    for (const r of records) assert.equal(r.key, createHash('sha256').update(r.value).digest('base64url'))
  }
  assert.equal((await health(server)).sinks.kafka.stopped, null)
})

test('a topic that does not exist (auto.create.topics.enable=false) stops delivery with LPR_ERR_SINK_KAFKA_TOPIC in /health; nothing is dead-lettered; creating it resumes delivery', { timeout: 180_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const p = prefix()
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{dataset}` })
  assert.equal((await post(server, '/logpush/dns_logs', batchText('dns_logs', 200))).status, 200)
  const stopped = await until('delivery stopped', 60_000, async () => (await health(server)).sinks.kafka.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_KAFKA_TOPIC')
  assert.match(stopped.reason, new RegExp(`no topic ${p}\\.dns_logs`))
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_sink_stopped\{sink="kafka",code="LPR_ERR_SINK_KAFKA_TOPIC"\} 1$/m)
  assert.deepEqual(await readDeadLetters({ dataDir: server.dataDir }, 'dns_logs'), [])
  await createTopics(brokers, [`${p}.dns_logs`])
  assert.ok(await server.built.drained(120_000), 'delivered once the topic exists')
  assert.equal((await health(server)).sinks.kafka.stopped, null)
  assert.equal((await consume(brokers, `${p}.dns_logs`, 200)).length, 200)
})

test('a record over the topic\'s max.message.bytes is dead-lettered alone with LPR_ERR_SINK_KAFKA_TOO_LARGE; the rest of its batch is delivered', { timeout: 120_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const p = prefix()
  await createTopics(brokers, [`${p}.http_requests`], [{ name: 'max.message.bytes', value: '16384' }])
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_COMPRESSION: 'none' })
  const big = `{"EdgeStartTimestamp":1700000000000000000,"RayID":"big","ClientRequestPath":"/${'x'.repeat(40_000)}"}`
  const body = batchText('http_requests', 20) + big + '\n' + batchText('http_requests', 20, 'unixnano', 20)
  assert.equal((await post(server, '/logpush/http_requests', body)).status, 200)
  assert.ok(await server.built.drained(60_000))
  const dead = await readDeadLetters(server, 'http_requests')
  assert.equal(dead.length, 1)
  assert.equal(dead[0].code, 'LPR_ERR_SINK_KAFKA_TOO_LARGE')
  assert.equal(dead[0].raw, big)
  const records = await consume(brokers, `${p}.http_requests`, 40)
  assert.equal(records.length, 40)
  assert.equal((await health(server)).sinks.kafka.stopped, null)
})

test('the broker killed with SIGKILL in the middle of the deliveries and restarted: every line answered 200 is on the topic', { timeout: 600_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const p = prefix()
  const topic = `${p}.network_analytics_logs`
  await createTopics(brokers, [topic])
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: brokers, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_BATCH_BYTES: String(16 * 1024), KAFKA_REQUEST_TIMEOUT_MS: '5000' })
  t.after(() => controlServer('kafka', 'start'))
  const answered: string[] = []
  const per = 2000
  const send = async (i: number): Promise<void> => {
    const body = batchText('network_analytics_logs', per, 'unixnano', i * per)
    const r = await post(server, '/logpush/network_analytics_logs', body)
    if (r.status === 200) answered.push(...body.split('\n').filter(Boolean))
  }
  await send(0)
  await until('delivery under way', 60_000, async () => (await health(server)).sinks.kafka.checkpoint.line > 0 || (await health(server)).sinks.kafka.delivered > 0 ? true : undefined)
  const sending = Promise.all([1, 2, 3, 4, 5].map(send))
  await controlServer('kafka', 'kill')
  await sending
  await send(6)
  assert.ok((await health(server)).sinks.kafka.pendingLines > 0, 'lines wait in the spool while the broker is down')
  await controlServer('kafka', 'start')
  assert.ok(await server.built.drained(300_000), 'delivered after the restart')
  assert.equal(answered.length, 7 * per, 'every batch was answered 200 (the spool took them while the broker was down)')
  const records = await consume(brokers, topic, answered.length, 180_000)
  const got = new Set(records.map((r) => r.value.toString('utf8')))
  const lost = answered.filter((l) => !got.has(l))
  assert.deepEqual(lost.length, 0, `${lost.length} of ${answered.length} answered lines missing`)
  t.diagnostic(`records ${records.length} for ${answered.length} lines answered 200 (${records.length - got.size} duplicates after the kill)`)
})

for (const mechanism of ['plain', 'scram-sha-256', 'scram-sha-512'] as const) {
  test(`SASL ${mechanism}: the right password delivers; a wrong one stops delivery with LPR_ERR_SINK_KAFKA_AUTH, nothing dead-lettered`, { timeout: 120_000 }, async (t) => {
    const brokers = requireKafka(t)
    if (!brokers) return
    const sasl = process.env.TEST_KAFKA_SASL_BROKERS!
    const p = prefix()
    await createTopics(brokers, [`${p}.dns_logs`])
    const env = { SINKS: 'kafka', KAFKA_BROKERS: sasl, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_SASL_MECHANISM: mechanism, KAFKA_USERNAME: 'lpr' }
    const good = await startServer(t, { ...env, KAFKA_PASSWORD: 'lpr-secret' })
    assert.equal((await post(good, '/logpush/dns_logs', batchText('dns_logs', 100))).status, 200)
    assert.ok(await good.built.drained(60_000), 'delivered over SASL')
    assert.equal((await consume(brokers, `${p}.dns_logs`, 100)).length, 100)
    const bad = await startServer(t, { ...env, KAFKA_PASSWORD: 'wrong' })
    assert.equal((await post(bad, '/logpush/dns_logs', batchText('dns_logs', 10, 'unixnano', 100))).status, 200)
    const stopped = await until('delivery stopped', 60_000, async () => (await health(bad)).sinks.kafka.stopped ?? undefined)
    assert.equal(stopped.code, 'LPR_ERR_SINK_KAFKA_AUTH')
    assert.deepEqual(await readDeadLetters({ dataDir: bad.dataDir }, 'dns_logs'), [])
  })
}

/** The broker's SSL listeners and the CA that signed their certificate (test/support/kafka.ts). */
function tlsListeners(): { tls: string, saslTls: string, caFile: string } {
  const { TEST_KAFKA_TLS_BROKERS: tls, TEST_KAFKA_SASL_TLS_BROKERS: saslTls, TEST_KAFKA_CA_FILE: caFile } = process.env
  if (!tls || !saslTls || !caFile) throw new Error('the test runner started Kafka without its SSL listeners (TEST_KAFKA_TLS_BROKERS, TEST_KAFKA_SASL_TLS_BROKERS, TEST_KAFKA_CA_FILE)')
  return { tls, saslTls, caFile }
}

test('TLS with KAFKA_CA_FILE: over the broker\'s SSL listener every line arrives byte-exact', { timeout: 180_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const { tls, caFile } = tlsListeners()
  const p = prefix()
  await createTopics(brokers, [`${p}.http_requests`])
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: tls, KAFKA_TLS: 'true', KAFKA_CA_FILE: caFile, KAFKA_TOPIC: `${p}.{dataset}`, KAFKA_BATCH_BYTES: String(32 * 1024) })
  const odd = '{"EdgeStartTimestamp":1700000000123456789,"RayID":"tls1","ClientRequestPath":"/caf\u00e9/\u{1F600}?q=\\"x\\"" }'
  const body = odd + '\n' + batchText('http_requests', 2000, 'unixnano', 10)
  assert.equal((await post(server, '/logpush/http_requests', body)).status, 200)
  assert.ok(await server.built.drained(120_000), 'delivered over TLS')
  assert.equal((await health(server)).sinks.kafka.stopped, null)
  const sent = body.split('\n').filter(Boolean)
  const records = await consume(brokers, `${p}.http_requests`, sent.length)
  assert.deepEqual(records.map((r) => r.value.toString('base64')).sort(), sent.map((l) => Buffer.from(l).toString('base64')).sort(), 'every line once, byte for byte')
})

test('TLS: a broker whose certificate KAFKA_CA_FILE\'s CA did not sign stops delivery with LPR_ERR_SINK_KAFKA_TLS in /health, once; nothing is dead-lettered; the service stays up', { timeout: 180_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const { tls } = tlsListeners()
  const p = prefix()
  await createTopics(brokers, [`${p}.dns_logs`])
  // A CA of its own, which never signed the broker's certificate.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-kafka-other-ca-'))
  const other = await makeCertificates(dir, 'other')
  const server = await startServer(t, { SINKS: 'kafka', KAFKA_BROKERS: tls, KAFKA_TLS: 'true', KAFKA_CA_FILE: other.caFile, KAFKA_TOPIC: `${p}.{dataset}` })
  assert.equal((await post(server, '/logpush/dns_logs', batchText('dns_logs', 100))).status, 200)
  const stopped = await until('delivery stopped', 90_000, async () => (await health(server)).sinks.kafka.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_KAFKA_TLS')
  assert.match(stopped.reason, /certificate was refused \((UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT_LOCALLY|SELF_SIGNED_CERT_IN_CHAIN)/)
  assert.ok(!stopped.reason.includes(dir), 'the CA file\'s path is not in the reason')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_sink_stopped\{sink="kafka",code="LPR_ERR_SINK_KAFKA_TLS"\} 1$/m)
  // A stop, not a crash loop: the retries that follow keep the one stop (same since), the
  // service answers, the lines wait in the spool.
  await new Promise((r) => setTimeout(r, 5_000))
  const later = await health(server)
  assert.equal(later.sinks.kafka.stopped?.code, 'LPR_ERR_SINK_KAFKA_TLS')
  assert.equal(later.sinks.kafka.stopped?.since, stopped.since, 'one stop, not one per retry')
  assert.ok(later.sinks.kafka.pendingLines > 0, 'the lines wait in the spool')
  assert.deepEqual(await readDeadLetters({ dataDir: server.dataDir }, 'dns_logs'), [])
  assert.equal((await consume(brokers, `${p}.dns_logs`, 0, 5_000)).length, 0, 'nothing was written')
})

/** The environment of the "SASL/SCRAM over TLS" example in docs/kafka.md, as written there. */
async function documentedScramOverTls(): Promise<Map<string, string>> {
  const doc = await readFile(join(packageRoot, 'docs', 'kafka.md'), 'utf8')
  const section = doc.split(/^## /m).find((s) => s.startsWith('Kafka with SASL/SCRAM over TLS'))
  const block = section?.match(/```sh\n([\s\S]*?)```/)?.[1]
  assert.ok(block, 'docs/kafka.md has the SASL/SCRAM over TLS example')
  return new Map([...block.matchAll(/^([A-Z_]+)=('[^']*'|\S+) \\$/gm)].map((m) => [m[1]!, m[2]!.replace(/^'(.*)'$/, '$1')]))
}

test('SASL/SCRAM over TLS with the settings of docs/kafka.md\'s example: the right password delivers byte-exact; a wrong one stops with LPR_ERR_SINK_KAFKA_AUTH', { timeout: 180_000 }, async (t) => {
  const brokers = requireKafka(t)
  if (!brokers) return
  const { saslTls, caFile } = tlsListeners()
  const documented = await documentedScramOverTls()
  // Every setting the example sets, and only those; the values that name the reader's cluster are
  // the test broker's.
  assert.deepEqual([...documented.keys()].sort(), ['KAFKA_BROKERS', 'KAFKA_CA_FILE', 'KAFKA_COMPRESSION', 'KAFKA_PASSWORD', 'KAFKA_SASL_MECHANISM', 'KAFKA_TLS', 'KAFKA_TOPIC', 'KAFKA_USERNAME', 'SINKS'])
  assert.equal(documented.get('KAFKA_TOPIC'), 'cloudflare.{dataset}')
  const p = prefix()
  await createTopics(brokers, [`${p}.cloudflare.dns_logs`])
  const env = { ...Object.fromEntries(documented), KAFKA_BROKERS: saslTls, KAFKA_CA_FILE: caFile, KAFKA_USERNAME: 'lpr', KAFKA_TOPIC: `${p}.${documented.get('KAFKA_TOPIC')}` }
  const good = await startServer(t, { ...env, KAFKA_PASSWORD: 'lpr-secret' })
  const body = batchText('dns_logs', 300)
  assert.equal((await post(good, '/logpush/dns_logs', body)).status, 200)
  assert.ok(await good.built.drained(60_000), 'delivered over SASL_SSL')
  const records = await consume(brokers, `${p}.cloudflare.dns_logs`, 300)
  assert.deepEqual(records.map((r) => r.value.toString()).sort(), body.split('\n').filter(Boolean).sort())
  const bad = await startServer(t, { ...env, KAFKA_PASSWORD: 'wrong' })
  assert.equal((await post(bad, '/logpush/dns_logs', batchText('dns_logs', 10, 'unixnano', 300))).status, 200)
  const stopped = await until('delivery stopped', 60_000, async () => (await health(bad)).sinks.kafka.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_KAFKA_AUTH')
  assert.deepEqual(await readDeadLetters({ dataDir: bad.dataDir }, 'dns_logs'), [])
})
