// Token generation and rotation: the LOGPUSH_TOKENS values to set, the jobs that push to this
// service with an old token, and their destination_conf moved to the new token byte for byte.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { cli } from '../helpers/cli.js'
import { pointsAt, swapToken, usesToken } from '../../src/cli/rotation.js'
import { redactConf } from '../../src/cli/job-request.js'
import { addJob, destinationSettings, jobsState, startCloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { startServer } from '../helpers/server.js'


test('token generate: a new 256-bit token, added last to the current LOGPUSH_TOKENS (or to DATA_DIR/token)', async () => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-cli-tok-'))
  const r = await cli({ LOGPUSH_TOKENS: 'old1,old2', DATA_DIR: dataDir }, 'token', 'generate', '--json')
  assert.equal(r.code, 0, r.err)
  assert.match(r.json.token, /^[A-Za-z0-9_-]{43}$/)
  assert.equal(r.json.LOGPUSH_TOKENS, `old1,old2,${r.json.token}`)
  // The service's own file when LOGPUSH_TOKENS is unset, read (never created) the way the service reads it.
  await writeFile(join(dataDir, 'token'), 'from-file\n')
  const t = await cli({ DATA_DIR: dataDir }, 'token', 'generate')
  assert.equal(t.code, 0, t.err)
  const [token, , , line] = t.out.split('\n')
  assert.equal(line, `LOGPUSH_TOKENS=from-file,${token}`)
  const empty = await mkdtemp(join(tmpdir(), 'lpr-cli-tok-'))
  const fresh = await cli({ DATA_DIR: empty }, 'token', 'generate', '--json')
  assert.equal(fresh.json.LOGPUSH_TOKENS, fresh.json.token)
})

test('token rotate: lists the jobs pushing here with an old token; --update-jobs swaps only the token, validated by the service', async (t) => {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add('acc1')
  double.zones.set('zone1', { account: 'acc1', name: 'example.com' })
  double.tokens.set('cf', { accounts: '*', zones: '*', permissions: ['logs:read', 'logs:write'] })
  // The service already accepts both tokens (step 2 of a rotation).
  const server = await startServer(t, { LOGPUSH_TOKENS: 'old-token,new-token' })
  const env = { PUBLIC_URL: server.url, LOGPUSH_TOKENS: 'old-token,new-token', DATA_DIR: server.dataDir, CLOUDFLARE_API_URL: base, CLOUDFLARE_API_TOKEN: 'cf' }
  const oldConf = `${server.url}/logpush/http_requests?tags=a%2Cb&header_Authorization=Bearer%20old-token&x={DATE}`
  const zoneJob = addJob(double, { kind: 'zones', id: 'zone1' }, { dataset: 'http_requests', destination_conf: oldConf })
  const acctJob = addJob(double, { kind: 'accounts', id: 'acc1' }, { dataset: 'audit_logs', destination_conf: `${server.url}/logpush/audit_logs?header_Authorization=Bearer+old-token` })
  const current = addJob(double, { kind: 'accounts', id: 'acc1' }, { dataset: 'gateway_dns', destination_conf: `${server.url}/logpush/gateway_dns?header_Authorization=Bearer%20new-token` })
  const elsewhere = addJob(double, { kind: 'zones', id: 'zone1' }, { dataset: 'dns_logs', destination_conf: 'https://other.example/logpush/dns_logs?header_Authorization=Bearer%20old-token' })

  const listed = await cli(env, 'token', 'rotate', '--zone', 'zone1', '--account', 'acc1')
  assert.equal(listed.code, 0, listed.err)
  assert.equal(listed.out, `${zoneJob.id}\tzone zone1\thttp_requests\tuses an old token\n${acctJob.id}\taccount acc1\taudit_logs\tuses an old token\n\n` +
    '2 job(s) still push with an old token (run again with --update-jobs). Keep:\nLOGPUSH_TOKENS=old-token,new-token\n')
  assert.equal(double.requests.filter((q) => q.method === 'PUT').length, 0)

  const updated = await cli(env, 'token', 'rotate', '--zone', 'zone1', '--account', 'acc1', '--update-jobs', '--json')
  assert.equal(updated.code, 0, updated.err)
  assert.equal(updated.json.LOGPUSH_TOKENS, 'new-token')
  assert.deepEqual(updated.json.jobs.map((j: any) => [j.id, j.updated]), [[zoneJob.id, true], [acctJob.id, true]])
  const jobs = jobsState(double).jobs
  assert.equal(jobs.get(zoneJob.id)!.destination_conf, `${server.url}/logpush/http_requests?tags=a%2Cb&header_Authorization=Bearer%20new-token&x={DATE}`)
  assert.equal(jobs.get(acctJob.id)!.destination_conf, `${server.url}/logpush/audit_logs?header_Authorization=Bearer+new-token`)
  assert.equal(jobs.get(current.id)!.destination_conf, `${server.url}/logpush/gateway_dns?header_Authorization=Bearer%20new-token`)
  assert.equal(jobs.get(elsewhere.id)!.destination_conf, 'https://other.example/logpush/dns_logs?header_Authorization=Bearer%20old-token')
  // Each PUT made Cloudflare upload a validation file with the new token, which the service took.
  assert.deepEqual(destinationSettings(double).deliveries.map((d) => d.status), [200, 200])

  const done = await cli(env, 'token', 'rotate', '--zone', 'zone1', '--account', 'acc1')
  assert.equal(done.out, `No job of zone zone1, account acc1 pushes to ${server.url} with an old token. If these are all the zones and accounts with jobs pushing here, set, then restart the service:\nLOGPUSH_TOKENS=new-token\n`)
  // With the placeholder PUBLIC_URL no job can be found, and "drop the old token" would break every job that sends it.
  const placeholder = Object.fromEntries(Object.entries(env).filter(([k]) => k !== 'PUBLIC_URL'))
  const blind = await cli(placeholder, 'token', 'rotate', '--zone', 'zone1')
  assert.equal(blind.code, 2)
  assert.match(blind.err, /PUBLIC_URL is not set/)
  const one = await cli({ ...env, LOGPUSH_TOKENS: 'new-token' }, 'token', 'rotate', '--zone', 'zone1')
  assert.equal(one.code, 2)
  assert.match(one.err, /LOGPUSH_TOKENS holds one token/)
  assert.deepEqual(double.violations, [])
})

