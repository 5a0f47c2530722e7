// The Cloudflare API double's own tests for the Logpush job write operations, through the official
// SDK (as our code calls them): create/update/delete, destination validation with a real upload
// (http and https with the service on loopback), and ownership challenges the double issues and checks.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer, type IncomingMessage } from 'node:http'
import { mkdtemp, readFile } from 'node:fs/promises'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { sdkClient } from '../../../src/cloudflare-api/client.js'
import { describeApiError } from '../../../src/cloudflare-api/client.js'
import { destinationSettings, issueToken, jobsState, startCloudflareDouble } from './index.js'
import { TEST_TOKEN, startServer } from '../server.js'

async function started(t: import('node:test').TestContext) {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add('acc1')
  double.zones.set('zone1', { account: 'acc1', name: 'example.com' })
  double.tokens.set('cf', { accounts: '*', zones: '*', permissions: ['logs:read', 'logs:write'] })
  return { double, client: sdkClient(base, { kind: 'token', token: 'cf' }, { maxRetries: 0 }) }
}

async function apiError(p: Promise<unknown>): Promise<string> {
  try {
    await p
  } catch (err) {
    return describeApiError(err)
  }
  throw new Error('expected the API to refuse')
}

test('double: the validation upload is a gzipped {"content":"tests"} POST with the header_* params as headers (and out of the query)', async (t) => {
  const { double, client } = await started(t)
  const seen: Array<{ req: IncomingMessage, body: Buffer }> = []
  let answer = 200
  const dest = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => { seen.push({ req, body: Buffer.concat(chunks) }); res.writeHead(answer).end() })
  })
  await new Promise<void>((r) => dest.listen(0, '127.0.0.1', r))
  t.after(() => dest.close())
  const conf = `http://127.0.0.1:${(dest.address() as AddressInfo).port}/in?tags=a&header_Authorization=Bearer%20s%2Fecret&header_X-Extra=1`
  const ok = await client.logpush.validate.destination({ zone_id: 'zone1', destination_conf: conf })
  assert.deepEqual(ok, { valid: true, message: '' })
  const [first] = seen
  assert.equal(first!.req.url, '/in?tags=a')
  assert.equal(first!.req.method, 'POST')
  assert.equal(first!.req.headers.authorization, 'Bearer s/ecret')
  assert.equal(first!.req.headers['x-extra'], '1')
  assert.equal(first!.req.headers['content-encoding'], 'gzip')
  assert.equal(gunzipSync(first!.body).toString(), '{"content":"tests"}')
  answer = 415
  const bad = await client.logpush.validate.destination({ account_id: 'acc1', destination_conf: conf })
  assert.deepEqual(bad, { valid: false, message: 'error validating destination: error writing object: error uploading' })
  assert.equal(await apiError(client.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf, dataset: 'http_requests' })),
    'HTTP 400: error validating destination: error writing object: error uploading (code 1002)')
  // Only loopback may be plain http (a test-only deviation).
  assert.equal((await client.logpush.validate.destination({ zone_id: 'zone1', destination_conf: 'http://example.com/x' }))?.valid, false)
  assert.equal(jobsState(double).jobs.size, 0)
  assert.deepEqual(double.violations, [])
})

test('double: an https destination must have a certificate the double trusts; the service over TLS validates', async (t) => {
  const { double, client } = await started(t)
  const dir = await mkdtemp(join(tmpdir(), 'lpr-double-tls-'))
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', join(dir, 'k.pem'), '-out', join(dir, 'c.pem')], { stdio: 'ignore' })
  const server = await startServer(t, { TLS_CERT_FILE: join(dir, 'c.pem'), TLS_KEY_FILE: join(dir, 'k.pem') })
  const conf = `${server.url.replace('http:', 'https:')}/logpush/http_requests?header_Authorization=Bearer%20${TEST_TOKEN}`
  // Self-signed and not trusted: what Cloudflare does with it too.
  assert.equal((await client.logpush.validate.destination({ zone_id: 'zone1', destination_conf: conf }))?.valid, false)
  destinationSettings(double).destinationCa = await readFile(join(dir, 'c.pem'), 'utf8')
  const job = await client.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf, dataset: 'http_requests', enabled: true })
  assert.equal(job?.enabled, true)
  assert.equal(destinationSettings(double).deliveries.at(-1)!.status, 200)
  assert.deepEqual(double.violations, [])
})

