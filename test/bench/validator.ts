// npm run bench:validator: LINE_VALIDATOR=ajv against LINE_VALIDATOR=fast (issue 26 item 2), in
// one run, alternating, so that both see the same machine.
//  1. In this process: the per-line check of the parse workers (LineChecker.checkText on lines
//     decoded as lines.ts decodes them) over the lines of a bench body, CPU µs per line, best of
//     several rounds; JSON.parse alone beside them as the floor the reference path stands on.
//  2. The service end to end (BENCH_VALIDATOR_SERVICE=0 leaves it out): one fresh process per
//     validator and round, warm-up batches, then BENCH_VALIDATOR_REQUESTS batches from
//     BENCH_SENDERS senders into BENCH_SINKS: lines/s and the server's CPU µs per line.
// Shared machines are noisy: only the ratios of one run say anything.
//
//   BENCH_DATASETS=network_analytics_logs:short,http_requests BENCH_SIZES_MB=5 BENCH_SENDERS=4 BENCH_SINKS=file npm run bench:validator
import { gunzipSync } from 'node:zlib'
import { loadDatasets } from '../../src/pipeline/datasets.js'
import { LineChecker, type Tally } from '../../src/pipeline/line-checker.js'
import { schemasDir } from '../../src/paths.js'
import { makeBody, type Body, type LineShape } from './bodies.js'
import { clkTck, cpuTicks, sendAll, startService, waitDelivered } from './service.js'

const VALIDATORS = ['ajv', 'fast'] as const
const env = (name: string, fallback: string): string => process.env[name] ?? fallback
const DATASETS = env('BENCH_DATASETS', 'http_requests,http_requests:short,network_analytics_logs,network_analytics_logs:short').split(',').map((d) => {
  const [dataset, shape = 'full'] = d.trim().split(':')
  return { dataset: dataset!, shape: shape as LineShape }
})
const SIZE_MB = Number(env('BENCH_SIZES_MB', '5').split(',')[0])
const SENDERS = Number(env('BENCH_SENDERS', '4').split(',')[0])
const SINK = env('BENCH_SINKS', 'file').split(',')[0]!
const ROUNDS = Number(env('BENCH_VALIDATOR_ROUNDS', '2'))
const MICRO_ROUNDS = 7
const REQUESTS = Number(env('BENCH_VALIDATOR_REQUESTS', '40'))
const SERVICE = env('BENCH_VALIDATOR_SERVICE', '1') !== '0'

const round = (n: number, digits = 2): number => Number(n.toFixed(digits))

function linesOf(body: Body): string[] {
  const data = gunzipSync(body.gzip)
  const out: string[] = []
  for (let start = 0, nl = data.indexOf(10); nl >= 0; start = nl + 1, nl = data.indexOf(10, start)) out.push(data.toString('utf8', start, nl))
  return out
}

function cpuUs(run: () => void): number {
  const t0 = process.cpuUsage()
  run()
  const u = process.cpuUsage(t0)
  return u.user + u.system
}

interface MicroRow { dataset: string, 'B/line': number, 'JSON.parse µs/line': number, 'ajv µs/line': number, 'fast µs/line': number, 'ajv ÷ fast': number }

function micro(body: Body): MicroRow {
  const lines = linesOf(body)
  const checkers = Object.fromEntries(VALIDATORS.map((v) => [v, loadDatasets(schemasDir, v).get(body.dataset)!]))
  const tally: Tally = { accepted: 0, countRejected () {}, countUnknownField () {}, countTypeMismatch () {} }
  const best: Record<string, number> = { parse: Infinity, ajv: Infinity, fast: Infinity }
  for (let r = 0; r < MICRO_ROUNDS; r++) {
    best.parse = Math.min(best.parse!, cpuUs(() => { for (const l of lines) JSON.parse(l) }))
    for (const v of VALIDATORS) {
      const checker = new LineChecker(checkers[v]!, 1 << 20, tally)
      best[v] = Math.min(best[v]!, cpuUs(() => {
        for (const l of lines) if (checker.checkText(l, l.length).kind !== 'valid') throw new Error(`${v}: a bench line was not valid`)
      }))
    }
  }
  const per = (k: string): number => round(best[k]! / lines.length)
  return { dataset: label(body), 'B/line': Math.round(body.bytes / body.lines), 'JSON.parse µs/line': per('parse'), 'ajv µs/line': per('ajv'), 'fast µs/line': per('fast'), 'ajv ÷ fast': round(best.ajv! / best.fast!) }
}

