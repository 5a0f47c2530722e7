// npm run bench: the real service (`node dist/src/main.js`, one fresh process per scenario) fed
// gzip NDJSON batches over loopback the way Logpush sends them, for every combination of dataset,
// batch size, number of concurrent senders and destination, measured end to end: from the first
// request until every request got its 200 and the destination has delivered every line. Next to
// it, in the same run and on the same bodies, one core doing only gunzip + split + JSON.parse:
// shared machines are noisy, so throughput is reported as a ratio to that baseline, which is what
// compares across runs and commits.
//
//   npm run bench                               full matrix, a few minutes
//   BENCH_QUICK=1 npm run bench                 smoke run, a few minutes (one of them starting the servers)
//   BENCH_DATASETS=http_requests BENCH_SIZES_MB=5 BENCH_SENDERS=4 BENCH_SINKS=file npm run bench
//   BENCH_DATASETS=network_analytics_logs:short ...  lines with a short field set (bodies.ts)
//   BENCH_CPU_PROF=1 ...                        the service runs with --cpu-prof; profiles summarised
//   node dist/test/bench/run.js --markdown      also print a Markdown table for README
//   node dist/test/bench/run.js --markdown --from=.bench-results/bench-….json   re-print a saved run
//   BENCH_RESEND_ENTRIES=5000000,50000000       start-up on a re-send index of that many batches
//                                               (resend-startup.ts; default those two, none when quick)
//   BENCH_RESEND_ONLY=1 ...                     only those start-ups and the re-send intake scenario, not the matrix
//   BENCH_DEDUPE_ENTRIES=5000000                intake with re-send detection on, over an index of that many
//                                               keys, against the same scenario with it off, alternating, in
//                                               the same run (BENCH_DEDUPE=0: not run; BENCH_DEDUPE_DATASET,
//                                               BENCH_DEDUPE_MB: its body, default http_requests:short, 1 MB)
//   BENCH_DESTINATIONS=0 npm run bench          without the real-server part: the service into a real
//                                               Elasticsearch, OpenSearch and Kafka beside a plain client
//                                               loading the same lines (destinations.ts, BENCH_DEST_*)
//   BENCH_BEFORE=/path/to/old-checkout npm run bench  also measures that checkout's service (built, with
//                                               its own node_modules), each scenario right before
//                                               this one's, against the same baseline: a
//                                               before/after table from one run
//
// Results are written as JSON to .bench-results/bench-<ISO time>.json.
import { execFileSync } from 'node:child_process'
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from 'node:os'
import { basename, join } from 'node:path'
import { settings } from '../../src/config/settings.js'
import { packageRoot } from '../../src/paths.js'
import { measureBaseline, type Baseline } from './baseline.js'
import { makeBody, MB, type Body, type LineShape } from './bodies.js'
import { printSummary, summariseFiles } from './profile-summary.js'
import { runShapingBench, shapingTable } from './shaping.js'
import { dropStartupStates, fillSpool, measureStartup, type StartupResult } from './resend-startup.js'
import { countFsyncs } from './fsyncs.js'
import { clkTck, cpuProfiles, cpuTicks, peakRssBytes, percentile, sendAll, startService, threadDelta, threadTicks, waitDelivered, type ServiceOptions } from './service.js'
import { destinationsMarkdown, printDestinations, runDestinationsBench, type DestinationsReport } from './destinations.js'

const QUICK = process.env.BENCH_QUICK === '1'
const MARKDOWN = process.argv.includes('--markdown') || process.env.BENCH_MARKDOWN === '1'
const FROM = process.argv.find((a) => a.startsWith('--from='))?.slice(7)
const CPU_PROF = process.env.BENCH_CPU_PROF === '1'
const BEFORE = process.env.BENCH_BEFORE ? join(process.env.BENCH_BEFORE, 'dist', 'src', 'main.js') : null

function list(name: string, fallback: string[]): string[] {
  const v = process.env[name]
  return v ? v.split(',').map((s) => s.trim()).filter(Boolean) : fallback
}

function numbers(name: string, fallback: number[]): number[] {
  const out = list(name, fallback.map(String)).map(Number)
  if (out.some((n) => !(n > 0))) throw new Error(`${name} must be a comma-separated list of positive numbers`)
  return out
}

// A dataset with ':short' sends lines of the field set in bodies.ts, without it every field.
const DATASETS = list('BENCH_DATASETS', ['http_requests', 'http_requests:short', 'network_analytics_logs', 'network_analytics_logs:short'])
  .map((d) => {
    const [dataset, shape = 'full'] = d.split(':')
    if (shape !== 'full' && shape !== 'short') throw new Error(`BENCH_DATASETS: ${d}: the shape after ':' is full or short`)
    return { dataset: dataset!, shape: shape as LineShape }
  })