test('double: create, update, delete and exists; a job is created disabled, kind cannot change, a PUT of an unknown job is 404', async (t) => {
  const { double, client } = await started(t)
  const conf = 'r2://bucket/logs?account-id=x&access-key-id=k&secret-access-key=s'
  assert.deepEqual(await client.logpush.validate.destinationExists({ zone_id: 'zone1', destination_conf: conf }), { exists: false })
  const job = await client.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf, dataset: 'http_requests', name: 'j', max_upload_records: 1000 })
  assert.equal(job?.enabled, false)
  assert.equal(job?.max_upload_records, 1000)
  assert.deepEqual(await client.logpush.validate.destinationExists({ zone_id: 'zone1', destination_conf: conf }), { exists: true })
  assert.deepEqual(await client.logpush.validate.destinationExists({ account_id: 'acc1', destination_conf: conf }), { exists: false })
  const updated = await client.logpush.jobs.update(job!.id!, { zone_id: 'zone1', enabled: true, name: 'k' })
  assert.equal(updated?.enabled, true)
  assert.equal(updated?.name, 'k')
  assert.equal(updated?.destination_conf, conf)
  assert.equal(await apiError(client.logpush.jobs.update(job!.id!, { zone_id: 'zone1', kind: 'edge' })), 'HTTP 400: kind cannot be updated (code 1002)')
  assert.equal(await apiError(client.logpush.jobs.update(99, { zone_id: 'zone1', enabled: true })), 'HTTP 404: job not found (code 1002)')
  // A job of the zone is not reachable through the account.
  assert.equal(await apiError(client.logpush.jobs.delete(job!.id!, { account_id: 'acc1' })), 'HTTP 404: job not found (code 1002)')
  assert.deepEqual(await client.logpush.jobs.delete(job!.id!, { zone_id: 'zone1' }), { id: job!.id })
  assert.equal(await apiError(client.logpush.jobs.get(job!.id!, { zone_id: 'zone1' })), 'HTTP 404: job not found (code 1002)')
  double.tokens.set('ro', { accounts: '*', zones: '*', permissions: ['logs:read'] })
  const ro = sdkClient(double.baseUrl, { kind: 'token', token: 'ro' }, { maxRetries: 0 })
  assert.equal(await apiError(ro.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf })), 'HTTP 403: Authentication error (code 10000)')
  // permissions.mdx: every Logpush operation, reading jobs too, needs Logs Write.
  assert.equal(await apiError(ro.logpush.jobs.list({ zone_id: 'zone1' }).then((p) => p.getPaginatedItems())), 'HTTP 403: Authentication error (code 10000)')
  assert.deepEqual(double.violations, [])
})

test('double: ownership tokens are checked against scope, destination_conf (byte for byte) and expiry; a new conf needs a new token', async (t) => {
  const { double, client } = await started(t)
  const conf = 's3://bucket/logs/{DATE}?region=us-east-1'
  // Without awsS3 the double cannot reach "AWS": the API's own kind of failure.
  assert.match(await apiError(client.logpush.ownership.create({ zone_id: 'zone1', destination_conf: conf })), /^HTTP 400: error validating destination: .* \(code 1002\)$/)
  const token = issueToken(double, { kind: 'zones', id: 'zone1' }, conf)
  assert.deepEqual(await client.logpush.ownership.validate({ zone_id: 'zone1', destination_conf: conf, ownership_challenge: token }), { valid: true })
  for (const [scope, c] of [[{ zone_id: 'zone1' }, conf + '&sse=AES256'], [{ account_id: 'acc1' }, conf]] as const) {
    assert.equal(await apiError(client.logpush.ownership.validate({ ...scope, destination_conf: c, ownership_challenge: token })), 'HTTP 400: incorrect ownership challenge (code 1002)')
  }
  assert.equal(await apiError(client.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf, dataset: 'http_requests' })), 'HTTP 400: incorrect ownership challenge (code 1002)')
  const job = await client.logpush.jobs.create({ zone_id: 'zone1', destination_conf: conf, dataset: 'http_requests', ownership_challenge: token })
  const moved = 's3://bucket/other/{DATE}?region=us-east-1'
  assert.equal(await apiError(client.logpush.jobs.update(job!.id!, { zone_id: 'zone1', destination_conf: moved })), 'HTTP 400: incorrect ownership challenge (code 1002)')
  const again = await client.logpush.jobs.update(job!.id!, { zone_id: 'zone1', destination_conf: moved, ownership_challenge: issueToken(double, { kind: 'zones', id: 'zone1' }, moved) })
  assert.equal(again?.destination_conf, moved)
  // Seven days later the token has expired.
  const now = Date.now()
  double.now = () => now + 7 * 86_400_000 + 1000
  assert.equal(await apiError(client.logpush.ownership.validate({ zone_id: 'zone1', destination_conf: conf, ownership_challenge: token })), 'HTTP 400: incorrect ownership challenge (code 1002)')
  assert.deepEqual(double.violations, [])
})