interface ServiceRow { dataset: string, validator: string, round: number, 'lines/s': number, 'CPU µs/line': number, 'p99 ms': number }

async function service(body: Body, validator: string, r: number): Promise<ServiceRow> {
  const svc = await startService({ sinks: SINK, env: { LINE_VALIDATOR: validator } })
  try {
    const warm = await sendAll(svc.url, body, 4, 4)
    await waitDelivered(svc.url, SINK, warm.accepted)
    const ticks0 = await cpuTicks(svc.pid)
    const t0 = performance.now()
    const sent = await sendAll(svc.url, body, REQUESTS, SENDERS)
    await waitDelivered(svc.url, SINK, warm.accepted + sent.accepted)
    const seconds = (performance.now() - t0) / 1000
    const cpu = (await cpuTicks(svc.pid) - ticks0) / clkTck()
    const sorted = [...sent.latenciesMs].sort((a, b) => a - b)
    return { dataset: label(body), validator, round: r, 'lines/s': Math.round(sent.accepted / seconds), 'CPU µs/line': round(cpu * 1e6 / sent.accepted), 'p99 ms': Math.round(sorted[Math.ceil(0.99 * sorted.length) - 1]!) }
  } finally {
    await svc.stop(true)
  }
}

function label(b: Body): string {
  return b.shape === 'short' ? `${b.dataset}:short` : b.dataset
}

const bodies = DATASETS.map((d) => makeBody(d.dataset, SIZE_MB, d.shape))
console.log(`\nValidator bench: LINE_VALIDATOR=ajv vs fast, ${SIZE_MB} MB bodies, Node ${process.version}`)
console.log('\n1. The per-line check in one thread (LineChecker.checkText), CPU µs per line, best of', MICRO_ROUNDS)
console.table(bodies.map(micro))
if (SERVICE) {
  console.log(`\n2. The service end to end: ${REQUESTS} batches from ${SENDERS} senders into ${SINK}, validators alternating, ${ROUNDS} rounds each`)
  const rows: ServiceRow[] = []
  for (const body of bodies) {
    for (let r = 1; r <= ROUNDS; r++) {
      // Alternating which goes first, so neither always runs on the warmer (or busier) machine.
      for (const v of r % 2 === 1 ? VALIDATORS : [...VALIDATORS].reverse()) rows.push(await service(body, v, r))
    }
  }
  console.table(rows)
  const summary = bodies.map((b) => {
    const of = (v: string): ServiceRow[] => rows.filter((x) => x.dataset === label(b) && x.validator === v)
    const mean = (xs: ServiceRow[], k: 'lines/s' | 'CPU µs/line'): number => xs.reduce((a, x) => a + x[k], 0) / xs.length
    return {
      dataset: label(b),
      'ajv lines/s': Math.round(mean(of('ajv'), 'lines/s')),
      'fast lines/s': Math.round(mean(of('fast'), 'lines/s')),
      'fast ÷ ajv lines/s': round(mean(of('fast'), 'lines/s') / mean(of('ajv'), 'lines/s')),
      'ajv CPU µs/line': round(mean(of('ajv'), 'CPU µs/line')),
      'fast CPU µs/line': round(mean(of('fast'), 'CPU µs/line')),
      'fast ÷ ajv CPU': round(mean(of('fast'), 'CPU µs/line') / mean(of('ajv'), 'CPU µs/line'))
    }
  })
  console.log('\nMeans of the rounds')
  console.table(summary)
}
