// The service into each real destination server, next to a plain client loading the same lines
// into the same server in the same run (only ratios compare across runs on these shared machines):
//   - Elasticsearch and OpenSearch: a bare _bulk `create` of the documents, prepared before the
//     clock starts (same bulk size and concurrency as the service's defaults);
//   - Kafka: a bare @platformatic/kafka producer (idempotent, acks=all, zstd, the service's send size).
// The servers are the test set-up's (test/support), started in parallel. Per destination: lines/s
// of the plain client and of the service end to end (first request until the destination has every
// line), and of the service its CPU µs per line, peak RSS and request latency p50/p99. A parse
// baseline (one core: gunzip + split + JSON.parse of the same bodies) is measured beside them.
//
// Part of `npm run bench` (BENCH_DESTINATIONS=0 leaves it out; BENCH_QUICK=1 sends less), and on
// its own:
//   npm run bench:destinations                        all three
//   npm run bench:elasticsearch                       Elasticsearch only (ELASTICSEARCH_URL: a server of yours)
//   node dist/test/bench/destinations.js kafka        the ones named
//   BENCH_DEST_BATCHES=12 BENCH_DEST_LINES=4000 BENCH_DEST_SENDERS=2 BENCH_DEST_DATASET=network_analytics_logs
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { Admin, Producer, type MessageToProduce } from '@platformatic/kafka'
import { batchText } from '../helpers/fixtures.js'
import { launchElasticsearch } from '../support/elasticsearch.js'
import { launchKafka } from '../support/kafka.js'
import { launchOpenSearch } from '../support/opensearch.js'
import { documentId, documentText } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot } from '../../src/paths.js'
import { clkTck, cpuTicks, peakRssBytes, percentile, startService, TOKEN, waitDelivered } from './service.js'

const DESTINATIONS = ['elasticsearch', 'opensearch', 'kafka'] as const
export type Destination = (typeof DESTINATIONS)[number]

const BULK_BYTES = 5 * 1024 * 1024
const BULK_CONCURRENCY = 2
const KAFKA_SEND_BYTES = 512 * 1024
/** Lines of the untimed warm-up batch, delivered to the same stream or topic before the clock starts. */
const WARM_LINES = 50

export interface ServiceFigures {
  readonly linesPerSec: number
  readonly cpuUsPerLine: number
  readonly peakRssMB: number
  readonly p50: number
  readonly p99: number
}

export interface DestinationResult {
  readonly destination: Destination
  readonly server: string
  readonly bareClient: string
  readonly bareLinesPerSec: number
  readonly service: ServiceFigures
  readonly serviceVsBare: number
}

export interface DestinationsReport {
  readonly date: string
  readonly machine: string
  readonly node: string
  readonly dataset: string
  readonly batches: number
  readonly linesPerBatch: number
  readonly senders: number
  readonly parseBaselineLinesPerSec: number
  readonly results: readonly DestinationResult[]
}

/** A destination's server, how a plain client loads lines into it, and the service's settings for it. */
interface Target {
  readonly server: string
  readonly bareClient: string
  bare: (texts: string[], stamp: string) => Promise<number>
  env: (stamp: string) => Promise<Record<string, string>>
  /** After the service's run: what the server holds (`lines`, the warm-up's included), checked. */
  check: (stamp: string, lines: number) => Promise<void>
  destroy: () => Promise<void>
}

