// The Logpush job watchdog against the Cloudflare API double: the service in-process from its
// factory, and the Watchdog on its own where a test needs several polls. Polls are waited for by
// what /health says, never by elapsed time.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { AUTH_ERRORS, addJob, startCloudflareDouble, type CloudflareDouble, type DoubleJob } from '../helpers/cloudflare-double/index.js'
import { recordUpload, recordUploads } from '../helpers/cloudflare-double/graphql.js'
import { post, startServer } from '../helpers/server.js'
import { Watchdog, createWatchdog } from '../../src/watchdog/index.js'
import { loadConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/observability/index.js'

const ZONE = '023e105f4ecef8ad9ca31a8372d0c353'
const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'
const TOKEN = 'watchdog-read-token'
const PUBLIC_URL = 'https://receiver.example.net'
const MIN = 60_000
const HOUR = 3600_000
const SECRET_IN_CONF = 'Bearer%20job-secret-0123456789'

async function start(t: TestContext): Promise<{ double: CloudflareDouble, base: string }> {
  const started = await startCloudflareDouble()
  t.after(() => started.double.stop())
  started.double.accounts.add(ACCOUNT)
  started.double.zones.set(ZONE, { account: ACCOUNT, name: 'example.com' })
  started.double.tokens.set(TOKEN, { accounts: [ACCOUNT], zones: [ZONE], permissions: ['logs:write', 'analytics:read'] })
  return started
}

const conf = (dataset: string, host = 'receiver.example.net'): string => `https://${host}/logpush/${dataset}?header_Authorization=${SECRET_IN_CONF}`
const failure = { ok: false, status: 503, message: 'error 503: error pushing: error uploading to https: 503 {"code":"LPR_ERR_INTAKE_NOT_READY"}' } as const

/** /health once the watchdog's first poll has ended. */
async function afterFirstPoll(url: string): Promise<any> {
  for (;;) {
    const health = await (await fetch(`${url}/health`)).json() as any
    if (health.watchdog?.lastPollAt) return health
    await sleep(20)
  }
}

function metricLines(text: string, name: string): string[] {
  return text.split('\n').filter((l) => l.startsWith(name + '{') || l.startsWith(name + ' '))
}

test('failing and disabled jobs show in /health and /metrics after one poll, before Cloudflare disables the failing one; other destinations are ignored', { timeout: 60_000 }, async (t) => {
  const { double, base } = await start(t)
  const now = Date.now()
  // Failing for two hours: its last success was before the window, every attempt since has failed.
  const failing = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests'), dataset: 'http_requests', name: 'edge', enabled: true })
  recordUpload(double, failing, { ok: true }, now - 2 * HOUR)
  recordUploads(double, failing, failure, now - 2 * HOUR + 5 * MIN, now, 5 * MIN)
  // Failing for a day and more: the double has disabled it, as Cloudflare does.
  const disabled = addJob(double, { kind: 'accounts', id: ACCOUNT }, { destination_conf: conf('audit_logs'), dataset: 'audit_logs', enabled: true })
  recordUploads(double, disabled, { ok: false, status: 1105, message: 'error pushing: DNS resolution failed' }, now - 25 * HOUR, now, 10 * MIN)
  const healthy = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('dns_logs'), dataset: 'dns_logs', enabled: true })
  recordUploads(double, healthy, { ok: true }, now - 10 * MIN, now, MIN)
  const hec = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'splunk://receiver.example.net:443/services/collector/raw?channel=0aeeac95-ac74-4aa9-b30d-6c4c0ac581ba&header_Authorization=Splunk%20x', dataset: 'firewall_events', enabled: true })
  recordUploads(double, hec, { ok: true }, now - 10 * MIN, now, MIN)
  // Failing in the health data while the job's own fields still say nothing (they can lag):
  // only the GraphQL data tells this one.
  const healthOnly = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('firewall_events'), dataset: 'firewall_events', enabled: true })
  recordUploads(double, healthOnly, { ok: true }, now - 12 * MIN, now - 6 * MIN, MIN)
  recordUploads(double, healthOnly, { ok: false, status: 1106, message: 'Timeout', final: true }, now - 5 * MIN, now, MIN)
  healthOnly.last_error = null
  healthOnly.error_message = null
  // Another receiver's job, failing too: not ours, not shown.
  const other = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests', 'siem.example.net'), dataset: 'http_requests', enabled: true })
  recordUploads(double, other, failure, now - 2 * HOUR, now, 5 * MIN)
  assert.equal(failing.enabled, true, 'Cloudflare has not disabled the failing job yet')
  assert.equal(disabled.enabled, false, 'the double disabled the job failing for over a day')

  const server = await startServer(t, {
    PUBLIC_URL,
    CLOUDFLARE_API_URL: base,
    WATCHDOG_API_TOKEN: TOKEN,
    WATCHDOG_ZONES: ZONE,
    WATCHDOG_ACCOUNTS: ACCOUNT,
    // One poll only (at start): whatever shows, showed within one poll.
    WATCHDOG_POLL_SECONDS: '3600'
  })
  const res = await fetch(`${server.url}/health`)
  const health = await afterFirstPoll(server.url)
  assert.equal(res.status, 200, 'a failing Logpush job does not turn the load balancer away from intake')
  assert.equal(double.requests.filter((r) => r.path === '/graphql').length, 2, 'one poll: one GraphQL query per scope')
  const w = health.watchdog
  assert.deepEqual(w.errors, {})
  assert.equal(w.failingThresholdSeconds, 3600)
  const byId = new Map<number, any>(w.jobs.map((j: any) => [j.id, j]))
  assert.deepEqual([...byId.keys()].sort(), [failing.id, disabled.id, healthy.id, hec.id, healthOnly.id].sort(), 'the other destination\'s job is not watched')

  const f = byId.get(failing.id)
  assert.equal(f.state, 'failing')
  assert.equal(f.enabled, true)
  assert.equal(f.failingTooLong, true)
  // Re-learned from last_complete: no success in the window, so the run began at the last success.
  assert.equal(f.failingSince, new Date(now - 2 * HOUR).toISOString())
  assert.equal(f.lastComplete, new Date(now - 2 * HOUR).toISOString())
  assert.equal(f.lastError, failing.last_error)
  assert.equal(f.errorMessage, failure.message)
  assert.equal(f.uploadsOk, 0)
  assert.ok(f.uploadsRetried >= 2, `retried attempts in the window: ${f.uploadsRetried}`)
  assert.deepEqual(f.failedStatuses, { 503: f.uploadsRetried })
  assert.ok(f.lagSeconds >= 7200, `lag ${f.lagSeconds}`)
  assert.equal(f.destination, 'https://receiver.example.net/logpush/http_requests')
  assert.equal(f.scope, 'zone')
  assert.equal(f.scopeId, ZONE)

  const d = byId.get(disabled.id)
  assert.equal(d.state, 'disabled')
  assert.equal(d.enabled, false)
  assert.equal(d.scope, 'account')
  assert.match(d.errorMessage, /DNS/)
  // Disabled an hour ago, it has attempted nothing since: the window is empty.
  assert.equal(d.uploadsRetried, 0)
  assert.deepEqual(d.failedStatuses, {})

  const g = byId.get(healthOnly.id)
  assert.equal(g.state, 'failing')
  assert.equal(g.lastError, null)
  assert.equal(g.uploadsFailed, 5)
  assert.ok(g.uploadsOk >= 5)
  assert.deepEqual(g.failedStatuses, { 1106: 5 })
  // Failing since its first failed minute after the last success: five minutes, not yet an hour.
  assert.equal(g.failingSince, new Date(Math.floor((now - 5 * MIN) / MIN) * MIN).toISOString())
  assert.equal(g.failingTooLong, false)

  for (const ok of [byId.get(healthy.id), byId.get(hec.id)]) {
    assert.equal(ok.state, 'ok')
    assert.ok(ok.uploadsOk >= 9, `ok uploads ${ok.uploadsOk}`)
    assert.equal(ok.uploadsFailed, 0)
    assert.equal(ok.failingSince, null)
  }
  assert.ok(!JSON.stringify(health).includes('job-secret'), 'the token in destination_conf is never shown')

  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  const labels = (job: DoubleJob, scope: string, scopeId: string): string => `job_id="${job.id}",dataset="${job.dataset}",scope="${scope}",scope_id="${scopeId}"`
  assert.ok(metricLines(metrics, 'lpr_logpush_job_failing').includes(`lpr_logpush_job_failing{${labels(failing, 'zone', ZONE)}} 1`), metrics)
  assert.ok(metricLines(metrics, 'lpr_logpush_job_failing').includes(`lpr_logpush_job_failing{${labels(healthy, 'zone', ZONE)}} 0`))
  assert.ok(metricLines(metrics, 'lpr_logpush_job_uploads').includes(`lpr_logpush_job_uploads{${labels(healthOnly, 'zone', ZONE)},status="failed"} 5`))
  assert.ok(metricLines(metrics, 'lpr_logpush_job_enabled').includes(`lpr_logpush_job_enabled{${labels(disabled, 'account', ACCOUNT)}} 0`))
  assert.ok(metricLines(metrics, 'lpr_logpush_job_enabled').includes(`lpr_logpush_job_enabled{${labels(failing, 'zone', ZONE)}} 1`))
  assert.ok(metricLines(metrics, 'lpr_logpush_job_uploads').includes(`lpr_logpush_job_uploads{${labels(failing, 'zone', ZONE)},status="retried"} ${f.uploadsRetried}`))
  assert.ok(metricLines(metrics, 'lpr_logpush_job_last_complete_timestamp_seconds').includes(`lpr_logpush_job_last_complete_timestamp_seconds{${labels(failing, 'zone', ZONE)}} ${(now - 2 * HOUR) / 1000}`))
  assert.equal(metricLines(metrics, 'lpr_logpush_job_enabled').length, 5)
  assert.ok(!metrics.includes(`job_id="${other.id}"`), 'no series for the other destination\'s job')
  assert.ok(metricLines(metrics, 'lpr_watchdog_poll_errors_total').includes('lpr_watchdog_poll_errors_total 0'))
  const lastPoll = Number(metricLines(metrics, 'lpr_watchdog_last_poll_timestamp_seconds')[0]!.split(' ')[1])
  assert.equal(lastPoll, Date.parse(w.lastPollAt) / 1000)
  assert.deepEqual(double.violations, [])
})