test('token rotate --update-jobs before the service knows the new token: the PUT fails validation, the job keeps its conf, exit 1', async (t) => {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.zones.set('zone1', { account: 'acc1', name: 'example.com' })
  double.tokens.set('cf', { accounts: '*', zones: '*', permissions: '*' })
  const server = await startServer(t, { LOGPUSH_TOKENS: 'old-token' })
  const conf = `${server.url}/logpush/http_requests?header_Authorization=Bearer%20old-token`
  const job = addJob(double, { kind: 'zones', id: 'zone1' }, { dataset: 'http_requests', destination_conf: conf })
  const r = await cli({ PUBLIC_URL: server.url, LOGPUSH_TOKENS: 'old-token,new-token', DATA_DIR: server.dataDir, CLOUDFLARE_API_URL: base, CLOUDFLARE_API_TOKEN: 'cf' }, 'token', 'rotate', '--zone', 'zone1', '--update-jobs')
  assert.equal(r.code, 1)
  assert.equal(r.out, `${job.id}\tzone zone1\thttp_requests\tFAILED: HTTP 400: error validating destination: error writing object: error uploading (code 1002)\n\n` +
    '1 job(s) still push with an old token. Keep:\nLOGPUSH_TOKENS=old-token,new-token\n')
  assert.equal(jobsState(double).jobs.get(job.id)!.destination_conf, conf)
  assert.deepEqual(double.violations, [])
})

test('rotation helpers: which confs point here, which carry a token, and a swap that keeps every other byte', () => {
  assert.ok(pointsAt('https://logs.example.com/logpush/x?a=b', 'https://logs.example.com'))
  assert.ok(pointsAt('splunk://logs.example.com:443/services/collector/raw?channel=c', 'https://logs.example.com/'))
  assert.ok(!pointsAt('https://logs.example.com.evil/logpush/x', 'https://logs.example.com'))
  assert.ok(!pointsAt('https://logs.example.com:8443/logpush/x', 'https://logs.example.com'))
  assert.ok(pointsAt('https://h.example/base/logpush/x', 'https://h.example/base'))
  assert.ok(!pointsAt('https://h.example/basement/logpush/x', 'https://h.example/base'))
  assert.ok(usesToken('https://h/x?header_Authorization=Splunk%20tok', 'tok', ''))
  assert.ok(!usesToken('https://h/x?header_Authorization=Bearer%20tok2', 'tok', ''))
  assert.ok(!usesToken('https://h/x?tok=tok', 'tok', ''))
  assert.ok(usesToken('https://h/x?header_X-Logpush-Secret=tok', 'tok', 'X-Logpush-Secret'))
  assert.ok(!usesToken('https://h/x?header_X-Logpush-Secret=tok', 'tok', ''))
  // The token also appears outside the header: only the header's copy changes.
  assert.equal(swapToken('https://h/tok?q=tok&header_Authorization=Bearer%20tok&z=1', 'tok', 'n+w/', ''), 'https://h/tok?q=tok&header_Authorization=Bearer%20n%2Bw%2F&z=1')
  assert.equal(swapToken('https://h/x?header_Authorization=Bearer%20a%2Fb', 'a/b', 'c', ''), 'https://h/x?header_Authorization=Bearer%20c')
  assert.equal(redactConf('https://h/x?header_Authorization=Bearer%20s3cr3t&tags=a'), 'https://h/x?header_Authorization=Bearer%20REDACTED&tags=a')
  assert.equal(redactConf('splunk://h:8088/services/collector/raw?channel=c&header_Authorization=Splunk%20abc'), 'splunk://h:8088/services/collector/raw?channel=c&header_Authorization=Splunk%20REDACTED')
  assert.equal(redactConf('azure://c/dir?sv=1&sig=abc%3D'), 'azure://c/dir?sv=1&sig=REDACTED')
})