const SIZES_MB = numbers('BENCH_SIZES_MB', [5, 100])
// A smoke run keeps 4 senders only, the number the p99 target is stated for.
const SENDERS = numbers('BENCH_SENDERS', QUICK ? [4] : [1, 4, 16])
// The destination that reads every line and keeps none was called 'null' and is now 'discard'
// (YAML reads null as no value); either name selects whichever this build of the service has.
const DISCARD = (settings.sinks.pattern as string).includes('discard') ? 'discard' : 'null'
const SINKS = list('BENCH_SINKS', ['file', DISCARD]).map((s) => (s === 'null' || s === 'discard' ? DISCARD : s))
const BASELINE_REPEATS = 3
const CHECKPOINT_SETTLE_MS = 1200
const RESEND_ENTRIES = process.env.BENCH_RESEND_ENTRIES !== undefined
  ? list('BENCH_RESEND_ENTRIES', []).map(Number)
  : (QUICK ? [] : [5_000_000, 50_000_000])
const RESEND_ONLY = process.env.BENCH_RESEND_ONLY === '1'
// Intake with re-send detection on, over a re-send index of this many keys, against the same
// scenario with it off (the matrix runs with it off: it would measure nothing else otherwise).
const DEDUPE_ENTRIES = process.env.BENCH_DEDUPE === '0' ? 0 : Number(process.env.BENCH_DEDUPE_ENTRIES ?? (QUICK && process.env.BENCH_DEDUPE !== '1' ? 0 : 5_000_000))
const [DEDUPE_DATASET = 'http_requests', DEDUPE_SHAPE = 'short'] = (process.env.BENCH_DEDUPE_DATASET ?? 'http_requests:short').split(':')
const DEDUPE_MB = Number(process.env.BENCH_DEDUPE_MB ?? 1)
const DEDUPE_SENDERS = 4
const DEDUPE_ROUNDS = Number(process.env.BENCH_DEDUPE_ROUNDS ?? 3)
const WARMUP_BATCHES = availableParallelism()
// Each baseline run parses at least this much, so that a 5 MB body is timed over many passes.
const BASELINE_MB = Number(process.env.BENCH_BASELINE_MB ?? (QUICK ? 20 : 100))

/**
 * Uncompressed MB sent per scenario. Enough that start-up effects and the 10 ms drain poll are
 * noise, little enough that the whole matrix stays within a few minutes on two cores.
 * BENCH_SCENARIO_MB sets one amount for every batch size.
 */
function scenarioMB(sizeMB: number): number {
  const fixed = process.env.BENCH_SCENARIO_MB
  if (fixed) return Number(fixed)
  if (QUICK) return sizeMB >= 50 ? sizeMB : 40
  return sizeMB >= 50 ? 4 * sizeMB : 300
}

export interface ScenarioResult {
  readonly dataset: string
  /** Absent in results from before short lines were measured: every field. */
  readonly shape?: LineShape
  readonly avgLineBytes?: number
  readonly batchMB: number
  readonly senders: number
  readonly sink: string
  readonly requests: number
  /** At most `requests`: 16 senders of 4 uploads of 100 MB keep only 4 uploads in flight. */
  readonly inFlight: number
  readonly lines: number
  readonly uncompressedBytes: number
  readonly wireBytes: number
  readonly seconds: number
  /** From the last 200 until the destination had delivered everything. */
  readonly drainTailSeconds: number
  readonly linesPerSec: number
  readonly mbPerSec: number
  readonly vsBaseline: number
  readonly latencyMsP50: number
  readonly latencyMsP99: number
  readonly latencyMsMax: number
  readonly peakRssMB: number
  readonly serverCpuSeconds: number
  readonly serverCpuSecondsPerMillionLines: number
  /** Server CPU seconds per wall second: how many of the machine's cores the service kept busy. */
  readonly serverCores: number
  /**
   * The service's CPU µs per line by kind of thread (/proc/<pid>/task): MainThread, WorkerThread
   * (parse workers), libuv-worker (inflate, file I/O), V8Worker (garbage collection helpers).
   */
  readonly threadsUsPerLine?: Readonly<Record<string, number>>
  /** The load generator's own CPU, which competes with the service for the same cores. */
  readonly benchCpuSeconds: number
  /** The spool's fsyncs per accepted batch (lpr_spool_fsyncs_total); null for a build without the counter. */
  readonly spoolFsyncsPerBatch?: number | null
  /** The process's fsync + fdatasync system calls per accepted batch (perf; the destination's own too); null without perf. */
  readonly fsyncsPerBatch?: number | null
  /** The service's .cpuprofile files with BENCH_CPU_PROF=1: the main thread and each worker thread. */
  readonly profiles?: readonly string[]
  /** The measured span on the machine's monotonic clock, µs: the profile's samples to summarise. */
  readonly profileWindowUs?: readonly [number, number]
}

const round = (n: number, digits = 0): number => Number(n.toFixed(digits))

