import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { createServer } from 'node:net'
import { get as httpsGet } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { TestContext } from 'node:test'
import { TEST_TOKEN } from './server.js'

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))

export async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port
      s.close(() => resolve(port))
    })
  })
}

export interface ServiceProcess {
  readonly url: string
  readonly token: string
  readonly dataDir: string
  readonly child: ChildProcess
  readonly output: () => string
  exited: Promise<number | null>
}

/** The service as users run it: `node dist/src/main.js`, its own process, configured by environment. */
export async function spawnService(t: TestContext, env: Record<string, string> = {}): Promise<ServiceProcess> {
  const dataDir = env.DATA_DIR ?? await mkdtemp(join(tmpdir(), 'lpr-proc-'))
  const port = env.PORT ? Number(env.PORT) : await freePort()
  let output = ''
  // As package.json's start script runs it.
  const child = spawn(process.execPath, ['--max-semi-space-size=2', MAIN], {
    // Everything on `url` (ADMIN_ON_INTAKE) unless a test asks otherwise; an admin listener, when
    // asked for, on a free port: the default 8081 would be shared by every service a test starts.
    env: { PATH: process.env.PATH, LOGPUSH_TOKENS: TEST_TOKEN, LOG_LEVEL: 'warn', ADMIN_ON_INTAKE: 'true', ADMIN_PORT: '0', ...env, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  child.stdout!.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr!.on('data', (d: Buffer) => { output += d.toString() })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const tls = Boolean(env.TLS_CERT_FILE)
  const url = `${tls ? 'https' : 'http'}://127.0.0.1:${port}`
  // Generous: on a busy 2-core machine a start (parse workers, destination clients) can take 20 s and more.
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service exited early:\n${output}`)
    try {
      if (tls ? (await insecureGetStatus(`${url}/health`)) === 200 : (await fetch(`${url}/health`)).ok) break
    } catch {}
    if (Date.now() > deadline) throw new Error(`service did not become healthy:\n${output}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { url, token: env.LOGPUSH_TOKENS?.split(',')[0] ?? TEST_TOKEN, dataDir, child, output: () => output, exited }
}

/** GET over HTTPS without verifying the certificate: only to see that a TLS service is up. */
function insecureGetStatus(url: string): Promise<number> {
  return new Promise((resolve, reject) => {
    httpsGet(url, { rejectUnauthorized: false }, (res) => { res.resume(); resolve(res.statusCode ?? 0) }).on('error', reject)
  })
}

/** Peak resident set size of a process so far, from the kernel's own high-water mark. */
export async function peakRssBytes(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const m = /VmHWM:\s+(\d+) kB/.exec(status)
  if (!m) throw new Error('no VmHWM in /proc status')
  return Number(m[1]) * 1024
}

/** Polls /health until no destination has anything pending. */
export async function waitDrained(url: string, timeoutMs = 120_000): Promise<Record<string, any>> {
  const end = Date.now() + timeoutMs
  let last: any = null
  while (Date.now() < end) {
    last = await (await fetch(`${url}/health`)).json()
    const sinks = Object.entries(last.sinks ?? {}).filter(([name]) => name !== 'spool')
    if (sinks.length > 0 && sinks.every(([, s]: [string, any]) => s.pendingLines === 0)) return last
    await new Promise((r) => setTimeout(r, 100))
  }
  throw new Error(`not drained after ${timeoutMs} ms: ${JSON.stringify(last?.sinks)}`)
}
