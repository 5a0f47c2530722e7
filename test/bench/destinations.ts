// npm run bench:destinations: end-to-end throughput of the service into a real OpenSearch node
// and a real Kafka broker (the test set-up's, test/support), each next to a plain client loading
// the same lines in the same run (only ratios compare across runs on these shared machines):
//   - OpenSearch: bare _bulk `create` of the prepared documents (same bulk size), then the service;
//   - Kafka: a bare @platformatic/kafka producer (idempotent, acks=all, same compression and send size)
//     sending the lines, then the service.
// Per service run: lines/s (until the destination has everything), CPU µs per line and peak RSS
// of the service process, request latency p50/p99. JSON results go to .bench-results/.
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { Admin, Producer, type MessageToProduce } from '@platformatic/kafka'
import { batchText } from '../helpers/fixtures.js'
import { peakRssBytes, waitDrained } from '../helpers/process.js'
import { launchKafka } from '../support/kafka.js'
import { launchOpenSearch } from '../support/opensearch.js'
import { documentId, documentText } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot } from '../../src/paths.js'
import { spawnService } from './service.js'

const DATASET = process.env.BENCH_DATASET ?? 'network_analytics_logs'
const BATCHES = Number(process.env.BENCH_BATCHES ?? 12)
const LINES = Number(process.env.BENCH_LINES ?? 4000)
const SENDERS = Number(process.env.BENCH_SENDERS ?? 2)
const BULK_BYTES = 5 * 1024 * 1024
const KAFKA_SEND_BYTES = 512 * 1024
const TOKEN = 'bench-token-0123456789'
const CLK_TCK = 100

interface ServiceResult { linesPerSec: number, cpuUsPerLine: number, peakRssMB: number, p50: number, p99: number }

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function cpuSeconds(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK
}

async function serviceRun(env: Record<string, string>, bodies: Buffer[], lines: number): Promise<ServiceResult> {
  const { child, base } = await spawnService({ LOGPUSH_TOKENS: TOKEN, LOG_LEVEL: 'warn', ...env })
  try {
    // Warm-up (templates, topic check, JIT), not timed: one small batch delivered.
    await fetch(`${base}/logpush/${DATASET}`, { method: 'POST', body: gzipSync(batchText(DATASET, 50, 'unixnano', 10_000_000)), headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' } })
    await waitDrained(base, 120_000)
    const cpu0 = await cpuSeconds(child.pid!)
    const latencies: number[] = []
    let next = 0
    const start = process.hrtime.bigint()
    await Promise.all(Array.from({ length: SENDERS }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!
        const t0 = performance.now()
        const res = await fetch(`${base}/logpush/${DATASET}`, { method: 'POST', body, headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' } })
        await res.text()
        if (res.status !== 200) throw new Error(`service answered ${res.status}`)
        latencies.push(performance.now() - t0)
      }
    }))
    await waitDrained(base, 600_000)
    const seconds = Number(process.hrtime.bigint() - start) / 1e9
    const cpu = await cpuSeconds(child.pid!) - cpu0
    return {
      linesPerSec: Math.round(lines / seconds),
      cpuUsPerLine: Number((cpu * 1e6 / lines).toFixed(1)),
      peakRssMB: Math.round(await peakRssBytes(child.pid!) / 1024 / 1024),
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99))
    }
  } finally {
    child.kill('SIGTERM')
  }
}

async function openSearchBare(url: string, stream: string, texts: string[]): Promise<number> {
  const ingested = new Date().toISOString()
  const bodies: string[] = []
  let body = ''
  let n = 0
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue
      n++
      body += `{"create":{"_index":"${stream}","_id":"${documentId(DATASET, line)}"}}\n${documentText(line, JSON.parse(line), { dataset: DATASET, namespace: 'x', eventTimeField: 'Datetime', ingested })}\n`
      if (body.length >= BULK_BYTES) { bodies.push(body); body = '' }
    }
  }
  if (body) bodies.push(body)
  const start = process.hrtime.bigint()
  for (const b of bodies) {
    const res = await fetch(`${url}/_bulk?filter_path=errors`, { method: 'POST', body: b, headers: { 'content-type': 'application/x-ndjson' } })
    if (!res.ok || (await res.json() as { errors: boolean }).errors) throw new Error('bare _bulk: errors')
  }
  return Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9))
}