async function runScenario(body: Body, warmup: Body, senders: number, sink: string, baseline: Baseline, main?: string, service0?: Pick<ServiceOptions, 'env' | 'prepare'>): Promise<ScenarioResult> {
  const requests = Math.max(1, Math.round(scenarioMB(body.sizeMB) / body.sizeMB))
  const profDir = CPU_PROF ? await mkdtemp(join(tmpdir(), 'lpr-bench-prof-')) : undefined
  const service = await startService({ sinks: sink, cpuProfDir: profDir, ...(main ? { main } : {}), ...service0 })
  let result: Omit<ScenarioResult, 'profiles' | 'profileWindowUs'>
  let window: [number, number] = [0, 0]
  try {
    // Not timed: the first batches pay for JIT compilation and for opening the destination's
    // files. One per parse worker (one per core by default), sent together so that each worker
    // gets one: with a single warm-up batch the other worker compiled its code during the first
    // measured batches, which were then the slowest of the scenario (its p99) by a third.
    const warm = await sendAll(service.url, warmup, WARMUP_BATCHES, WARMUP_BATCHES)
    await waitDelivered(service.url, sink, warm.accepted)
    // Checkpoints may be written up to SPOOL_CHECKPOINT_INTERVAL_MS (1 s) after a delivery: the
    // warm-up's land before the fsync window opens, the measured batches' before it closes.
    await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_SETTLE_MS))
    const fsyncs = await countFsyncs(service.url, service.pid)
    const ticks0 = await cpuTicks(service.pid)
    const threads0 = await threadTicks(service.pid)
    const cpu0 = process.cpuUsage()
    const t0 = performance.now()
    const t0Us = Number(process.hrtime.bigint() / 1000n)
    const sent = await sendAll(service.url, body, requests, senders)
    const tSent = performance.now()
    await waitDelivered(service.url, sink, warm.accepted + sent.accepted)
    const t1 = performance.now()
    window = [t0Us, Number(process.hrtime.bigint() / 1000n)]
    const ticks1 = await cpuTicks(service.pid)
    const threads = threadDelta(threads0, await threadTicks(service.pid))
    const cpu = process.cpuUsage(cpu0)
    const peak = await peakRssBytes(service.pid)
    await new Promise((resolve) => setTimeout(resolve, CHECKPOINT_SETTLE_MS))
    const synced = await fsyncs.stop()
    const seconds = (t1 - t0) / 1000
    const lines = sent.accepted
    const serverCpu = (ticks1 - ticks0) / clkTck()
    result = {
      dataset: body.dataset,
      shape: body.shape,
      avgLineBytes: Math.round(body.bytes / body.lines),
      batchMB: body.sizeMB,
      senders,
      sink,
      requests,
      inFlight: Math.min(senders, requests),
      lines,
      uncompressedBytes: sent.bytes,
      wireBytes: sent.wireBytes,
      seconds: round(seconds, 3),
      drainTailSeconds: round((t1 - tSent) / 1000, 3),
      linesPerSec: Math.round(lines / seconds),
      mbPerSec: round(sent.bytes / MB / seconds, 1),
      vsBaseline: round(lines / seconds / baseline.best.linesPerSec, 3),
      latencyMsP50: Math.round(percentile(sent.latenciesMs, 50)),
      latencyMsP99: Math.round(percentile(sent.latenciesMs, 99)),
      latencyMsMax: Math.round(Math.max(...sent.latenciesMs)),
      peakRssMB: round(peak / 1024 / 1024, 1),
      serverCpuSeconds: round(serverCpu, 2),
      serverCpuSecondsPerMillionLines: round(serverCpu / (lines / 1e6), 2),
      serverCores: round(serverCpu / seconds, 2),
      threadsUsPerLine: Object.fromEntries(Object.entries(threads).filter(([, t]) => t > 0).sort(([a], [b]) => a < b ? -1 : 1)
        .map(([name, t]) => [name, round(t / clkTck() * 1e6 / sent.accepted, 2)])),
      benchCpuSeconds: round((cpu.user + cpu.system) / 1e6, 2),
      spoolFsyncsPerBatch: synced.spool === null ? null : round(synced.spool / requests, 2),
      fsyncsPerBatch: synced.process === null ? null : round(synced.process / requests, 2)
    }
  } catch (err) {
    console.error(service.output())
    throw err
  } finally {
    // A clean stop when profiling (the profile is written at exit); otherwise SIGKILL, because a
    // clean stop gzips the events file and takes seconds that measure nothing.
    await service.stop(!CPU_PROF)
  }
  if (!profDir) return result
  const files = await cpuProfiles(profDir)
  if (files.length === 0) throw new Error(`the service wrote no CPU profile in ${profDir}`)
  const dir = join(packageRoot, '.bench-results', `profile-${body.dataset}-${body.sizeMB}MB-${senders}s-${sink}-${stamp()}`)
  await mkdir(dir, { recursive: true })
  const kept = files.map((f) => join(dir, basename(f)))
  for (let i = 0; i < files.length; i++) await copyFile(files[i]!, kept[i]!)
  await rm(profDir, { recursive: true, force: true })
  return { ...result, profiles: kept, profileWindowUs: window }
}

function stamp(): string {
  return new Date().toISOString().replace(/[:.]/g, '-')
}

function git(args: string[]): string | null {
  return gitIn(packageRoot, args)
}