test('an auth failure is shown in /health and /metrics and stops nothing else: intake answers, the service stays healthy', { timeout: 60_000 }, async (t) => {
  const { double, base } = await start(t)
  addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests'), dataset: 'http_requests', enabled: true })
  const server = await startServer(t, { PUBLIC_URL, CLOUDFLARE_API_URL: base, WATCHDOG_API_TOKEN: 'revoked-token', WATCHDOG_ZONES: ZONE, WATCHDOG_POLL_SECONDS: '3600' })
  const health = await afterFirstPoll(server.url)
  assert.equal(health.status, 'ok')
  assert.equal(health.watchdog.errors[`zone/${ZONE}`], `listing Logpush jobs: HTTP ${AUTH_ERRORS.unknownToken.status}: Invalid access token (code 9109)`)
  assert.equal(health.watchdog.lastCompletePollAt, null)
  assert.equal(health.watchdog.pollErrors, 1)
  assert.deepEqual(health.watchdog.jobs, [])
  assert.ok(!JSON.stringify(health).includes('revoked-token'))
  const ping = await post(server, '/logpush/http_requests', '{"content":"tests"}')
  assert.equal(ping.status, 200, 'intake is not affected')
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.ok(metricLines(metrics, 'lpr_watchdog_poll_errors_total').includes('lpr_watchdog_poll_errors_total 1'))
  assert.deepEqual(double.violations, [])
})

