// Start-up with a full re-send index: the state a long-running service leaves (N batches
// delivered within DEDUPE_WINDOW_SECONDS) is built synthetically in a fresh DATA_DIR, then the
// service is started on it: seconds until /health answers, and its memory then.
//
// A build with spool/resend/*.bin (resend-index.ts: this one, and a BENCH_BEFORE checkout that has
// that file) gets those; an older build gets the spool/digests.log it kept instead, with the same
// keys and times. The state of each size is generated once (millions of SHA-256) and copied for
// each start.
import { execFileSync, spawn } from 'node:child_process'
import { createWriteStream } from 'node:fs'
import { access, cp, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { createHash } from 'node:crypto'
import { encodeRecord, RECORD_BYTES, resendKey } from '../../src/spool/resend-index.js'
import { freePort, peakRssBytes } from '../helpers/process.js'
import { TOKEN } from './service.js'

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))
const WINDOW_SECONDS = 86_400
const DATASET = 'http_requests'

export interface StartupResult {
  readonly entries: number
  readonly build: 'this' | 'before'
  /** null: the service did not start (its last output in `error`). */
  readonly startSeconds: number | null
  readonly rssMB: number | null
  readonly peakRssMB: number | null
  readonly stateMB: number
  readonly error?: string
}

/** A digest as the intake makes them (base64url SHA-256 of a body): here of the batch's number. */
function digestOf(i: number): string {
  return createHash('sha256').update(String(i)).digest('base64url')
}

/** Batch i of n, committed evenly over the last 23 hours. */
function timeOf(i: number, n: number, now: number): number {
  return now - 23 * 3600_000 + Math.floor((i * 23 * 3600_000) / n)
}

async function writeStream(path: string, fill: (write: (chunk: Buffer | string) => Promise<void>) => Promise<void>): Promise<void> {
  const out = createWriteStream(path)
  const write = async (chunk: Buffer | string): Promise<void> => { if (!out.write(chunk)) await once(out, 'drain') }
  await fill(write)
  out.end()
  await once(out, 'finish')
}

/** The bucket files' state: one file per 1/48 of the window, as resend-index.ts writes them. */
async function buildBuckets(spoolDir: string, n: number, now: number): Promise<number> {
  const dir = join(spoolDir, 'resend')
  await mkdir(dir, { recursive: true })
  const bucketMs = Math.ceil(WINDOW_SECONDS * 1000 / 48)
  let i = 0
  while (i < n) {
    const start = timeOf(i, n, now) - (timeOf(i, n, now) % bucketMs)
    await writeStream(join(dir, `${String(start).padStart(15, '0')}.bin`), async (write) => {
      const chunk = Buffer.alloc(4096 * RECORD_BYTES)
      let k = 0
      for (; i < n; i++) {
        const at = timeOf(i, n, now)
        if (at - (at % bucketMs) !== start) break
        encodeRecord(resendKey(DATASET, digestOf(i)), at, i + 1, chunk, k * RECORD_BYTES)
        if (++k === 4096) { await write(Buffer.from(chunk)); k = 0 }
      }
      if (k > 0) await write(Buffer.from(chunk.subarray(0, k * RECORD_BYTES)))
    })
  }
  return n * RECORD_BYTES
}

/** The state of builds before the bucket files: spool/digests.log, one text line per delivered batch. */
async function buildDigestsLog(spoolDir: string, n: number, now: number): Promise<number> {
  let bytes = 0
  await writeStream(join(spoolDir, 'digests.log'), async (write) => {
    let lines = ''
    for (let i = 0; i < n; i++) {
      lines += `${DATASET}:${digestOf(i)} ${timeOf(i, n, now)} ${i + 1}\n`
      if (lines.length > 1 << 20) { bytes += lines.length; await write(lines); lines = '' }
    }
    lines += `_seq ${now} ${n}\n`
    bytes += lines.length
    await write(lines)
  })
  return bytes
}

type Format = 'buckets' | 'digests.log'

