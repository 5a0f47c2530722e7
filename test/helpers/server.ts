import type { TestContext } from 'node:test'
import { mkdtemp, readFile, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { buildApp, type BuiltApp } from '../../src/app.js'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/index.js'

export interface TestServer {
  readonly url: string
  /** The admin listener's URL; `url` with ADMIN_ON_INTAKE (the default here). */
  readonly adminUrl: string
  readonly token: string
  readonly dataDir: string
  readonly built: BuiltApp
}

export const TEST_TOKEN = 'test-token-0123456789abcdef'

/** The real app from its factory, on a loopback port of its own, closed when the test ends. */
export async function startServer(t: TestContext, env: Record<string, string> = {}): Promise<TestServer> {
  const dataDir = env.DATA_DIR ?? await mkdtemp(join(tmpdir(), 'lpr-test-'))
  // Most tests reach the status page, /metrics and /logpush/challenges at `url`: ADMIN_ON_INTAKE
  // unless a test asks for the admin listener (then at `adminUrl`, on a port of its own).
  // TEST_LINE_VALIDATOR=fast runs a suite with the one-pass validator (LINE_VALIDATOR), whose verdicts must be the reference's.
  const config = loadConfig({ LOGPUSH_TOKENS: TEST_TOKEN, LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent', ADMIN_ON_INTAKE: 'true', ...(process.env.TEST_LINE_VALIDATOR ? { LINE_VALIDATOR: process.env.TEST_LINE_VALIDATOR } : {}), ...env, DATA_DIR: dataDir, PORT: '0', HOST: '127.0.0.1', ADMIN_PORT: '0', ADMIN_HOST: '127.0.0.1' })
  const built = await buildApp(config, createLogger(config.logLevel))
  t.after(() => built.close())
  // Destinations set themselves up behind the listener; tests that read Elasticsearch's templates
  // right after the start expect them there, as an operator would a moment later. A destination
  // that cannot be reached stays "not set up": that is for the test to see, not to wait out.
  await built.setUp(30_000)
  return { url: built.url, adminUrl: built.adminUrl ?? built.url, token: config.tokens.split(',')[0]!, dataDir, built }
}

export interface PostOptions {
  readonly gzip?: boolean
  readonly headers?: Record<string, string>
  readonly token?: string | null
}

export async function post(server: { url: string, token: string }, path: string, body: string | Buffer, opts: PostOptions = {}): Promise<{ status: number, json: any, headers: Headers }> {
  const gzip = opts.gzip ?? true
  const payload = gzip ? gzipSync(body) : Buffer.from(body)
  const headers: Record<string, string> = { ...(gzip ? { 'content-encoding': 'gzip' } : {}), ...opts.headers }
  const token = opts.token === undefined ? server.token : opts.token
  if (token !== null && !('authorization' in headers)) headers.authorization = `Bearer ${token}`
  const res = await fetch(server.url + path, { method: 'POST', body: payload, headers })
  const text = await res.text()
  let json: unknown
  try { json = JSON.parse(text) } catch { json = text }
  return { status: res.status, json, headers: res.headers }
}

/**
 * Everything a file store holds for a dataset, in arrival order, gzipped files inflated; first
 * waits until the spool has delivered everything accepted so far.
 */
export async function readStore(server: { dataDir: string, built?: BuiltApp }, kind: 'events' | 'dead-letter', dataset: string): Promise<string> {
  if (server.built && !(await server.built.drained(30_000))) throw new Error('the spool did not drain within 30 s')
  const dir = join(server.dataDir, kind, dataset)
  let files: string[]
  try {
    files = (await readdir(dir)).filter((f) => f.endsWith('.ndjson') || f.endsWith('.ndjson.gz')).sort()
  } catch {
    return ''
  }
  let out = ''
  for (const f of files) {
    const data = await readFile(join(dir, f))
    out += (f.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8')
  }
  return out
}

export async function readDeadLetters(server: { dataDir: string, built?: BuiltApp }, dataset: string): Promise<any[]> {
  return (await readStore(server, 'dead-letter', dataset)).split('\n').filter(Boolean).map((l) => JSON.parse(l))
}

/** The service's /health as JSON. */
export async function health(server: { url: string }): Promise<any> {
  return await (await fetch(`${server.url}/health`)).json()
}

/** Polls `probe` every 200 ms until it gives a value; fails after `ms` naming `what` it waited for. */
export async function until<T>(what: string, ms: number, probe: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms
  for (;;) {
    const v = await probe()
    if (v !== undefined) return v
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 200))
  }
}