interface Captured { readonly lines: Array<{ level: number, msg: string, [k: string]: unknown }> }

function capture(): { log: Logger, out: Captured } {
  const out: Captured = { lines: [] }
  const stream = new Writable({ write(chunk, _enc, cb) { for (const l of String(chunk).split('\n').filter(Boolean)) out.lines.push(JSON.parse(l)); cb() } })
  return { log: createLogger('info', stream), out }
}

function watchdog(base: string, log: Logger, token = TOKEN, over: Partial<ConstructorParameters<typeof Watchdog>[0]> = {}): Watchdog {
  return new Watchdog({
    baseUrl: base, credentials: { kind: 'token', token }, zones: [ZONE], accounts: [], publicUrl: PUBLIC_URL, allJobs: false,
    pollMs: HOUR, windowMs: 15 * MIN, failingMs: 10 * MIN, lagMs: HOUR, log, ...over
  })
}

test('a change of a job\'s state is logged once with its error_message, not at every poll; so is the recovery', async (t) => {
  const { double, base } = await start(t)
  const job = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests'), dataset: 'http_requests', name: 'edge', enabled: true })
  const { log, out } = capture()
  const w = watchdog(base, log)
  const now = Date.now()
  // Failing for five minutes: failing, but not yet for the 10 minutes the alert waits.
  recordUpload(double, job, { ok: true }, now - 6 * MIN)
  recordUploads(double, job, failure, now - 5 * MIN, now, MIN)
  await w.poll()
  assert.equal(w.status().jobs[0]!.state, 'failing')
  assert.equal(w.status().jobs[0]!.failingTooLong, false)
  assert.equal(w.gauges().jobs[0]!.failing, false)
  const errors = (): typeof out.lines => out.lines.filter((l) => l.level >= 50)
  assert.deepEqual(errors(), [])
  // With the threshold at 0 the same run raises the alert at its first poll, and only there.
  const w2 = watchdog(base, log, TOKEN, { failingMs: 0 })
  await w2.poll()
  await w2.poll()
  await w2.poll()
  assert.equal(errors().length, 1, JSON.stringify(out.lines))
  assert.match(errors()[0]!.msg, new RegExp(`Logpush job ${job.id} \\(edge\\) of zone/${ZONE} has been failing since .*: error 503: error pushing`))
  assert.equal(errors()[0]!.errorMessage, failure.message)
  assert.equal(w2.gauges().jobs[0]!.failing, true)
  recordUpload(double, job, { ok: true }, Date.now())
  await w2.poll()
  await w2.poll()
  const recovered = out.lines.filter((l) => /healthy again/.test(l.msg))
  assert.equal(recovered.length, 1)
  assert.equal(w2.status().jobs[0]!.state, 'ok')
  assert.equal(w2.gauges().jobs[0]!.failing, false)
  job.enabled = false
  await w2.poll()
  await w2.poll()
  assert.equal(errors().length, 2)
  assert.match(errors()[1]!.msg, /is disabled/)
  assert.equal(w2.status().jobs[0]!.state, 'disabled')
  assert.deepEqual(double.violations, [])
})

