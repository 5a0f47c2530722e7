// The first run, as a new user makes it (README, "Two commands"): a clone in an empty folder,
// `npm ci`, `npm start` with no settings, the printed destination_conf pasted into a Logpush job.
// A fresh clone once could not run `npm test` at all (the field reference lived outside the
// repository); this test makes the same steps and sends what Logpush would send to the printed
// destination_conf: a gzip NDJSON batch with the header_* parameters as headers.
// Settings: none but PORT, ADMIN_PORT and HOST (free loopback ports: 8080 and 8081 may be taken on
// a shared machine, and 8081 was: EADDRINUSE 127.0.0.1:8081). Both are taken right before the
// service starts, not before the clone and `npm ci`, which leave minutes for another process to
// take them.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { packageRoot } from '../../src/paths.js'
import { freePort } from '../helpers/process.js'
import { readStore } from '../helpers/server.js'

/** The environment of someone who set nothing: this service's settings and npm's config from the test run removed. */
function bareEnv(): NodeJS.ProcessEnv {
  const keep = ['PATH', 'HOME', 'TMPDIR', 'LANG', 'XDG_CACHE_HOME', 'npm_config_cache', 'npm_config_registry']
  const env: NodeJS.ProcessEnv = {}
  for (const k of keep) if (process.env[k] !== undefined) env[k] = process.env[k]
  return env
}

/** Runs a command to its end within `ms`; its output is kept for the failure message. */
function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, ms: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
    let out = ''
    child.stdout.on('data', (b: Buffer) => { out = (out + b.toString()).slice(-20_000) })
    child.stderr.on('data', (b: Buffer) => { out = (out + b.toString()).slice(-20_000) })
    const timer = setTimeout(() => { killGroup(child, 'SIGKILL'); reject(new Error(`${cmd} ${args.join(' ')}: over ${ms} ms\n${out}`)) }, ms)
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('exit', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`${cmd} ${args.join(' ')} exited ${code}\n${out}`))
    })
  })
}

/** npm starts the service as its child: signal the process group the test made. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try { process.kill(-child.pid!, signal) } catch { /* already gone */ }
}

async function startService(t: TestContext, cwd: string, env: NodeJS.ProcessEnv): Promise<{ child: ChildProcess, output: () => string, conf: string }> {
  const child = spawn('npm', ['start'], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  t.after(() => killGroup(child, 'SIGKILL'))
  let out = ''
  const conf = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start printed no destination_conf within 5 minutes:\n${out}`)), 300_000)
    const onData = (b: Buffer): void => {
      out = (out + b.toString()).slice(-50_000)
      const m = /^ {2}http_requests \(POST \/zones\/\{zone_id\}\/logpush\/jobs\): (\S+)$/m.exec(out)
      if (m) { clearTimeout(timer); resolve(m[1]!) }
    }
    child.stdout!.on('data', onData)
    child.stderr!.on('data', onData)
    child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`npm start exited ${code} before printing a destination_conf:\n${out}`)) })
  })
  return { child, output: () => out, conf }
}

/** What Logpush does with a destination_conf: header_<Name>=<value> become headers, the rest is the URL. */
function logpushRequest(conf: string, port: number): { url: string, headers: Record<string, string> } {
  const url = new URL(conf)
  const headers: Record<string, string> = {}
  for (const [k, v] of [...url.searchParams]) {
    if (k.startsWith('header_')) { headers[k.slice('header_'.length)] = v; url.searchParams.delete(k) }
  }
  // The printed host is PUBLIC_URL's placeholder; the service itself is on loopback.
  return { url: `http://127.0.0.1:${port}${url.pathname}${url.search}`, headers }
}

// A copy without git history (a downloaded archive) has nothing to clone; a checkout always has .git.
const notAClone = !existsSync(join(packageRoot, '.git')) && process.env.CI !== 'true'
  ? 'not a git checkout (no .git): nothing to clone; CI=true makes this a failure' : false
if (notAClone) console.warn(`\n!!!!!!!! SKIPPING the first-run test: ${notAClone} !!!!!!!!\n`)

test('a clone of the repository: npm ci, npm start with no settings, the printed destination_conf takes a gzip batch', { timeout: 900_000, skip: notAClone }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpr-first-run-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const clone = join(dir, 'logpush-receiver')
  const env = bareEnv()

  await run('git', ['clone', '--quiet', packageRoot, clone], dir, env, 120_000)
  // A clone has nothing beside it: the field reference came with it.
  assert.ok(readFileSync(join(clone, 'schemas', 'reference', 'datasets.json')).length > 0)
  await run('npm', ['ci', '--no-audit', '--no-fund', '--prefer-offline'], clone, env, 600_000)

  const port = await freePort()
  let adminPort = await freePort()
  while (adminPort === port) adminPort = await freePort()
  const service = await startService(t, clone, { ...env, PORT: String(port), ADMIN_PORT: String(adminPort), HOST: '127.0.0.1' })
  assert.match(service.output(), /No LOGPUSH_TOKENS set: generated a token and stored it in .*data\/token \(mode 0600\)/)
  const token = readFileSync(join(clone, 'data', 'token'), 'utf8').trim()
  assert.equal(service.conf, `https://logs.example.com/logpush/http_requests?header_Authorization=Bearer%20${encodeURIComponent(token)}`)

  const lines = '{"RayID":"8f0a1b2c3d4e5f60","EdgeStartTimestamp":"2026-12-07T06:00:00Z","ClientIP":"192.0.2.1","EdgeResponseStatus":200}\n' +
    '{"RayID":"8f0a1b2c3d4e5f61","EdgeStartTimestamp":"2026-12-07T06:00:01.5Z","ClientIP":"2001:db8::1","EdgeResponseStatus":404}\n'
  const req = logpushRequest(service.conf, port)
  const res = await fetch(req.url, { method: 'POST', body: gzipSync(lines), headers: { ...req.headers, 'content-encoding': 'gzip' } })
  assert.equal(res.status, 200, await res.clone().text())
  assert.deepEqual(await res.json(), { dataset: 'http_requests', accepted: 2, rejected: 0 })
  // Without a token the same request is refused: the printed conf is what made it work.
  const bare = await fetch(req.url, { method: 'POST', body: gzipSync(lines), headers: { 'content-encoding': 'gzip' } })
  assert.equal(bare.status, 401)
  await bare.arrayBuffer()

  // The default destination: files under ./data, the lines byte for byte as sent.
  let stored = ''
  for (let i = 0; i < 300 && stored !== lines; i++) {
    stored = await readStore({ dataDir: join(clone, 'data') }, 'events', 'http_requests')
    if (stored !== lines) await new Promise((r) => setTimeout(r, 100))
  }
  assert.equal(stored, lines)
  // Stopped as a terminal's Ctrl-C would.
  const exited = new Promise<void>((resolve) => service.child.once('exit', () => resolve()))
  killGroup(service.child, 'SIGINT')
  await exited
  assert.match(service.output(), /"msg":"Stopped\."/)
})

test('README\'s quick start makes the same steps: clone, npm ci, npm start, paste destination_conf', () => {
  const readme = readFileSync(join(packageRoot, 'README.md'), 'utf8')
  const start = readme.indexOf('## Two commands')
  assert.ok(start >= 0, 'README has its quick start ("Two commands")')
  const section = readme.slice(start, readme.indexOf('\n## ', start + 1))
  for (const step of ['git clone ', 'cd logpush-receiver', 'npm ci && npm start', 'destination_conf', 'content-encoding: gzip']) {
    assert.ok(section.includes(step), `the quick start says ${JSON.stringify(step)}`)
  }
})