function gitIn(cwd: string, args: string[]): string | null {
  try { return execFileSync('git', args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() } catch { return null }
}

interface Report {
  readonly date: string
  readonly quick: boolean
  readonly cpuProfile: boolean
  readonly machine: {
    readonly cpuModel: string
    readonly cpus: number
    readonly memoryGB: number
    readonly kernel: string
    readonly clkTck: number
    /** 1-minute load average before and after: other work on a shared machine skews a run. */
    readonly loadAverage: readonly [number, number]
  }
  readonly node: string
  readonly commit: string | null
  /** Uncommitted changes in the tree the bench ran from: the commit alone does not describe it. */
  readonly dirty: boolean | null
  readonly units: string
  /** Start-up on a full re-send index (resend-startup.ts), this build and BENCH_BEFORE's. */
  readonly resendStartup?: readonly StartupResult[]
  /** One scenario with re-send detection off and on (over `entries` keys), alternating rounds. */
  readonly dedupeIntake?: DedupeIntake
  /** The matrix and amounts this run used (defaults, BENCH_QUICK or the BENCH_* overrides). */
  readonly config: {
    readonly datasets: readonly string[]
    readonly sizesMB: readonly number[]
    readonly senders: readonly number[]
    readonly sinks: readonly string[]
    readonly scenarioMB: Readonly<Record<string, number>>
    readonly baselineMB: number
    readonly baselineRepeats: number
  }
  readonly bodies: readonly { dataset: string, shape?: LineShape, sizeMB: number, lines: number, bytes: number, gzipBytes: number, avgLineBytes: number }[]
  readonly baselines: readonly Baseline[]
  readonly scenarios: readonly ScenarioResult[]
  /** BENCH_BEFORE: the same scenarios on that build, each measured right before this one's. */
  readonly before?: { readonly checkout: string, readonly commit: string | null, readonly scenarios: readonly ScenarioResult[] }
  readonly targets: readonly Target[]
  /** The service into real Elasticsearch, OpenSearch and Kafka servers beside plain clients (destinations.ts). */
  readonly destinations?: DestinationsReport
}

interface DedupeIntake {
  readonly entries: number
  readonly rounds: ReadonlyArray<{ readonly dedupe: 'off' | 'on', readonly result: ScenarioResult }>
  /** On over off, each the median of its rounds: lines/s, p99, server CPU per line. */
  readonly linesPerSecRatio: number
  readonly p99Ratio: number
  readonly cpuPerLineRatio: number
}

interface Target { readonly target: string, readonly measured: string, readonly met: boolean | null }

const short = (dataset: string): string => (dataset === 'network_analytics_logs' ? 'network_analytics' : dataset)

/** A dataset and its line shape as BENCH_DATASETS names them. */
function label(dataset: string, shape: LineShape | undefined): string {
  return shape === 'short' ? `${dataset}:short` : dataset
}

const name = (s: { dataset: string, shape?: LineShape }): string => label(short(s.dataset), s.shape)

/**
 * The targets of the speed issue (#26), measured here and reported, never asserted: against the
 * one-core baseline, short lines (`:short`) at least 0.8x and at most 3 µs of the service's CPU
 * per line, full lines at least 1.5x, in every scenario; peak RSS under 200 MB and p99 under
 * 300 ms for 5 MB batches from 4 senders.
 */
function targets(scenarios: readonly ScenarioResult[]): Target[] {
  const out: Target[] = []
  const worstOf = (of: readonly ScenarioResult[]): ScenarioResult => of.reduce((a, s) => (s.vsBaseline < a.vsBaseline ? s : a))
  const where = (s: ScenarioResult): string => `${name(s)} ${s.batchMB} MB, ${s.senders} senders, ${s.sink}`
  for (const [shape, goal] of [['short', 0.8], ['full', 1.5]] as const) {
    const of = scenarios.filter((s) => (s.shape === 'short') === (shape === 'short'))
    if (of.length === 0) continue
    const worst = worstOf(of)
    out.push({
      target: `${shape} lines: >= ${goal}x one-core baseline lines/s in every scenario`,
      measured: `${of.filter((s) => s.vsBaseline >= goal).length} of ${of.length} meet it; worst ${worst.vsBaseline}x (${where(worst)})`,
      met: worst.vsBaseline >= goal
    })
    if (shape !== 'short') continue
    const costliest = of.reduce((a, s) => (s.serverCpuSecondsPerMillionLines > a.serverCpuSecondsPerMillionLines ? s : a))
    out.push({
      target: 'short lines: <= 3 µs of the service\'s CPU per line in every scenario',
      measured: `${of.filter((s) => s.serverCpuSecondsPerMillionLines <= 3).length} of ${of.length} meet it; most ${costliest.serverCpuSecondsPerMillionLines} µs (${where(costliest)})`,
      met: costliest.serverCpuSecondsPerMillionLines <= 3
    })
  }
  for (const size of [...new Set(scenarios.map((s) => s.batchMB))]) {
    const peak = Math.max(...scenarios.filter((s) => s.batchMB === size).map((s) => s.peakRssMB))
    out.push({ target: `server peak RSS < 200 MB at ${size} MB batches`, measured: `max ${peak} MB`, met: peak < 200 })
  }
  for (const s of scenarios.filter((s) => s.batchMB === 5 && s.senders === 4)) {
    out.push({ target: `p99 < 300 ms, 5 MB batches, 4 senders (${name(s)}, ${s.sink})`, measured: `${s.latencyMsP99} ms`, met: s.latencyMsP99 < 300 })
  }
  return out
}

function printReport(report: Report, file: string | null): void {
  console.log(`\nlogpush-receiver bench, ${report.date}${report.quick ? ' (BENCH_QUICK)' : ''}${report.cpuProfile ? ' (under --cpu-prof: slower)' : ''}`)
  console.log(`${report.machine.cpus} x ${report.machine.cpuModel}, Node ${report.node}, commit ${report.commit ?? 'unknown'}${report.dirty ? ' + uncommitted changes' : ''}, ` +
    `load average ${report.machine.loadAverage[0]} before, ${report.machine.loadAverage[1]} after`)
  console.log(report.units)
  if (report.dedupeIntake) {
    const d = report.dedupeIntake
    console.log(`\nIntake with re-send detection on (DEDUPE_WINDOW_SECONDS=86400, ${d.entries} keys in the index at start) and off, alternating, same run`)
    console.table(d.rounds.map(({ dedupe, result: s }) => ({ 're-send detection': dedupe, dataset: name(s), 'batch MB': s.batchMB, senders: s.senders, sink: s.sink, requests: s.requests, 'lines/s': s.linesPerSec, 'p50 ms': s.latencyMsP50, 'p99 ms': s.latencyMsP99, 'peak RSS MB': s.peakRssMB, 'CPU µs/line': s.serverCpuSecondsPerMillionLines })))
    console.log(`on / off, medians of ${d.rounds.length / 2} rounds each: lines/s ${d.linesPerSecRatio}, p99 ${d.p99Ratio}, server CPU per line ${d.cpuPerLineRatio}`)
  }
  if (report.resendStartup) {
    console.log('\nStart-up on a full re-send index (DEDUPE_WINDOW_SECONDS=86400)')
    console.table(report.resendStartup.map((r) => ({ batches: r.entries, build: r.build, 'state MB': r.stateMB, 'start s': r.startSeconds ?? 'did not start', 'RSS MB': r.rssMB, 'peak RSS MB': r.peakRssMB, error: r.error ?? '' })))
  }
  console.log('\nBaseline: one core, gunzip + split on \\n + JSON.parse per line, best of ' +
    `${BASELINE_REPEATS} runs of each implementation (wall time, or CPU time when it used more than one core)`)
  console.table(report.baselines.map((b) => ({
    dataset: name(b),
    'batch MB': b.sizeMB,
    'lines/s': Math.round(b.best.linesPerSec),
    'MB/s': round(b.best.mbPerSec, 1),
    implementation: b.best.implementation
  })))
  console.log('\nService end to end: first request -> every 200 and the destination drained')
  console.table(report.scenarios.map((s) => ({
    dataset: name(s),
    'B/line': s.avgLineBytes,
    'batch MB': s.batchMB,
    senders: s.senders,
    sink: s.sink,
    requests: s.requests,
    'in flight': s.inFlight,
    'lines/s': s.linesPerSec,
    'MB/s': s.mbPerSec,
    'x baseline': s.vsBaseline,
    'p50 ms': s.latencyMsP50,
    'p99 ms': s.latencyMsP99,
    'peak RSS MB': s.peakRssMB,
    'CPU µs/line': s.serverCpuSecondsPerMillionLines,
    'server cores': s.serverCores,
    'fsyncs/batch': s.fsyncsPerBatch ?? '–',
    'spool fsyncs/batch': s.spoolFsyncsPerBatch ?? '–'
  })))
  if (report.scenarios.some((s) => s.threadsUsPerLine)) {
    console.log('CPU µs per line by thread')
    console.table(report.scenarios.map((s) => ({ dataset: name(s), 'batch MB': s.batchMB, senders: s.senders, sink: s.sink, ...s.threadsUsPerLine })))
  }
  console.log('Targets (measured, not asserted):')
  console.table(report.targets.map((t) => ({ target: t.target, measured: t.measured, met: t.met === null ? '?' : t.met ? 'yes' : 'NO' })))
  if (report.destinations) printDestinations(report.destinations)
  if (file) console.log(`results: ${file}`)
  if (MARKDOWN) console.log('\n' + markdown(report))
}

/** Before -> after per scenario, both measured in this run against the same baseline. */
function comparison(report: Report, before: NonNullable<Report['before']>): string[] {
  const rows = [
    `Before (commit ${before.commit?.slice(0, 10) ?? before.checkout}) and after (commit ${report.commit?.slice(0, 10) ?? 'unknown'}), each scenario of the one run measured on both, before first:`,
    '',
    '| dataset | B/line | batch | senders | sink | lines/s | x baseline | p99 ms | peak RSS MB | CPU µs/line | fsyncs/batch (process) | spool fsyncs/batch |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  const fsyncs = (n: number | null | undefined): string => n === null || n === undefined ? '–' : String(n)
  const arrow = (a: number | string, b: number | string): string => `${a} → ${b}`
  for (const s of report.scenarios) {
    const b = before.scenarios.find((x) => x.dataset === s.dataset && (x.shape ?? 'full') === (s.shape ?? 'full') && x.batchMB === s.batchMB && x.senders === s.senders && x.sink === s.sink)
    if (!b) continue
    const senders = s.inFlight < s.senders ? `${s.senders} (${s.inFlight} in flight)` : String(s.senders)
    rows.push(`| ${label(s.dataset, s.shape)} | ${s.avgLineBytes ?? ''} | ${s.batchMB} MB | ${senders} | ${s.sink} | ` +
      `${arrow(b.linesPerSec.toLocaleString('en-US'), s.linesPerSec.toLocaleString('en-US'))} | ${arrow(b.vsBaseline, s.vsBaseline)} | ` +
      `${arrow(b.latencyMsP99, s.latencyMsP99)} | ${arrow(b.peakRssMB, s.peakRssMB)} | ${arrow(b.serverCpuSecondsPerMillionLines, s.serverCpuSecondsPerMillionLines)} | ` +
      `${arrow(fsyncs(b.fsyncsPerBatch), fsyncs(s.fsyncsPerBatch))} | ${arrow(fsyncs(b.spoolFsyncsPerBatch), fsyncs(s.spoolFsyncsPerBatch))} |`)
  }
  return rows
}

/** CPU µs per line by kind of thread, per scenario (and before, with BENCH_BEFORE). */
function threadTable(report: Report): string[] {
  const kinds = ['MainThread', 'WorkerThread', 'libuv-worker', 'V8Worker']
  const cell = (s: ScenarioResult | undefined, k: string): string => s?.threadsUsPerLine?.[k]?.toString() ?? '–'
  const other = (s: ScenarioResult | undefined): string => {
    if (!s?.threadsUsPerLine) return '–'
    return String(round(Object.entries(s.threadsUsPerLine).filter(([k]) => !kinds.includes(k)).reduce((n, [, v]) => n + v, 0), 2))
  }
  const rows = [
    'CPU µs per line by thread (/proc/<pid>/task/<tid>/stat over the measured span; main: HTTP, inflate callbacks, hand-off to the workers, spool and destination; parse workers: decode, JSON.parse, schema checks; libuv pool: inflate, file writes, fsync, reads; V8 platform threads: garbage collection):',
    '',
    `| dataset | batch | senders | sink | ${kinds.join(' | ')} | other |`,
    `|---|---:|---:|---|${kinds.map(() => '---:').join('|')}|---:|`
  ]
  for (const s of report.scenarios) {
    if (!s.threadsUsPerLine) continue
    const b = report.before?.scenarios.find((x) => x.dataset === s.dataset && (x.shape ?? 'full') === (s.shape ?? 'full') && x.batchMB === s.batchMB && x.senders === s.senders && x.sink === s.sink)
    const pair = (f: (x: ScenarioResult | undefined) => string): string => b ? `${f(b)} → ${f(s)}` : f(s)
    rows.push(`| ${label(s.dataset, s.shape)} | ${s.batchMB} MB | ${s.senders} | ${s.sink} | ${kinds.map((k) => pair((x) => cell(x, k))).join(' | ')} | ${pair(other)} |`)
  }
  return rows
}

export function markdown(report: Report): string {
  const rows = [
    `Measured with \`npm run bench\` on ${report.machine.cpus} vCPUs (${report.machine.cpuModel}), Node ${report.node}` +
      `${report.commit ? `, commit ${report.commit.slice(0, 10)}${report.dirty ? ' + uncommitted changes' : ''}` : ''}${report.quick ? ' (BENCH_QUICK)' : ''}. ` +
      'End to end: from the first request until every request got its 200 and the destination delivered every line; ' +
      'MB are uncompressed, 10^6 bytes; "x baseline" is lines/s divided by one thread doing only gunzip + split + JSON.parse of the same body.',
    '',
    '| dataset | B/line | batch | senders | sink | lines/s | MB/s | x baseline | p50 ms | p99 ms | peak RSS MB | CPU µs/line |',
    '|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|'
  ]
  for (const s of report.scenarios) {
    const senders = s.inFlight < s.senders ? `${s.senders} (${s.inFlight} in flight)` : String(s.senders)
    rows.push(`| ${label(s.dataset, s.shape)} | ${s.avgLineBytes ?? ''} | ${s.batchMB} MB | ${senders} | ${s.sink} | ${s.linesPerSec.toLocaleString('en-US')} | ${s.mbPerSec} | ${s.vsBaseline} | ` +
      `${s.latencyMsP50} | ${s.latencyMsP99} | ${s.peakRssMB} | ${s.serverCpuSecondsPerMillionLines} |`)
  }
  if (report.before) rows.push('', ...comparison(report, report.before))
  rows.push('', ...threadTable(report))
  if (report.destinations) rows.push('', destinationsMarkdown(report.destinations))
  rows.push('', '| baseline (1 core) | batch | lines/s | MB/s |', '|---|---:|---:|---:|')
  for (const b of report.baselines) rows.push(`| ${label(b.dataset, b.shape)} | ${b.sizeMB} MB | ${Math.round(b.best.linesPerSec).toLocaleString('en-US')} | ${round(b.best.mbPerSec, 1)} |`)
  return rows.join('\n')
}

async function main(): Promise<void> {
  if (FROM) {
    printReport(JSON.parse(await readFile(FROM, 'utf8')) as Report, null)
    return
  }
  const started = performance.now()
  const loadStart = loadavg()[0]!
  const commit = git(['rev-parse', 'HEAD'])
  const status = commit === null ? null : git(['status', '--porcelain', '--untracked-files=no'])
  console.log(`datasets ${DATASETS.map((d) => label(d.dataset, d.shape)).join(',')}; batch MB ${SIZES_MB.join(',')}; senders ${SENDERS.join(',')}; sinks ${SINKS.join(',')}` +
    `${QUICK ? '; quick' : ''}${CPU_PROF ? '; CPU profile' : ''}`)

  const bodies = new Map<string, Body>()
  const bodyOf = (dataset: string, shape: LineShape, sizeMB: number): Body => {
    const key = `${dataset}/${shape}/${sizeMB}`
    if (!bodies.has(key)) bodies.set(key, makeBody(dataset, sizeMB, shape))
    return bodies.get(key)!
  }
  const baselines: Baseline[] = []
  for (const { dataset, shape } of RESEND_ONLY ? [] : DATASETS) {
    for (const size of SIZES_MB) {
      const body = bodyOf(dataset, shape, size)
      const b = await measureBaseline(body, BASELINE_REPEATS, BASELINE_MB * MB)
      baselines.push(b)
      console.log(`body ${label(dataset, shape)} ${size} MB: ${body.lines} lines, ${(body.bytes / body.lines).toFixed(0)} B/line, ` +
        `gzip ${(body.gzip.length / MB).toFixed(1)} MB; baseline ${Math.round(b.best.linesPerSec)} lines/s, ${b.best.mbPerSec.toFixed(1)} MB/s (${b.best.implementation})`)
    }
  }

  const scenarios: ScenarioResult[] = []
  const before: ScenarioResult[] = []
  for (const { dataset, shape } of RESEND_ONLY ? [] : DATASETS) {
    // Warm-up batch: the size Cloudflare's own example uses, whatever sizes are measured.
    const warmup = bodyOf(dataset, shape, 5)
    for (const size of SIZES_MB) {
      const body = bodyOf(dataset, shape, size)
      const baseline = baselines.find((b) => b.dataset === dataset && (b.shape ?? 'full') === shape && b.sizeMB === size)!
      for (const sink of SINKS) {
        for (const senders of SENDERS) {
          if (BEFORE) {
            const b = await runScenario(body, warmup, senders, sink, baseline, BEFORE)
            before.push(b)
            console.log(`  before: ${b.linesPerSec} lines/s, ${b.vsBaseline}x baseline, p99 ${b.latencyMsP99} ms, peak RSS ${b.peakRssMB} MB, ${b.serverCpuSecondsPerMillionLines} CPU µs/line, fsyncs/batch ${b.fsyncsPerBatch ?? '–'} (spool ${b.spoolFsyncsPerBatch ?? '–'})`)
          }
          const t = performance.now()
          const s = await runScenario(body, warmup, senders, sink, baseline)
          scenarios.push(s)
          console.log(`${label(dataset, shape)} ${size} MB x${s.requests}, ${senders} senders, ${sink}: ${s.linesPerSec} lines/s, ${s.mbPerSec} MB/s, ` +
            `${s.vsBaseline}x baseline, p50 ${s.latencyMsP50} ms, p99 ${s.latencyMsP99} ms, peak RSS ${s.peakRssMB} MB, ` +
            `${s.serverCpuSecondsPerMillionLines} CPU s/M lines, fsyncs/batch ${s.fsyncsPerBatch ?? '–'} (spool ${s.spoolFsyncsPerBatch ?? '–'}) (${s.seconds} s measured, ${((performance.now() - t) / 1000).toFixed(1)} s in all)`)
        }
      }
    }
  }

  const resendStartup: StartupResult[] = []
  for (const entries of RESEND_ENTRIES) {
    for (const main of BEFORE ? [BEFORE, undefined] : [undefined]) {
      const r = await measureStartup(entries, main)
      resendStartup.push(r)
      console.log(`re-send index of ${entries} batches (${r.stateMB} MB on disk), ${r.build} build: ` +
        (r.startSeconds === null ? `did not start: ${r.error}` : `healthy after ${r.startSeconds} s, RSS ${r.rssMB} MB (peak ${r.peakRssMB} MB)`))
    }
  }

  let dedupeIntake: DedupeIntake | undefined
  if (DEDUPE_ENTRIES > 0) {
    const body = bodyOf(DEDUPE_DATASET, DEDUPE_SHAPE as LineShape, DEDUPE_MB)
    const baseline = await measureBaseline(body, BASELINE_REPEATS, BASELINE_MB * MB)
    const on: Pick<ServiceOptions, 'env' | 'prepare'> = {
      env: { DEDUPE_WINDOW_SECONDS: '86400' },
      prepare: async (dataDir) => { await fillSpool(join(dataDir, 'spool'), DEDUPE_ENTRIES) }
    }
    const rounds: Array<{ dedupe: 'off' | 'on', result: ScenarioResult }> = []
    for (let r = 0; r < DEDUPE_ROUNDS; r++) {
      for (const dedupe of ['off', 'on'] as const) {
        const result = await runScenario(body, body, DEDUPE_SENDERS, DISCARD, baseline, undefined, dedupe === 'on' ? on : undefined)
        rounds.push({ dedupe, result })
        console.log(`re-send detection ${dedupe}${dedupe === 'on' ? ` (${DEDUPE_ENTRIES} keys)` : ''}: ${label(DEDUPE_DATASET, DEDUPE_SHAPE as LineShape)} ${DEDUPE_MB} MB x${result.requests}, ${DEDUPE_SENDERS} senders, ${DISCARD}: ` +
          `${result.linesPerSec} lines/s, p50 ${result.latencyMsP50} ms, p99 ${result.latencyMsP99} ms, peak RSS ${result.peakRssMB} MB`)
      }
    }
    const median = (d: 'off' | 'on', f: (s: ScenarioResult) => number): number => {
      const v = rounds.filter((x) => x.dedupe === d).map((x) => f(x.result)).sort((a, b) => a - b)
      return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2
    }
    const ratio = (f: (s: ScenarioResult) => number): number => round(median('on', f) / median('off', f), 3)
    dedupeIntake = { entries: DEDUPE_ENTRIES, rounds, linesPerSecRatio: ratio((s) => s.linesPerSec), p99Ratio: ratio((s) => s.latencyMsP99), cpuPerLineRatio: ratio((s) => s.serverCpuSecondsPerMillionLines) }
  }
  await dropStartupStates()

  // The real servers (issue 23): each destination's server started by the test set-up's code. A
  // failure there fails the bench, after the matrix's results are written.
  let destinations: DestinationsReport | undefined
  let destinationsFailed = false
  if (!RESEND_ONLY && process.env.BENCH_DESTINATIONS !== '0') {
    try {
      destinations = await runDestinationsBench({ quick: QUICK })
    } catch (err) {
      console.error('the real-server part failed:', err)
      destinationsFailed = true
    }
  }

  const report: Report = {
    date: new Date().toISOString(),
    quick: QUICK,
    cpuProfile: CPU_PROF,
    machine: {
      cpuModel: cpus()[0]?.model ?? 'unknown',
      cpus: cpus().length,
      memoryGB: round(totalmem() / 2 ** 30, 1),
      kernel: release(),
      clkTck: clkTck(),
      loadAverage: [round(loadStart, 2), round(loadavg()[0]!, 2)]
    },
    node: process.version,
    commit,
    dirty: status === null ? null : status.length > 0,
    ...(resendStartup.length > 0 ? { resendStartup } : {}),
    ...(dedupeIntake ? { dedupeIntake } : {}),
    units: 'MB = 10^6 bytes of uncompressed NDJSON; latency is per request, from sending its first byte to reading the whole answer',
    config: {
      datasets: DATASETS.map((d) => label(d.dataset, d.shape)),
      sizesMB: SIZES_MB,
      senders: SENDERS,
      sinks: SINKS,
      scenarioMB: Object.fromEntries(SIZES_MB.map((size) => [String(size), scenarioMB(size)])),
      baselineMB: BASELINE_MB,
      baselineRepeats: BASELINE_REPEATS
    },
    bodies: [...bodies.values()].map((b) => ({ dataset: b.dataset, shape: b.shape, sizeMB: b.sizeMB, lines: b.lines, bytes: b.bytes, gzipBytes: b.gzip.length, avgLineBytes: Math.round(b.bytes / b.lines) })),
    baselines,
    scenarios,
    ...(BEFORE ? { before: { checkout: process.env.BENCH_BEFORE!, commit: gitIn(process.env.BENCH_BEFORE!, ['rev-parse', 'HEAD']), scenarios: before } } : {}),
    targets: targets(scenarios),
    ...(destinations ? { destinations } : {})
  }
  const dir = join(packageRoot, '.bench-results')
  await mkdir(dir, { recursive: true })
  const file = join(dir, `bench-${report.date.replace(/[:.]/g, '-')}.json`)
  await writeFile(file, JSON.stringify(report, null, 2) + '\n')
  printReport(report, file)
  for (const s of scenarios) {
    if (!s.profiles) continue
    const [fromUs, toUs] = s.profileWindowUs!
    printSummary(`${s.dataset} ${s.batchMB} MB, ${s.senders} senders, ${s.sink}`, await summariseFiles(s.profiles, { fromUs, toUs }), 25)
    console.log(`again: node dist/test/bench/profile-summary.js ${s.profiles.join(' ')} --window=${fromUs},${toUs}`)
  }
  // The cost of shaping (issue 22): in-process, per destination, shaped against unshaped.
  if (process.env.BENCH_SHAPING !== '0') console.log(`\n${shapingTable(await runShapingBench())}`)
  console.log(`\nbench took ${((performance.now() - started) / 1000).toFixed(0)} s`)
  if (destinationsFailed) process.exitCode = 1
}

main().catch((err: unknown) => {
  console.error(err)
  process.exit(1)
})