test('GraphQL errors are shown verbatim and the job fields still judge the job; a scope that cannot be listed marks its jobs unknown', async (t) => {
  const { double, base } = await start(t)
  const job = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests'), dataset: 'http_requests', enabled: true })
  recordUpload(double, job, failure, Date.now() - MIN)
  // A token that may list jobs but not read analytics: GraphQL answers 403 with its own words.
  double.tokens.set('logs-only', { accounts: '*', zones: '*', permissions: ['logs:write'] })
  const { log, out } = capture()
  const w = watchdog(base, log, 'logs-only', { failingMs: 0 })
  await w.poll()
  let s = w.status()
  assert.equal(s.errors[`zone/${ZONE}`], 'reading upload health (GraphQL): Cloudflare API answered HTTP 403: does not have access to the path')
  assert.equal(s.jobs[0]!.state, 'failing', 'last_error alone tells a failing job')
  assert.equal(s.jobs[0]!.uploadsOk, null)
  assert.equal(w.gauges().jobs[0]!.uploads, null)
  assert.equal(s.lastCompletePollAt, null)
  await w.poll()
  assert.equal(out.lines.filter((l) => /Watchdog cannot read/.test(l.msg)).length, 1, 'the same error is logged once')
  assert.equal(w.gauges().pollErrors, 2)

  // An error inside a 200 answer (GraphQL errors[] with data null).
  const w2 = watchdog(base, log, TOKEN, { failingMs: 0 })
  double.inject({ method: 'POST', path: /^\/graphql$/, reply: { status: 200, json: { data: null, errors: [{ message: 'unable to execute query, please try again later', path: ['viewer', 'zones', '0', 'logpushHealthAdaptiveGroups'] }] } } })
  await w2.poll()
  assert.equal(w2.status().errors[`zone/${ZONE}`], 'reading upload health (GraphQL): Cloudflare API answered HTTP 200: unable to execute query, please try again later (at viewer.zones.0.logpushHealthAdaptiveGroups)')
  await w2.poll()
  assert.deepEqual(w2.status().errors, {}, 'the next poll reads again')
  assert.equal(w2.status().jobs[0]!.uploadsRetried, 1)
  assert.ok(out.lines.some((l) => /Watchdog reads zone\/.* again/.test(l.msg)))
  assert.equal(w2.gauges().jobs[0]!.failing, true)

  // The token is revoked: the jobs stay shown with their last facts, state unknown, alert kept.
  double.tokens.delete(TOKEN)
  await w2.poll()
  s = w2.status()
  assert.equal(s.errors[`zone/${ZONE}`], `listing Logpush jobs: HTTP ${AUTH_ERRORS.unknownToken.status}: Invalid access token (code 9109)`)
  assert.equal(s.jobs[0]!.state, 'unknown')
  assert.equal(w2.gauges().jobs[0]!.failing, true, 'losing sight of a failing job does not resolve its alert')
  assert.deepEqual(double.violations, [])
})

