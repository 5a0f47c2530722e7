// The service under test as users run it (`node dist/src/main.js`, a process of its own), the
// senders that play Logpush, and what the kernel says about the process.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, peakRssBytes } from '../helpers/process.js'
import type { Body } from './bodies.js'

export { peakRssBytes }

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))
export const TOKEN = 'bench-token-0123456789abcdef'

export interface BenchService {
  readonly url: string
  readonly pid: number
  readonly output: () => string
  /** SIGTERM (or SIGKILL with `kill`), wait for the exit, delete the data directory. */
  readonly stop: (kill?: boolean) => Promise<void>
}

export interface ServiceOptions {
  readonly sinks: string
  /** With a directory, the service runs with --cpu-prof and writes its profile there at exit. */
  readonly cpuProfDir?: string
  /** Another build's dist/src/main.js (BENCH_BEFORE); this checkout's when absent. */
  readonly main?: string
  /** More settings for the service (e.g. LINE_VALIDATOR for the validator bench, DEDUPE_WINDOW_SECONDS for the re-send scenario). */
  readonly env?: Readonly<Record<string, string>>
  /** Fills the fresh DATA_DIR before the service starts (e.g. a re-send index of millions of keys). */
  readonly prepare?: (dataDir: string) => Promise<void>
}

// A bench that fails or is interrupted must not leave a service holding a port and a data dir.
const live = new Set<ChildProcess>()
process.once('exit', () => { for (const child of live) child.kill('SIGKILL') })