export async function runDestinationsBench(opts: { quick: boolean, only?: readonly Destination[], log?: (line: string) => void }): Promise<DestinationsReport> {
  const log = opts.log ?? ((line: string) => console.error(line))
  const dataset = process.env.BENCH_DEST_DATASET ?? 'network_analytics_logs'
  const batches = Number(process.env.BENCH_DEST_BATCHES ?? (opts.quick ? 4 : 12))
  const perBatch = Number(process.env.BENCH_DEST_LINES ?? (opts.quick ? 2000 : 4000))
  const senders = Number(process.env.BENCH_DEST_SENDERS ?? 2)
  const only = opts.only ?? DESTINATIONS
  const harnessOnly = (line: string): void => { if (line.includes('-harness]')) log(line) }
  const launched = await Promise.allSettled(only.map((d) => launch(d, dataset, harnessOnly)))
  const targets = launched.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []))
  try {
    const failed = launched.filter((r): r is PromiseRejectedResult => r.status === 'rejected')
    if (failed.length > 0) throw new Error(`could not start the destination servers:\n${failed.map((f) => String(f.reason)).join('\n')}`)
    const texts = Array.from({ length: batches }, (_, i) => batchText(dataset, perBatch, 'unixnano', i * perBatch))
    const bodies = texts.map((t) => gzipSync(t))
    const lines = batches * perBatch
    const results: DestinationResult[] = []
    for (const [i, destination] of only.entries()) {
      const target = targets[i]!
      const stamp = `${destination.slice(0, 2)}${Date.now().toString(36)}`
      const bare = await target.bare(texts, stamp)
      const service = await serviceRun(destination, dataset, await target.env(stamp), bodies, lines, senders)
      await target.check(stamp, WARM_LINES + lines)
      const result = { destination, server: target.server, bareClient: target.bareClient, bareLinesPerSec: bare, service, serviceVsBare: Number((service.linesPerSec / bare).toFixed(3)) }
      log(`${destination}: bare ${bare} lines/s, service ${service.linesPerSec} lines/s (${result.serviceVsBare}x), ${service.cpuUsPerLine} CPU µs/line, peak RSS ${service.peakRssMB} MB, p50 ${service.p50} ms, p99 ${service.p99} ms`)
      results.push(result)
    }
    return {
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`,
      node: process.version,
      dataset,
      batches,
      linesPerBatch: perBatch,
      senders,
      parseBaselineLinesPerSec: parseBaseline(bodies),
      results
    }
  } finally {
    await Promise.all(targets.map((t) => t.destroy().catch(() => {})))
  }
}

async function launch(destination: Destination, dataset: string, log: (line: string) => void): Promise<Target> {
  if (destination === 'kafka') {
    const kafka = await launchKafka(log)
    const topic = (stamp: string): string => `${stamp}.${dataset}`
    return {
      server: `Kafka ${kafka.version}`,
      bareClient: '@platformatic/kafka producer (idempotent, acks=all, zstd)',
      bare: async (texts, stamp) => {
        await createTopics(kafka.bootstrap, [`bare${stamp}`, topic(stamp)])
        return await kafkaBare(kafka.bootstrap, `bare${stamp}`, texts)
      },
      env: async (stamp) => ({ SINKS: 'kafka', KAFKA_BROKERS: kafka.bootstrap, KAFKA_TOPIC: `${stamp}.{dataset}`, KAFKA_COMPRESSION: 'zstd', KAFKA_BATCH_BYTES: String(KAFKA_SEND_BYTES) }),
      // waitDelivered counted every line acknowledged with acks=all.
      check: async () => {},
      destroy: () => kafka.destroy()
    }
  }
  // Elasticsearch and OpenSearch: the same _bulk API, the same documents.
  const node = destination === 'opensearch'
    ? await launchOpenSearch(log)
    : process.env.ELASTICSEARCH_URL
      ? { url: process.env.ELASTICSEARCH_URL, version: process.env.ELASTICSEARCH_URL, destroy: async () => {} }
      : await launchElasticsearch({ log })
  const prefix = destination === 'opensearch' ? 'OPENSEARCH' : 'ELASTICSEARCH'
  return {
    server: `${destination === 'opensearch' ? 'OpenSearch' : 'Elasticsearch'} ${node.version}`,
    bareClient: `_bulk create of prepared documents (${BULK_CONCURRENCY} in flight)`,
    bare: (texts, stamp) => bulkLoader(node.url, `logs-cloudflare.${dataset}-bare${stamp}`, dataset, texts),
    env: async (stamp) => ({ SINKS: destination, [`${prefix}_URL`]: node.url, [`${prefix}_NAMESPACE`]: `svc${stamp}`, [`${prefix}_BULK_BYTES`]: String(BULK_BYTES), [`${prefix}_BULK_CONCURRENCY`]: String(BULK_CONCURRENCY) }),
    check: async (stamp, lines) => {
      const stream = `logs-cloudflare.${dataset}-svc${stamp}`
      await fetch(`${node.url}/${stream}/_refresh`, { method: 'POST' })
      const stored = (await (await fetch(`${node.url}/${stream}/_count`)).json() as { count: number }).count
      if (stored !== lines) throw new Error(`${destination}: the service stored ${stored} documents, ${lines} were sent (the warm-up's included)`)
    },
    destroy: () => node.destroy()
  }
}

