// The cost of shaping (issue 22, docs/shaping.md), in one run: the same http_requests lines (every
// documented field) delivered to the file and discard destinations without shaping and with one
// rule that has a three-clause filter (every line passes it, so every line pays for the rest), a
// drop of 10 fields, one hmac-sha256 and one truncate-ip. Per destination: CPU µs per line
// (process.cpuUsage over the delivery) and lines/s, each the median of rounds that alternate the
// variants, so that a noisy neighbour hits both alike. The third variant is a destination without
// rules in a service where another destination has them: the forwarder hands it the stored batch
// as it is, and the figure shows it is not slower than with no shaping configured at all.
//
//   npm run bench:shaping                   (also the last part of npm run bench)
//   BENCH_SHAPING_LINES=20000 npm run bench:shaping
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import type { DeliveryBatch, LineBlock, Sink } from '../../src/delivery.js'
import { DiscardSink, FileSink } from '../../src/sinks/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { buildShapers, shapeFor, type ShapingRule } from '../../src/shaping/index.js'
import { loadSchema, recordLine } from '../helpers/fixtures.js'

const LINES = Number(process.env.BENCH_SHAPING_LINES ?? 20_000)
const ROUNDS = Number(process.env.BENCH_SHAPING_ROUNDS ?? 3)
const BLOCK_LINES = 500

export const BENCH_RULE: ShapingRule = {
  name: 'bench',
  datasets: ['http_requests'],
  filter: {
    where: {
      and: [
        { key: 'EdgeResponseStatus', operator: 'geq', value: 0 },
        { key: 'ClientRequestHost', operator: '!eq', value: 'internal.example' },
        { key: 'ClientRequestPath', operator: '!startsWith', value: '/healthz' }
      ]
    }
  },
  drop: ['Cookies', 'RequestHeaders', 'ResponseHeaders', 'ClientRequestUserAgent', 'ClientRequestReferer', 'JA3Hash', 'JA4', 'JA4Signals', 'ClientMTLSAuthCertFingerprint', 'Subrequests'],
  transforms: [
    { field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'BENCH_SHAPING_KEY' },
    { field: 'OriginIP', type: 'truncate-ip' }
  ]
}

/** The lines as the spool hands them: strings for line readers, blocks of stored bytes for block readers. */
function storedBatch(lines: readonly string[], blocks: readonly Buffer[]): DeliveryBatch {
  return {
    seq: 1,
    dataset: 'http_requests',
    from: 0,
    count: lines.length,
    async * lines() { yield * lines },
    async * payloads() { for (const l of lines) yield Buffer.from(l) },
    async * blocks(): AsyncGenerator<LineBlock> { for (const data of blocks) yield { lines: BLOCK_LINES, data } }
  }
}

interface Figures { readonly cpuUsPerLine: number, readonly linesPerSecond: number }

async function measure(sink: Sink, batch: DeliveryBatch, shape: ((b: DeliveryBatch) => { batch: DeliveryBatch } | null) | undefined): Promise<Figures> {
  const cpu = process.cpuUsage()
  const started = performance.now()
  const r = await sink.deliver(shape?.(batch)?.batch ?? batch, async () => {}, new AbortController().signal)
  const seconds = (performance.now() - started) / 1000
  const used = process.cpuUsage(cpu)
  if (r.delivered !== batch.count) throw new Error(`${sink.name} delivered ${r.delivered} of ${batch.count}`)
  return { cpuUsPerLine: (used.user + used.system) / batch.count, linesPerSecond: batch.count / seconds }
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!

export interface ShapingBenchResult {
  readonly lines: number
  readonly rounds: number
  readonly rows: ReadonlyArray<{ sink: string, variant: string } & Figures>
}

export async function runShapingBench(): Promise<ShapingBenchResult> {
  process.env.BENCH_SHAPING_KEY ??= 'bench-key-0123456789abcdef0123456789'
  const schema = loadSchema('http_requests')
  const lines = Array.from({ length: LINES }, (_, i) => recordLine(schema, i))
  const blocks: Buffer[] = []
  for (let i = 0; i < lines.length; i += BLOCK_LINES) blocks.push(Buffer.from(lines.slice(i, i + BLOCK_LINES).join('\n') + '\n'))
  const batch = storedBatch(lines, blocks)
  const datasets = loadDatasets(schemasDir)
  // Shaping for one destination only: `shaped` is that destination's hook, `others` another's (none).
  const shapers = (sink: string) => buildShapers([{ ...BENCH_RULE, sinks: ['shaped'] }], ['shaped', sink], datasets)
  const dir = await mkdtemp(join(tmpdir(), 'lpr-bench-shaping-'))
  const log = pino({ level: 'silent' })
  const rows: Array<{ sink: string, variant: string } & Figures> = []
  try {
    for (const name of ['discard', 'file'] as const) {
      const sink: Sink = name === 'discard' ? new DiscardSink() : new FileSink({ dir, rotateBytes: 256 * 1024 * 1024, rotateMs: 3_600_000, gzipRotated: false, log })
      await sink.init(undefined)
      const s = shapers(name)
      const variants: Record<string, ((b: DeliveryBatch) => { batch: DeliveryBatch } | null) | undefined> = {
        'no shaping configured': undefined,
        'unshaped, another destination shaped': shapeFor(name, s, () => {}),
        shaped: shapeFor('shaped', s, () => {})
      }
      const samples = new Map<string, Figures[]>(Object.keys(variants).map((v) => [v, []]))
      await measure(sink, batch, variants.shaped) // warm-up: compiled code, open file
      for (let round = 0; round < ROUNDS; round++) {
        for (const [variant, shape] of Object.entries(variants)) samples.get(variant)!.push(await measure(sink, batch, shape))
      }
      for (const [variant, xs] of samples) rows.push({ sink: name, variant, cpuUsPerLine: median(xs.map((x) => x.cpuUsPerLine)), linesPerSecond: median(xs.map((x) => x.linesPerSecond)) })
      await sink.close()
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
  return { lines: LINES, rounds: ROUNDS, rows }
}

export function shapingTable(r: ShapingBenchResult): string {
  const out = [`Shaping cost: ${r.lines} http_requests lines (every field), median of ${r.rounds} alternating rounds; rule: 3-clause filter (all pass), drop 10 fields, hmac-sha256 ClientIP, truncate-ip OriginIP`, '',
    '| destination | variant | CPU µs/line | lines/s | vs no shaping |', '|---|---|---:|---:|---:|']
  for (const row of r.rows) {
    const base = r.rows.find((x) => x.sink === row.sink && x.variant === 'no shaping configured')!
    out.push(`| ${row.sink} | ${row.variant} | ${row.cpuUsPerLine.toFixed(2)} | ${Math.round(row.linesPerSecond).toLocaleString('en-US')} | ${(row.linesPerSecond / base.linesPerSecond).toFixed(2)}x |`)
  }
  return out.join('\n')
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runShapingBench()
  console.log(shapingTable(r))
}
