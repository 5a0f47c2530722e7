// The service under test as users run it (`node dist/src/main.js`, a process of its own), the
// senders that play Logpush, and what the kernel says about the process.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises'
import { Agent, request } from 'node:http'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, peakRssBytes } from '../helpers/process.js'

export { peakRssBytes }

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))
export const TOKEN = 'bench-token-0123456789abcdef'

export interface BenchService {
  readonly url: string
  readonly pid: number
  readonly output: () => string
  /** SIGTERM, wait for the exit (which writes a CPU profile), delete the data directory. */
  readonly stop: () => Promise<void>
}

export interface ServiceOptions {
  readonly sinks: string
  /** With a directory, the service runs with --cpu-prof and writes its profile there at exit. */
  readonly cpuProfDir?: string
}

export async function startService(opts: ServiceOptions): Promise<BenchService> {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-bench-'))
  const port = await freePort()
  const args = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, MAIN] : [MAIN]
  // Not the bench's own environment: a SINKS or DATA_DIR exported in the shell must not leak in.
  const child: ChildProcess = spawn(process.execPath, args, {
    env: {
      PATH: process.env.PATH,
      PORT: String(port),
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOGPUSH_TOKENS: TOKEN,
      LOG_LEVEL: 'warn',
      SINKS: opts.sinks,
      // Every request carries the same body; re-send detection would store only the first.
      DEDUPE_WINDOW_SECONDS: '0'
    },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  let output = ''
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  const url = `http://127.0.0.1:${port}`
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
      await exited
      clearTimeout(timer)
    }
    await rm(dataDir, { recursive: true, force: true })
  }
  const deadline = Date.now() + 30_000
  for (;;) {
    if (child.exitCode !== null) { await stop(); throw new Error(`service exited at start:\n${output}`) }
    try { if ((await fetch(`${url}/health`)).ok) break } catch {}
    if (Date.now() > deadline) { await stop(); throw new Error(`service did not become healthy:\n${output}`) }
    await new Promise((r) => setTimeout(r, 50))
  }
  return { url, pid: child.pid!, output: () => output, stop }
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

export interface SendResult {
  readonly latenciesMs: number[]
  readonly accepted: number
}

/** One upload, the way Logpush makes it; resolves with the answer once its body has been read. */
function post(agent: Agent, url: string, dataset: string, body: Buffer): Promise<{ status: number, text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/logpush/${dataset}`, {
      method: 'POST',
      agent,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-encoding': 'gzip', 'content-length': String(body.length) }
    }, (res) => {
      const parts: Buffer[] = []
      res.on('data', (d: Buffer) => parts.push(d))
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text: Buffer.concat(parts).toString() }))
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(body)
  })
}

/**
 * `requests` uploads of `body` from `senders` concurrent senders, each on its own keep-alive
 * connection and sending its next batch as soon as the previous one is answered, like Logpush
 * jobs do. Any answer but 200 with every line accepted fails the bench.
 */
export async function sendAll(url: string, dataset: string, body: Buffer, expectLines: number, requests: number, senders: number): Promise<SendResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: senders })
  const latenciesMs: number[] = []
  let next = 0
  let accepted = 0
  try {
    await Promise.all(Array.from({ length: Math.min(senders, requests) }, async () => {
      while (next < requests) {
        next++
        const t0 = performance.now()
        const res = await post(agent, url, dataset, body)
        latenciesMs.push(performance.now() - t0)
        if (res.status !== 200) throw new Error(`service answered ${res.status}: ${res.text.slice(0, 500)}`)
        const json = JSON.parse(res.text) as { accepted?: number, rejected?: number, duplicate?: boolean }
        if (json.accepted !== expectLines || json.duplicate) throw new Error(`expected ${expectLines} lines accepted, got ${res.text.slice(0, 500)}`)
        accepted += json.accepted
      }
    }))
  } finally {
    agent.destroy()
  }
  return { latenciesMs, accepted }
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