/** The service end to end: every body posted by `senders` senders, until the destination has every line. */
async function serviceRun(sink: Destination, dataset: string, env: Record<string, string>, bodies: Buffer[], lines: number, senders: number): Promise<ServiceFigures> {
  const service = await startService({ sinks: sink, env })
  const post = async (body: Buffer): Promise<void> => {
    const res = await fetch(`${service.url}/logpush/${dataset}`, { method: 'POST', body, headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' } })
    const text = await res.text()
    if (res.status !== 200) throw new Error(`service answered ${res.status}: ${text.slice(0, 500)}`)
  }
  try {
    // Warm-up (templates, topic check, JIT), not timed: one small batch delivered.
    await post(gzipSync(batchText(dataset, WARM_LINES, 'unixnano', 10_000_000)))
    await waitDelivered(service.url, sink, WARM_LINES)
    const ticks0 = await cpuTicks(service.pid)
    const latencies: number[] = []
    let next = 0
    const start = performance.now()
    await Promise.all(Array.from({ length: senders }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!
        const t0 = performance.now()
        await post(body)
        latencies.push(performance.now() - t0)
      }
    }))
    // A 200 means spooled, not delivered: the clock runs until the destination has every line.
    await waitDelivered(service.url, sink, WARM_LINES + lines)
    const seconds = (performance.now() - start) / 1000
    const cpuSeconds = (await cpuTicks(service.pid) - ticks0) / clkTck()
    return {
      linesPerSec: Math.round(lines / seconds),
      cpuUsPerLine: Number((cpuSeconds * 1e6 / lines).toFixed(1)),
      peakRssMB: Math.round(await peakRssBytes(service.pid) / 1024 / 1024),
      p50: Math.round(percentile(latencies, 50)),
      p99: Math.round(percentile(latencies, 99))
    }
  } catch (err) {
    console.error(service.output())
    throw err
  } finally {
    await service.stop(true)
  }
}

/** One core: gunzip + split + JSON.parse of the bodies, lines/s. */
function parseBaseline(bodies: Buffer[]): number {
  const start = performance.now()
  let n = 0
  for (const body of bodies) {
    for (const line of gunzipSync(body).toString('utf8').split('\n')) {
      if (line) { JSON.parse(line); n++ }
    }
  }
  return Math.round(n / ((performance.now() - start) / 1000))
}