export async function startService(opts: ServiceOptions): Promise<BenchService> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-bench-'))
  await opts.prepare?.(dataDir)
  const port = await freePort()
  // The service as package.json's start script runs it.
  // BENCH_NODE_ARGS: more flags for the service's node (--trace-gc, say), space-separated.
  const extra = (process.env.BENCH_NODE_ARGS ?? '').split(' ').filter(Boolean)
  const args = [...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`] : []), '--max-semi-space-size=2', ...extra, opts.main ?? MAIN]
  // Not the bench's own environment: a SINKS or DATA_DIR exported in the shell must not leak in.
  const child: ChildProcess = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      // /metrics on the intake port, as the bench reads it (a build from before the admin listener ignores this).
      ADMIN_ON_INTAKE: 'true',
      DATA_DIR: dataDir,
      LOGPUSH_TOKENS: TOKEN,
      LOG_LEVEL: 'warn',
      SINKS: opts.sinks,
      // Uploads repeat one body (see uniqueTail in bodies.ts): re-send detection is not measured.
      DEDUPE_WINDOW_SECONDS: '0',
      // No balancer in front: a stop need not wait for one to take the service out.
      SHUTDOWN_HEALTH_DELAY_MS: '0',
      ...opts.env
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  live.add(child)
  child.once('exit', () => live.delete(child))
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const stop = async (kill = false): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill(kill ? 'SIGKILL' : 'SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      await exited
      clearTimeout(timer)
    }
    await rm(dataDir, { recursive: true, force: true })
  }
  // A prepared DATA_DIR may take seconds to load on a busy machine.
  const deadline = Date.now() + (opts.prepare ? 300_000 : 30_000)
  for (;;) {
    if (child.exitCode !== null) { await stop(); throw new Error(`service exited at start:\n${output}`) }
    try { if ((await fetch(`${url}/health`)).ok) break } catch {}
    if (Date.now() > deadline) { await stop(); throw new Error(`service did not become healthy:\n${output}`) }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url, pid: child.pid!, output: () => output, stop }
}

/** Nearest-rank percentile: with few requests, p99 is the slowest one, never an interpolation. */
export function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!
}

let clockTicks: number | null = null

/** Kernel clock ticks per second, the unit of /proc/<pid>/stat times. */
export function clkTck(): number {
  if (clockTicks === null) {
    try { clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) } catch {}
    if (!clockTicks || !Number.isFinite(clockTicks)) clockTicks = 100
  }
  return clockTicks
}

/** utime + stime of a process, in clock ticks, all its threads included. */
export async function cpuTicks(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  // fields[0] is field 3 (state); utime is field 14, stime field 15.
  return Number(fields[11]) + Number(fields[12])
}

/**
 * CPU clock ticks (utime + stime) per kind of thread of a process, from /proc/<pid>/task/<tid>/stat:
 * threads summed by name (Node names its own: MainThread, WorkerThread for worker_threads,
 * libuv-worker for libuv's pool, V8Worker for V8's platform threads, mostly garbage collection).
 * Threads that ended in between are not counted.
 */
export async function threadTicks(pid: number): Promise<Map<string, number>> {
  const out = new Map<string, number>()
  for (const task of await readdir(`/proc/${pid}/task`).catch(() => [])) {
    const stat = await readFile(`/proc/${pid}/task/${task}/stat`, 'utf8').catch(() => null)
    if (stat === null) continue
    const name = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'))
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    out.set(`${task}\t${name}`, Number(fields[11]) + Number(fields[12]))
  }
  return out
}

/** Ticks per thread kind between two threadTicks readings. */
export function threadDelta(before: Map<string, number>, after: Map<string, number>): Record<string, number> {
  const out: Record<string, number> = {}
  for (const [key, ticks] of after) {
    const name = key.slice(key.indexOf('\t') + 1)
    out[name] = (out[name] ?? 0) + ticks - (before.get(key) ?? 0)
  }
  return out
}

export interface SendResult {
  readonly latenciesMs: number[]
  readonly accepted: number
  /** Uncompressed bytes sent, unique tails included. */
  readonly bytes: number
  readonly wireBytes: number
}

/** One upload, the way Logpush makes it; resolves with the answer once its body has been read. */
function post(agent: Agent, url: string, dataset: string, parts: readonly Buffer[]): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const length = parts.reduce((n, p) => n + p.length, 0)
    const req = request(`${url}/logpush/${dataset}`, {
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip', 'content-length': String(length) }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (d: Buffer) => chunks.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    for (const p of parts) req.write(p)
    req.end()
  })
}

// Numbers the uploads of the whole run, so that no two carry the same tail.
let uploads = 0

/**
 * `requests` uploads of `body` from `senders` concurrent senders, each on its own keep-alive
 * connection and sending its next batch as soon as the previous one is answered, like Logpush
 * jobs do. Any answer but 200 with every line accepted fails the bench.
 */
export async function sendAll(url: string, body: Body, requests: number, senders: number): Promise<SendResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: senders })
  const latenciesMs: number[] = []
  let next = 0
  let accepted = 0
  let bytes = 0
  let wireBytes = 0
  try {
    await Promise.all(Array.from({ length: Math.min(senders, requests) }, async () => {
      while (next < requests) {
        next++
        const tail = body.tail(uploads++)
        const t0 = performance.now()
        const res = await post(agent, url, body.dataset, [body.gzip, tail.gzip])
        latenciesMs.push(performance.now() - t0)
        if (res.status !== 200) throw new Error(`service answered ${res.status}: ${res.text.slice(0, 500)}`)
        const json = JSON.parse(res.text) as { accepted?: number, duplicate?: boolean }
        if (json.accepted !== body.lines + 1 || json.duplicate) throw new Error(`expected ${body.lines + 1} lines accepted, got ${res.text.slice(0, 500)}`)
        accepted += json.accepted
        bytes += body.bytes + tail.bytes
        wireBytes += body.gzip.length + tail.gzip.length
      }
    }))
  } finally {
    agent.destroy()
  }
  return { latenciesMs, accepted, bytes, wireBytes }
}

export interface SinkStatus {
  readonly pendingLines: number
  readonly delivered: number
}

export async function sinkStatus(url: string, sink: string): Promise<SinkStatus> {
  const health = await (await fetch(`${url}/health`)).json() as { sinks?: Record<string, SinkStatus> }
  const s = health.sinks?.[sink]
  if (!s) throw new Error(`/health shows no sink ${sink}: ${JSON.stringify(health.sinks)}`)
  return s
}

/**
 * Polls /health until the sink has nothing pending and has delivered `delivered` lines in all.
 * Every 10 ms, not waitDrained's 100: the clock stops here, and a 5 s scenario must not gain 2 %.
 */
export async function waitDelivered(url: string, sink: string, delivered: number, timeoutMs = 600_000): Promise<void> {
  const end = Date.now() + timeoutMs
  let last: SinkStatus | null = null
  while (Date.now() < end) {
    last = await sinkStatus(url, sink)
    if (last.pendingLines === 0 && last.delivered >= delivered) {
      if (last.delivered > delivered) throw new Error(`${sink} delivered ${last.delivered} lines, ${delivered} were sent`)
      return
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  throw new Error(`${sink} not drained after ${timeoutMs} ms: ${JSON.stringify(last)}`)
}

/** The .cpuprofile files a --cpu-prof service left in `dir`. */
export async function cpuProfiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(dir, f))
}