async function kafkaBare(brokers: string, topic: string, texts: string[]): Promise<number> {
  const producer = new Producer({ clientId: 'lpr-bench', bootstrapBrokers: [brokers], idempotent: true, acks: -1, compression: 'zstd', autocreateTopics: false })
  const sends: MessageToProduce[][] = []
  let batch: MessageToProduce[] = []
  let bytes = 0
  let n = 0
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue
      n++
      batch.push({ topic, value: Buffer.from(line) })
      bytes += line.length
      if (bytes >= KAFKA_SEND_BYTES) { sends.push(batch); batch = []; bytes = 0 }
    }
  }
  if (batch.length) sends.push(batch)
  const start = process.hrtime.bigint()
  for (const messages of sends) await producer.send({ messages })
  const rate = Math.round(n / (Number(process.hrtime.bigint() - start) / 1e9))
  await producer.close()
  return rate
}

async function createTopics(brokers: string, topics: string[]): Promise<void> {
  const admin = new Admin({ clientId: 'lpr-bench', bootstrapBrokers: [brokers] })
  await admin.createTopics({ topics, partitions: 3 })
  await admin.close()
}

async function main(): Promise<void> {
  const [os, kafka] = await Promise.all([launchOpenSearch((l) => { if (l.includes('-harness]')) console.error(l) }), launchKafka((l) => { if (l.includes('-harness]')) console.error(l) })])
  try {
    const texts = Array.from({ length: BATCHES }, (_, i) => batchText(DATASET, LINES, 'unixnano', i * LINES))
    const bodies = texts.map((t) => gzipSync(t))
    const lines = BATCHES * LINES
    const stamp = Date.now().toString(36)
    const osBare = await openSearchBare(os.url, `logs-cloudflare.${DATASET}-bare${stamp}`, texts)
    const osService = await serviceRun({ SINKS: 'opensearch', OPENSEARCH_URL: os.url, OPENSEARCH_NAMESPACE: `svc${stamp}`, OPENSEARCH_BULK_BYTES: String(BULK_BYTES) }, bodies, lines)
    await createTopics(kafka.bootstrap, [`bare${stamp}`, `svc${stamp}.${DATASET}`])
    const kBare = await kafkaBare(kafka.bootstrap, `bare${stamp}`, texts)
    const kService = await serviceRun({ SINKS: 'kafka', KAFKA_BROKERS: kafka.bootstrap, KAFKA_TOPIC: `svc${stamp}.{dataset}`, KAFKA_COMPRESSION: 'zstd', KAFKA_BATCH_BYTES: String(KAFKA_SEND_BYTES) }, bodies, lines)
    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`,
      node: process.version,
      opensearch: os.version,
      kafka: kafka.version,
      dataset: DATASET,
      batches: BATCHES,
      linesPerBatch: LINES,
      senders: SENDERS,
      opensearchBareBulkLinesPerSec: osBare,
      opensearchService: osService,
      opensearchServiceVsBare: Number((osService.linesPerSec / osBare).toFixed(3)),
      kafkaBareProducerLinesPerSec: kBare,
      kafkaService: kService,
      kafkaServiceVsBare: Number((kService.linesPerSec / kBare).toFixed(3))
    }
    console.log('\nlogpush-receiver -> OpenSearch and Kafka, same data, same run')
    console.table({
      'OpenSearch bare _bulk (prepared docs)': { 'lines/s': osBare },
      'OpenSearch service end to end': { 'lines/s': osService.linesPerSec, 'CPU µs/line': osService.cpuUsPerLine, 'peak RSS MB': osService.peakRssMB, 'p50 ms': osService.p50, 'p99 ms': osService.p99 },
      'Kafka bare @platformatic/kafka producer (zstd, acks=all)': { 'lines/s': kBare },
      'Kafka service end to end': { 'lines/s': kService.linesPerSec, 'CPU µs/line': kService.cpuUsPerLine, 'peak RSS MB': kService.peakRssMB, 'p50 ms': kService.p50, 'p99 ms': kService.p99 }
    })
    const dir = join(packageRoot, '.bench-results')
    await mkdir(dir, { recursive: true })
    const file = join(dir, `destinations-${result.date.replace(/[:.]/g, '-')}.json`)
    await writeFile(file, JSON.stringify(result, null, 2) + '\n')
    console.log(`results: ${file}`)
  } finally {
    await Promise.all([os.destroy(), kafka.destroy()])
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