async function bulkLoader(url: string, stream: string, dataset: string, texts: string[]): Promise<number> {
  const ingested = new Date().toISOString()
  const bodies: string[] = []
  let body = ''
  let n = 0
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue
      n++
      body += `{"create":{"_index":"${stream}","_id":"${documentId(dataset, line)}"}}\n${documentText(line, JSON.parse(line), { dataset, namespace: 'x', eventTimeField: 'Datetime', ingested })}\n`
      if (body.length >= BULK_BYTES) { bodies.push(body); body = '' }
    }
  }
  if (body) bodies.push(body)
  let next = 0
  const start = performance.now()
  await Promise.all(Array.from({ length: BULK_CONCURRENCY }, async () => {
    while (next < bodies.length) {
      const res = await fetch(`${url}/_bulk?filter_path=errors`, { method: 'POST', body: bodies[next++]!, headers: { 'content-type': 'application/x-ndjson' } })
      if (!res.ok || (await res.json() as { errors: boolean }).errors) throw new Error(`bare _bulk into ${url}: errors`)
    }
  }))
  return Math.round(n / ((performance.now() - start) / 1000))
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
  try {
    const start = performance.now()
    for (const messages of sends) await producer.send({ messages })
    return Math.round(n / ((performance.now() - start) / 1000))
  } finally {
    await producer.close()
  }
}

async function createTopics(brokers: string, topics: string[]): Promise<void> {
  const admin = new Admin({ clientId: 'lpr-bench', bootstrapBrokers: [brokers] })
  try {
    await admin.createTopics({ topics, partitions: 3 })
  } finally {
    await admin.close()
  }
}

export function destinationsMarkdown(r: DestinationsReport): string {
  const rows = [
    `Into real servers, ${r.batches} batches of ${r.linesPerBatch.toLocaleString('en-US')} \`${r.dataset}\` lines from ${r.senders} senders; ` +
      'the plain client loads the same lines into the same server in the same run; "x" is lines/s divided by the plain client\'s.',
    '',
    '| destination | loaded by | lines/s | x plain client | CPU µs/line | peak RSS MB | p50 ms | p99 ms |',
    '|---|---|---:|---:|---:|---:|---:|---:|',
    `| (parse baseline) | 1 core: gunzip + split + JSON.parse | ${r.parseBaselineLinesPerSec.toLocaleString('en-US')} | | | | | |`
  ]
  for (const d of r.results) {
    rows.push(`| ${d.server} | plain client: ${d.bareClient} | ${d.bareLinesPerSec.toLocaleString('en-US')} | 1 | | | | |`)
    rows.push(`| ${d.server} | the service end to end | ${d.service.linesPerSec.toLocaleString('en-US')} | ${d.serviceVsBare} | ${d.service.cpuUsPerLine} | ${d.service.peakRssMB} | ${d.service.p50} | ${d.service.p99} |`)
  }
  return rows.join('\n')
}

export function printDestinations(r: DestinationsReport): void {
  console.log(`\nService into real destination servers, same lines as a plain client, same run (${r.batches} x ${r.linesPerBatch} ${r.dataset} lines, ${r.senders} senders)`)
  console.table(Object.fromEntries([
    ['parse baseline (1 core)', { 'lines/s': r.parseBaselineLinesPerSec }],
    ...r.results.flatMap((d) => [
      [`${d.server}: plain client`, { 'lines/s': d.bareLinesPerSec }],
      [`${d.server}: service`, { 'lines/s': d.service.linesPerSec, 'x plain': d.serviceVsBare, 'CPU µs/line': d.service.cpuUsPerLine, 'peak RSS MB': d.service.peakRssMB, 'p50 ms': d.service.p50, 'p99 ms': d.service.p99 }]
    ])
  ]))
}

async function main (): Promise<void> {
  const named = process.argv.slice(2).filter((a) => !a.startsWith('-'))
  for (const n of named) if (!(DESTINATIONS as readonly string[]).includes(n)) throw new Error(`unknown destination ${n}: one of ${DESTINATIONS.join(', ')}`)
  const report = await runDestinationsBench({ quick: process.env.BENCH_QUICK === '1', only: named.length > 0 ? named as Destination[] : DESTINATIONS })
  printDestinations(report)
  if (process.argv.includes('--markdown')) console.log(`\n${destinationsMarkdown(report)}`)
  const dir = join(packageRoot, '.bench-results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `destinations-${report.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify(report, null, 2) + '\n')
  console.log(`results: ${file}`)
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error(err)
    process.exit(1)
  })
}