test('polls repeat on their timer and end with stop()', async (t) => {
  const { double, base } = await start(t)
  addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('http_requests'), dataset: 'http_requests', enabled: true })
  const w = watchdog(base, createLogger('silent'), TOKEN, { pollMs: 5 })
  const graphql = (): number => double.requests.filter((r) => r.path === '/graphql').length
  w.start()
  while (graphql() < 3) await sleep(5)
  await w.stop()
  const after = graphql()
  await sleep(50)
  assert.equal(graphql(), after, 'no poll after stop()')
  assert.ok(w.status().lastCompletePollAt !== null)
  assert.deepEqual(double.violations, [])
})

test('the watchdog is off without settings, and half a configuration stops the start', () => {
  const log = createLogger('silent')
  assert.equal(createWatchdog(loadConfig({}), log), null)
  assert.throws(() => createWatchdog(loadConfig({ WATCHDOG_ZONES: ZONE }), log), /LPR_ERR_CONFIG_INVALID|needs WATCHDOG_API_TOKEN/)
  assert.throws(() => createWatchdog(loadConfig({ WATCHDOG_API_TOKEN: 'x' }), log), /WATCHDOG_ZONES/)
  assert.throws(() => loadConfig({ WATCHDOG_ZONES: 'example.com' }), /WATCHDOG_ZONES must match pattern/)
  assert.ok(createWatchdog(loadConfig({ WATCHDOG_API_TOKEN: 'x', WATCHDOG_ACCOUNTS: `${ACCOUNT},${ACCOUNT.replace('0', 'f')}`, PUBLIC_URL }), log))
  // The bug: with the placeholder PUBLIC_URL no job is found as this service's, and /health said all was fine.
  assert.throws(() => createWatchdog(loadConfig({ WATCHDOG_API_TOKEN: 'x', WATCHDOG_ZONES: ZONE }), log), /finds the jobs that push here by PUBLIC_URL/)
  assert.ok(createWatchdog(loadConfig({ WATCHDOG_API_TOKEN: 'x', WATCHDOG_ZONES: ZONE, WATCHDOG_ALL_JOBS: 'true' }), log))
})

test('with WATCHDOG_ALL_JOBS, /health shows only the scheme and host of another destination, whose path may be its secret', async (t) => {
  const { double, base } = await start(t)
  const sumo = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: 'sumo://endpoint1.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhaV3secretpath', dataset: 'http_requests', enabled: true })
  const ours = addJob(double, { kind: 'zones', id: ZONE }, { destination_conf: conf('dns_logs'), dataset: 'dns_logs', enabled: true })
  const w = watchdog(base, createLogger('silent'), TOKEN, { allJobs: true })
  await w.poll()
  const byId = new Map(w.status().jobs.map((j) => [j.id, j]))
  assert.equal(byId.get(sumo.id)!.destination, 'sumo://endpoint1.collection.us2.sumologic.com')
  assert.equal(byId.get(ours.id)!.destination, 'https://receiver.example.net/logpush/dns_logs')
  assert.ok(!JSON.stringify(w.status()).includes('secretpath'))
  assert.deepEqual(double.violations, [])
})