/** Which state a build keeps: this one and any build with resend-index.js keep bucket files. */
async function formatOf(main?: string): Promise<Format> {
  if (!main) return 'buckets'
  try {
    await access(join(dirname(main), 'spool', 'resend-index.js'))
    return 'buckets'
  } catch {
    return 'digests.log'
  }
}

// Generated states, by format and size: built once per bench run, copied for each start.
const templates = new Map<string, Promise<{ dir: string, bytes: number }>>()
let templateRoot: Promise<string> | null = null

async function template(format: Format, n: number): Promise<{ dir: string, bytes: number }> {
  const key = `${format}/${n}`
  let t = templates.get(key)
  if (!t) {
    t = (async () => {
      templateRoot ??= mkdtemp(join(tmpdir(), 'lpr-bench-resend-state-'))
      const dir = join(await templateRoot, `${format}-${n}`)
      await mkdir(dir, { recursive: true })
      const now = Date.now()
      const bytes = format === 'buckets' ? await buildBuckets(dir, n, now) : await buildDigestsLog(dir, n, now)
      return { dir, bytes }
    })()
    templates.set(key, t)
  }
  return await t
}

/** Removes the generated states (they take 32 bytes per batch, or ~80 for digests.log). */
export async function dropStartupStates(): Promise<void> {
  if (templateRoot) await rm(await templateRoot, { recursive: true, force: true })
  templateRoot = null
  templates.clear()
}

/** A spool directory holding the re-send state of `entries` batches, in `format`. */
export async function fillSpool(spoolDir: string, entries: number, format: Format = 'buckets'): Promise<number> {
  const t = await template(format, entries)
  await cp(t.dir, spoolDir, { recursive: true })
  return t.bytes
}

export async function measureStartup(entries: number, main?: string): Promise<StartupResult> {
  const build = main ? 'before' : 'this'
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-bench-resend-'))
  try {
    const spoolDir = join(dataDir, 'spool')
    const stateBytes = await fillSpool(spoolDir, entries, await formatOf(main))
    // The copy just made (up to GBs) is written back before the clock starts: a start after a
    // restart does not compete with the writeback of its own state.
    execFileSync('sync')
    const port = await freePort()
    const started = performance.now()
    const child = spawn(process.execPath, ['--max-semi-space-size=2', main ?? MAIN], {
      env: { PATH: process.env.PATH, PORT: String(port), HOST: '127.0.0.1', DATA_DIR: dataDir, LOGPUSH_TOKENS: TOKEN, LOG_LEVEL: 'warn', SINKS: 'discard', DEDUPE_WINDOW_SECONDS: String(WINDOW_SECONDS), PARSE_WORKERS: '0' },
      stdio: ['ignore', 'pipe', 'pipe']
    })
    let output = ''
    child.stdout!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-2000) })
    child.stderr!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-2000) })
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const result = (fields: Partial<StartupResult>): StartupResult => ({ entries, build, startSeconds: null, rssMB: null, peakRssMB: null, stateMB: Math.round(stateBytes / 1e6), ...fields })
    try {
      const deadline = Date.now() + 300_000
      for (;;) {
        if (child.exitCode !== null) return result({ error: output.trim().split('\n').at(-1) ?? `exit ${child.exitCode}` })
        try { if ((await fetch(`http://127.0.0.1:${port}/health`)).ok) break } catch {}
        if (Date.now() > deadline) return result({ error: 'not healthy after 300 s' })
        await new Promise((r) => setTimeout(r, 50))
      }
      const startSeconds = (performance.now() - started) / 1000
      const status = await readFile(`/proc/${child.pid}/status`, 'utf8')
      const rss = Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? 0) * 1024
      return result({ startSeconds: Math.round(startSeconds * 100) / 100, rssMB: Math.round(rss / 1e6), peakRssMB: Math.round(await peakRssBytes(child.pid!) / 1e6) })
    } finally {
      child.kill('SIGKILL')
      await exited
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
}
