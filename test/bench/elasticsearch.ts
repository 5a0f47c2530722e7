// npm run bench:elasticsearch: end-to-end throughput of the service into a real Elasticsearch node, next to
// baselines measured in the same run on the same data, because these machines are shared and
// noisy and only ratios compare across runs:
//   - parse baseline: one core doing only gunzip + line split + JSON.parse of the batches;
//   - bare _bulk loader: the same documents (prepared before the clock starts) sent with _bulk
//     create, same bulk size and concurrency, straight to Elasticsearch.
// Results are printed and written as JSON to .bench-results/.
import { mkdir, writeFile } from 'node:fs/promises'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { waitDrained } from '../helpers/process.js'
import { launchElasticsearch, type ElasticsearchNode } from '../support/elasticsearch.js'
import { documentId, documentText } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot } from '../../src/paths.js'
import { spawnService } from './service.js'

const DATASET = process.env.BENCH_DATASET ?? 'network_analytics_logs'
const BATCHES = Number(process.env.BENCH_BATCHES ?? 12)
const LINES = Number(process.env.BENCH_LINES ?? 4000)
const SENDERS = Number(process.env.BENCH_SENDERS ?? 2)
const BULK_BYTES = 5 * 1024 * 1024
const CONCURRENCY = 2
const TOKEN = 'bench-token-0123456789'

async function es(url: string, path: string, init: RequestInit = {}): Promise<any> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`)
  return await res.json()
}

async function count(url: string, stream: string): Promise<number> {
  await es(url, `/${stream}/_refresh`, { method: 'POST' })
  return (await es(url, `/${stream}/_count`)).count
}

function parseBaseline(bodies: Buffer[]): number {
  const start = process.hrtime.bigint()
  let n = 0
  for (const body of bodies) {
    for (const line of gunzipSync(body).toString('utf8').split('\n')) {
      if (line) { JSON.parse(line); n++ }
    }
  }
  return n / (Number(process.hrtime.bigint() - start) / 1e9)
}

async function bareLoader(url: string, stream: string, texts: string[]): Promise<number> {
  const ingested = new Date().toISOString()
  const bodies: string[] = []
  let body = ''
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (!line) continue
      const doc = documentText(line, JSON.parse(line), { dataset: DATASET, namespace: 'x', eventTimeField: 'Datetime', ingested })
      body += `{"create":{"_index":"${stream}","_id":"${documentId(DATASET, line)}"}}\n${doc}\n`
      if (body.length >= BULK_BYTES) { bodies.push(body); body = '' }
    }
  }
  if (body) bodies.push(body)
  const start = process.hrtime.bigint()
  let next = 0
  let docs = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < bodies.length) {
      const b = bodies[next++]!
      const res = await es(url, '/_bulk?filter_path=errors,items.*.status', { method: 'POST', body: b, headers: { 'content-type': 'application/x-ndjson' } })
      if (res.errors) throw new Error('bare loader: item errors')
      docs += res.items.length
    }
  }))
  return docs / (Number(process.hrtime.bigint() - start) / 1e9)
}

async function serviceRun(url: string, namespace: string, bodies: Buffer[]): Promise<{ docsPerSec: number, latenciesMs: number[] }> {
  const { child, base } = await spawnService({ ADMIN_ON_INTAKE: 'true', LOGPUSH_TOKENS: TOKEN, LOG_LEVEL: 'warn', SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace, ELASTICSEARCH_BULK_BYTES: String(BULK_BYTES), ELASTICSEARCH_BULK_CONCURRENCY: String(CONCURRENCY) })
  try {
    // Warm-up: template installation and JIT, not timed.
    await fetch(`${base}/logpush/${DATASET}`, { method: 'POST', body: 'test', headers: { authorization: `Bearer ${TOKEN}` } })
    const latenciesMs: number[] = []
    let next = 0
    let docs = 0
    const start = process.hrtime.bigint()
    await Promise.all(Array.from({ length: SENDERS }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!
        const t0 = performance.now()
        const res = await fetch(`${base}/logpush/${DATASET}`, { method: 'POST', body, headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip' } })
        const json = await res.json() as { accepted: number }
        if (res.status !== 200) throw new Error(`service answered ${res.status}: ${JSON.stringify(json)}`)
        latenciesMs.push(performance.now() - t0)
        docs += json.accepted
      }
    }))
    // A 200 means spooled, not indexed: the clock runs until Elasticsearch has every document.
    await waitDrained(base, 600_000)
    return { docsPerSec: docs / (Number(process.hrtime.bigint() - start) / 1e9), latenciesMs }
  } finally {
    child.kill('SIGTERM')
  }
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function main(): Promise<void> {
  let node: ElasticsearchNode | null = null
  let url = process.env.ELASTICSEARCH_URL
  if (!url) {
    node = await launchElasticsearch({ log: (l) => console.error(l) })
    url = node.url
  }
  try {
    const texts = Array.from({ length: BATCHES }, (_, i) => batchText(DATASET, LINES, 'unixnano', i * LINES))
    const bodies = texts.map((t) => gzipSync(t))
    const lines = BATCHES * LINES
    const mb = texts.reduce((a, t) => a + Buffer.byteLength(t), 0) / 1024 / 1024
    const parse = parseBaseline(bodies)
    const stamp = Date.now().toString(36)
    const bare = await bareLoader(url, `logs-cloudflare.${DATASET}-barebench${stamp}`, texts)
    const service = await serviceRun(url, `svcbench${stamp}`, bodies)
    const stored = await count(url, `logs-cloudflare.${DATASET}-svcbench${stamp}`)
    if (stored !== lines) throw new Error(`service stored ${stored} documents, expected ${lines}`)
    const result = {
      date: new Date().toISOString(),
      machine: `${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}`,
      node: process.version,
      elasticsearch: node?.version ?? url,
      dataset: DATASET,
      batches: BATCHES,
      linesPerBatch: LINES,
      uncompressedMB: Number(mb.toFixed(1)),
      senders: SENDERS,
      parseBaselineLinesPerSec: Math.round(parse),
      bareBulkDocsPerSec: Math.round(bare),
      serviceDocsPerSec: Math.round(service.docsPerSec),
      serviceVsBareBulk: Number((service.docsPerSec / bare).toFixed(3)),
      serviceVsParseBaseline: Number((service.docsPerSec / parse).toFixed(3)),
      latencyMsP50: Math.round(percentile(service.latenciesMs, 50)),
      latencyMsP99: Math.round(percentile(service.latenciesMs, 99))
    }
    console.log('\nlogpush-receiver -> Elasticsearch, same data, same run')
    console.table({
      'parse baseline (1 core: gunzip+split+JSON.parse)': { 'lines or docs/s': result.parseBaselineLinesPerSec, ratio: 1 },
      'bare _bulk loader (prepared docs)': { 'lines or docs/s': result.bareBulkDocsPerSec, ratio: Number((bare / parse).toFixed(3)) },
      'service end to end (HTTP gzip -> validate -> ES)': { 'lines or docs/s': result.serviceDocsPerSec, ratio: result.serviceVsParseBaseline }
    })
    console.log(`service / bare _bulk = ${result.serviceVsBareBulk}; request latency p50 ${result.latencyMsP50} ms, p99 ${result.latencyMsP99} ms`)
    const dir = join(packageRoot, '.bench-results')
    await mkdir(dir, { recursive: true })
    const file = join(dir, `elasticsearch-${result.date.replace(/[:.]/g, '-')}.json`)
    await writeFile(file, JSON.stringify(result, null, 2) + '\n')
    console.log(`results: ${file}`)
  } finally {
    await node?.destroy()
  }
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
