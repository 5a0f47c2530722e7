// The `logpush-receiver` CLI against the Cloudflare API double and the real service on loopback:
// the double performs the validation upload and the ownership challenge against the service (or
// S3Mock), so a job is only created when the destination the CLI built really answers.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3'
import { cli } from '../helpers/cli.js'
import { run } from '../../src/cli/run.js'
import { schemasDir } from '../../src/paths.js'
import { addJob, destinationSettings, jobsIn, jobsState, startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { TEST_TOKEN, startServer } from '../helpers/server.js'
import { TEST_S3_KEYS, newBucket, requireS3, testS3Client } from '../helpers/s3.js'

const CF_TOKEN = 'cf-api-token-0123456789'

interface Setup { double: CloudflareDouble, base: string, env: Record<string, string>, serviceUrl: string, adminUrl: string, dataDir: string }

async function setup(t: TestContext, serviceEnv: Record<string, string> = {}): Promise<Setup> {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add('acc1')
  double.zones.set('zone1', { account: 'acc1', name: 'example.com' })
  double.tokens.set(CF_TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read', 'logs:write'] })
  const server = await startServer(t, serviceEnv)
  const env = {
    PUBLIC_URL: server.url,
    LOGPUSH_TOKENS: serviceEnv.LOGPUSH_TOKENS ?? TEST_TOKEN,
    DATA_DIR: server.dataDir,
    CLOUDFLARE_API_URL: base,
    CLOUDFLARE_API_TOKEN: CF_TOKEN,
    // Where the CLI finds GET /logpush/challenges: the service's admin listener, or intake.
    ADMIN_ON_INTAKE: server.adminUrl === server.url ? 'true' : 'false',
    ADMIN_PORT: new URL(server.adminUrl).port
  }
  return { double, base, env, serviceUrl: server.url, adminUrl: server.adminUrl, dataDir: server.dataDir }
}


function schemaFields(dataset: string): string[] {
  const schema = JSON.parse(readFileSync(join(schemasDir, `${dataset}.json`), 'utf8')) as { properties: Record<string, { deprecated?: boolean }> }
  return Object.entries(schema.properties).filter(([, f]) => f.deprecated !== true).map(([k]) => k)
}

test('jobs create, zone dataset: the exact destination_conf, output_options and max_upload_*, validated against the running service', async (t) => {
  const s = await setup(t)
  const r = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--fields', 'ClientIP,RayID,EdgeStartTimestamp', '--json')
  assert.equal(r.code, 0, r.err)
  const [job] = jobsIn(s.double, { kind: 'zones', id: 'zone1' })
  assert.ok(job)
  assert.equal(job.destination_conf, `${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20${TEST_TOKEN}`)
  assert.equal(job.dataset, 'http_requests')
  assert.equal(job.enabled, false)
  assert.equal(job.name, 'logpush-receiver-http-requests')
  assert.deepEqual(job.output_options, { output_type: 'ndjson', field_names: ['ClientIP', 'RayID', 'EdgeStartTimestamp'], timestamp_format: 'rfc3339' })
  assert.equal(job.max_upload_bytes, 5_000_000)
  assert.equal(job.max_upload_records, 1000)
  // The double uploaded the validation file to the service, which took it.
  assert.deepEqual(destinationSettings(s.double).deliveries, [{ kind: 'validation', destination: `${s.serviceUrl}/logpush/http_requests`, status: 200 }])
  // Printed with the token redacted.
  assert.equal(r.json.destination_conf, `${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20REDACTED`)
  assert.ok(!r.out.includes(TEST_TOKEN) && !r.err.includes(TEST_TOKEN))
  const sent = s.double.requests.find((q) => q.method === 'POST' && q.path === '/zones/zone1/logpush/jobs')
  assert.equal(sent?.headers.authorization, `Bearer ${CF_TOKEN}`)
  // --dry-run --show-secrets prints the very body that was sent, byte for byte.
  const dry = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--fields', 'ClientIP,RayID,EdgeStartTimestamp', '--dry-run', '--show-secrets')
  assert.equal(dry.out.slice(dry.out.indexOf('\n\n') + 2), JSON.stringify(JSON.parse(sent!.body.toString()), null, 2) + '\n')
  assert.equal(JSON.stringify(JSON.parse(sent!.body.toString())), sent!.body.toString())
  assert.deepEqual(s.double.violations, [])
})

test('jobs create, account dataset with --all-fields: every non-deprecated field of our schema, the account path', async (t) => {
  const s = await setup(t)
  const r = await cli(s.env, 'jobs', 'create', '--dataset', 'network_analytics_logs', '--account', 'acc1', '--all-fields', '--timestamp-format', 'unixnano', '--enable', '--name', 'nal')
  assert.equal(r.code, 0, r.err)
  const [job] = jobsIn(s.double, { kind: 'accounts', id: 'acc1' })
  assert.ok(job)
  assert.equal(job.destination_conf, `${s.serviceUrl}/logpush/network_analytics_logs?header_Authorization=Bearer%20${TEST_TOKEN}`)
  assert.equal(job.enabled, true)
  assert.equal(job.name, 'nal')
  assert.deepEqual((job.output_options as any).field_names, schemaFields('network_analytics_logs'))
  assert.equal((job.output_options as any).timestamp_format, 'unixnano')
  assert.match(r.out, /^Created job 1 \(network_analytics_logs, account acc1, enabled\)/)
  assert.deepEqual(s.double.violations, [])
})

test('jobs create refuses a zone dataset with --account and an account dataset with --zone (usage error, exit 2, nothing sent)', async (t) => {
  const s = await setup(t)
  const a = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--account', 'acc1')
  assert.equal(a.code, 2)
  assert.match(a.err, /http_requests is a zone dataset: its jobs live under \/zones\/\{id\}\/logpush\/jobs, use --zone <zone id>/)
  const b = await cli(s.env, 'jobs', 'create', '--dataset', 'audit_logs', '--zone', 'zone1')
  assert.equal(b.code, 2)
  assert.match(b.err, /audit_logs is an account dataset/)
  const c = await cli(s.env, 'jobs', 'create', '--dataset', 'no_such_dataset', '--zone', 'zone1')
  assert.equal(c.code, 2)
  assert.match(c.err, /unknown dataset "no_such_dataset"/)
  const d = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--bogus')
  assert.equal(d.code, 2)
  assert.match(d.err, /Unknown option '--bogus'/)
  const e = await cli(s.env, 'jobs', 'frobnicate')
  assert.equal(e.code, 2)
  const f = await cli({ ...s.env, PUBLIC_URL: '' }, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1')
  assert.equal(f.code, 2)
  assert.match(f.err, /PUBLIC_URL is not set \(the default https:\/\/logs\.example\.com is a placeholder\)/)
  assert.equal(s.double.requests.length, 0)
})

test('jobs create --dry-run prints the exact request, token redacted unless --show-secrets, and sends nothing', async (t) => {
  const s = await setup(t)
  const r = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--fields', 'RayID,ClientIP', '--dry-run')
  assert.equal(r.code, 0, r.err)
  assert.equal(r.out, `POST ${s.base}/zones/zone1/logpush/jobs
Content-Type: application/json

{
  "dataset": "http_requests",
  "destination_conf": "${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20REDACTED",
  "name": "logpush-receiver-http-requests",
  "enabled": false,
  "output_options": {
    "output_type": "ndjson",
    "field_names": [
      "RayID",
      "ClientIP"
    ],
    "timestamp_format": "rfc3339"
  },
  "max_upload_bytes": 5000000,
  "max_upload_records": 1000
}
`)
  const shown = await cli(s.env, 'jobs', 'create', '--dataset', 'audit_logs', '--account', 'acc1', '--fields', 'ID', '--dry-run', '--show-secrets', '--json')
  assert.equal(shown.code, 0, shown.err)
  assert.deepEqual(shown.json, {
    method: 'POST',
    url: `${s.base}/accounts/acc1/logpush/jobs`,
    headers: { 'content-type': 'application/json' },
    body: {
      dataset: 'audit_logs',
      destination_conf: `${s.serviceUrl}/logpush/audit_logs?header_Authorization=Bearer%20${TEST_TOKEN}`,
      name: 'logpush-receiver-audit-logs',
      enabled: false,
      output_options: { output_type: 'ndjson', field_names: ['ID'], timestamp_format: 'rfc3339' },
      max_upload_bytes: 5000000,
      max_upload_records: 1000
    }
  })
  // Neither needed nor printed a Cloudflare credential.
  const noCreds = await cli({ ...s.env, CLOUDFLARE_API_TOKEN: '' }, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--dry-run')
  assert.equal(noCreds.code, 0, noCreds.err)
  assert.ok(!r.out.includes(CF_TOKEN) && !shown.out.includes(CF_TOKEN))
  assert.equal(s.double.requests.length, 0)
})

test('jobs list, show, disable, enable (every PUT re-validates the destination), delete', async (t) => {
  const s = await setup(t)
  assert.equal((await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--fields', 'RayID')).code, 0)
  addJob(s.double, { kind: 'accounts', id: 'acc1' }, { dataset: 'audit_logs', destination_conf: 'https://elsewhere.example/x?header_Authorization=Bearer%20theirs', enabled: true, error_message: 'error uploading to https://elsewhere.example/x?header_Authorization=Bearer%20theirs: 500' })

  const listed = await cli(s.env, 'jobs', 'list', '--zone', 'zone1', '--account', 'acc1', '--json')
  assert.equal(listed.code, 0, listed.err)
  assert.deepEqual(listed.json.map((j: any) => [j.id, j.scope, j.dataset, j.enabled]), [[1, 'zone zone1', 'http_requests', false], [2, 'account acc1', 'audit_logs', true]])
  assert.equal(listed.json[1].destination_conf, 'https://elsewhere.example/x?header_Authorization=Bearer%20REDACTED')
  // The bug: error_message quotes the destination, token and all, and was printed verbatim.
  assert.equal(listed.json[1].error_message, 'error uploading to https://elsewhere.example/x?header_Authorization=Bearer%20REDACTED: 500')
  const text = await cli(s.env, 'jobs', 'list', '--account', 'acc1')
  assert.equal(text.out, '2\taccount acc1\taudit_logs\tenabled\t-\terror: error uploading to https://elsewhere.example/x?header_Authorization=Bearer%20REDACTED: 500\thttps://elsewhere.example/x?header_Authorization=Bearer%20REDACTED\n')

  const shown = await cli(s.env, 'jobs', 'show', '1', '--zone', 'zone1', '--json')
  assert.equal(shown.code, 0, shown.err)
  assert.equal(shown.json.id, 1)
  assert.equal(shown.json.destination_conf, `${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20REDACTED`)
  const secret = await cli(s.env, 'jobs', 'show', '1', '--zone', 'zone1', '--show-secrets')
  assert.match(secret.out, new RegExp(`destination_conf: ${s.serviceUrl}/logpush/http_requests\\?header_Authorization=Bearer%20${TEST_TOKEN}\n`))

  const before = destinationSettings(s.double).deliveries.length
  const enabled = await cli(s.env, 'jobs', 'enable', '1', '--zone', 'zone1')
  assert.equal(enabled.code, 0, enabled.err)
  assert.equal(enabled.out, 'Job 1 enabled.\n')
  assert.equal(jobsState(s.double).jobs.get(1)!.enabled, true)
  const disabled = await cli(s.env, 'jobs', 'disable', '1', '--zone', 'zone1')
  assert.equal(disabled.out, 'Job 1 disabled.\n')
  assert.equal(jobsState(s.double).jobs.get(1)!.enabled, false)
  // terraform-provider-cloudflare#7044: each PUT uploaded a validation file again.
  assert.equal(destinationSettings(s.double).deliveries.length, before + 2)

  const refused = await cli(s.env, 'jobs', 'delete', '1', '--zone', 'zone1')
  assert.equal(refused.code, 2)
  assert.match(refused.err, /not deleting without --yes: stdin is not a terminal/)
  let asked = ''
  const declined = await run(['jobs', 'delete', '1', '--zone', 'zone1'], { env: s.env, stdout: () => {}, stderr: () => {}, confirm: async (q) => { asked = q; return false } })
  assert.equal(declined, 1)
  assert.equal(asked, 'Delete Logpush job 1 of zone zone1? [y/N] ')
  assert.ok(jobsState(s.double).jobs.has(1))
  const deleted = await cli(s.env, 'jobs', 'delete', '1', '--zone', 'zone1', '--yes', '--json')
  assert.equal(deleted.code, 0, deleted.err)
  assert.deepEqual(deleted.json, { id: 1, deleted: true })
  assert.ok(!jobsState(s.double).jobs.has(1))
  assert.deepEqual(s.double.violations, [])
})

test('errors: an unknown job and a refused credential exit 1 with the API\'s messages verbatim; a bad id is a usage error', async (t) => {
  const s = await setup(t)
  const unknown = await cli(s.env, 'jobs', 'show', '999', '--zone', 'zone1')
  assert.equal(unknown.code, 1)
  assert.equal(unknown.err, 'logpush-receiver: LPR_ERR_CLOUDFLARE_API: Cloudflare API: HTTP 404: job not found (code 1002)\n')
  const badToken = await cli({ ...s.env, CLOUDFLARE_API_TOKEN: 'not-a-known-token' }, 'jobs', 'list', '--zone', 'zone1', '--json')
  assert.equal(badToken.code, 1)
  assert.equal(badToken.err, 'logpush-receiver: LPR_ERR_CLOUDFLARE_API: Cloudflare API: HTTP 403: Invalid access token (code 9109)\n')
  assert.deepEqual(badToken.json.error.errors, [{ code: 9109, message: 'Invalid access token' }])
  assert.ok(!badToken.err.includes('not-a-known-token'))
  s.double.tokens.set('read-only', { accounts: '*', zones: '*', permissions: ['logs:read'] })
  const readOnly = await cli({ ...s.env, CLOUDFLARE_API_TOKEN: 'read-only' }, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1')
  assert.equal(readOnly.code, 1)
  assert.match(readOnly.err, /HTTP 403: Authentication error \(code 10000\)/)
  const noCreds = await cli({ ...s.env, CLOUDFLARE_API_TOKEN: '' }, 'jobs', 'list', '--zone', 'zone1')
  assert.equal(noCreds.code, 2)
  assert.match(noCreds.err, /no Cloudflare credentials: set CLOUDFLARE_API_TOKEN/)
  const badId = await cli(s.env, 'jobs', 'show', 'abc', '--zone', 'zone1')
  assert.equal(badId.code, 2)
  assert.match(badId.err, /"abc" is not a job id/)
  const tokenFile = join(await mkdtemp(join(tmpdir(), 'lpr-cli-')), 'cf-token')
  await writeFile(tokenFile, CF_TOKEN + '\n')
  const fromFile = await cli({ ...s.env, CLOUDFLARE_API_TOKEN: '' }, 'jobs', 'list', '--zone', 'zone1', '--api-token-file', tokenFile)
  assert.equal(fromFile.code, 0, fromFile.err)
  assert.equal(fromFile.out, 'No jobs.\n')
  assert.deepEqual(s.double.violations, [])
})

test('a destination that refuses the validation upload: validate says invalid, create fails with the API\'s message', async (t) => {
  const s = await setup(t)
  const good = await cli(s.env, 'jobs', 'validate', '--dataset', 'http_requests', '--zone', 'zone1', '--json')
  assert.equal(good.code, 0, good.err)
  assert.deepEqual(good.json, { destination_conf: `${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20REDACTED`, valid: true, message: '' })
  // A token the service does not know: it answers the upload 401.
  const bad = await cli(s.env, 'jobs', 'validate', '--dataset', 'http_requests', '--zone', 'zone1', '--token', 'wrong-token')
  assert.equal(bad.code, 1)
  assert.equal(bad.out, `invalid: error validating destination: error writing object: error uploading\n  ${s.serviceUrl}/logpush/http_requests?header_Authorization=Bearer%20REDACTED\n`)
  const create = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--token', 'wrong-token')
  assert.equal(create.code, 1)
  assert.equal(create.err, 'logpush-receiver: LPR_ERR_CLOUDFLARE_API: Cloudflare API: HTTP 400: error validating destination: error writing object: error uploading (code 1002)\n')
  assert.equal(jobsIn(s.double, { kind: 'zones', id: 'zone1' }).length, 0)
  assert.deepEqual(destinationSettings(s.double).deliveries.map((d) => d.status), [200, 401, 401])
  assert.deepEqual(s.double.violations, [])
})

test('--destination works for any destination; a wrong ownership token is refused with the API\'s error', async (t) => {
  const s = await setup(t)
  const r = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--destination', 's3://other-bucket/logs?region=us-east-1', '--ownership-challenge', 'a.b.c')
  assert.equal(r.code, 1)
  assert.match(r.err, /HTTP 400: incorrect ownership challenge \(code 1002\)/)
  const noSource = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--destination', 's3://other-bucket/logs?region=us-east-1')
  assert.equal(noSource.code, 2)
  assert.match(noSource.err, /other-bucket: no bucket source in CONFIG_FILE reads this bucket/)
  // S3-compatible (endpoint=) needs no challenge: created as given.
  const compat = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--destination', 'r2://bucket/logs?account-id=x&access-key-id=k&secret-access-key=s', '--json')
  assert.equal(compat.code, 0, compat.err)
  assert.equal(compat.json.destination_conf, 'r2://bucket/logs?account-id=x&access-key-id=REDACTED&secret-access-key=REDACTED')
  assert.equal(jobsIn(s.double, { kind: 'zones', id: 'zone1' })[0]!.destination_conf, 'r2://bucket/logs?account-id=x&access-key-id=k&secret-access-key=s')
  assert.deepEqual(s.double.violations, [])
})

test('ownership challenge through the HTTP intake: the double posts the token, the CLI reads GET /logpush/challenges and sends it', async (t) => {
  // The challenges are read from the admin listener, which the CLI finds by ADMIN_HOST:ADMIN_PORT.
  const s = await setup(t, { ADMIN_ON_INTAKE: 'false' })
  const r = await cli(s.env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--fields', 'RayID', '--ownership')
  assert.equal(r.code, 0, r.err)
  const create = s.double.requests.find((q) => q.method === 'POST' && q.path === '/zones/zone1/logpush/jobs')!
  const token = JSON.parse(create.body.toString()).ownership_challenge as string
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/)
  const kept = await (await fetch(`${s.adminUrl}/logpush/challenges`, { headers: { authorization: `Bearer ${TEST_TOKEN}` } })).json() as any
  assert.equal(kept.challenges[0].token, token)
  assert.deepEqual(destinationSettings(s.double).deliveries.map((d) => [d.kind, d.status]), [['challenge', 200], ['validation', 200]])
  assert.equal(jobsIn(s.double, { kind: 'zones', id: 'zone1' }).length, 1)
  assert.deepEqual(s.double.violations, [])
})

test('ownership challenge for an s3:// bucket a bucket source reads: the CLI reads the file from the bucket (S3Mock)', async (t) => {
  const url = requireS3(t)
  if (!url) return
  const s3 = testS3Client(url)
  t.after(() => s3.destroy())
  const bucket = await newBucket(s3, 'cli-owner')
  const dir = await mkdtemp(join(tmpdir(), 'lpr-cli-cfg-'))
  const configFile = join(dir, 'receiver.json')
  await writeFile(configFile, JSON.stringify({
    sources: [{ name: 'cf', bucket, prefix: 'logs/{DATE}/', dataset: 'http_requests', endpoint: url, forcePathStyle: true, accessKeyIdEnv: 'TEST_S3_KEY_ID', secretAccessKeyEnv: 'TEST_S3_SECRET' }]
  }))
  const s = await setup(t)
  // S3Mock stands in for AWS S3: the conf has no endpoint=, so Cloudflare asks for a challenge.
  destinationSettings(s.double).awsS3 = { endpoint: url, accessKeyId: TEST_S3_KEYS.TEST_S3_KEY_ID, secretAccessKey: TEST_S3_KEYS.TEST_S3_SECRET }
  const conf = `s3://${bucket}/logs/{DATE}?region=us-east-1`
  const env = { ...s.env, CONFIG_FILE: configFile, ...TEST_S3_KEYS }
  const r = await cli(env, 'jobs', 'create', '--dataset', 'http_requests', '--zone', 'zone1', '--destination', conf, '--fields', 'RayID', '--json')
  assert.equal(r.code, 0, r.err)
  const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket }))
  const keys = (listed.Contents ?? []).map((o) => o.Key!)
  assert.equal(keys.length, 1)
  assert.match(keys[0]!, /^logs\/ownership-challenge-[0-9a-f]{32}\.txt$/)
  const file = await (await s3.send(new GetObjectCommand({ Bucket: bucket, Key: keys[0] }))).Body!.transformToString()
  const create = s.double.requests.find((q) => q.method === 'POST' && q.path === '/zones/zone1/logpush/jobs')!
  assert.equal(JSON.parse(create.body.toString()).ownership_challenge, file)
  assert.equal(jobsIn(s.double, { kind: 'zones', id: 'zone1' })[0]!.destination_conf, conf)
  assert.deepEqual(s.double.violations, [])
})

test('jobs list and show hide a Sumo Logic source\'s path secret by default, as the watchdog does; --show-secrets shows it', async (t) => {
  // The bug (issue 21, item 8): the secret of a sumo:// destination is its path, which the
  // redactor did not know: jobs list/show printed it while the watchdog's /health hid it.
  const s = await setup(t)
  const conf = 'sumo://endpoint1.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhaV3secretpath=='
  const job = addJob(s.double, { kind: 'zones', id: 'zone1' }, { dataset: 'http_requests', destination_conf: conf, enabled: true, error_message: `error uploading to https://endpoint1.collection.us2.sumologic.com/receiver/v1/http/ZaVnC4dhaV3secretpath==: 403` })
  const hidden = 'sumo://endpoint1.collection.us2.sumologic.com/receiver/v1/http/REDACTED'
  const listed = await cli(s.env, 'jobs', 'list', '--zone', 'zone1', '--json')
  assert.equal(listed.code, 0, listed.err)
  const row = listed.json.find((j: any) => j.id === job.id)
  assert.equal(row.destination_conf, hidden)
  assert.equal(row.error_message, 'error uploading to https://endpoint1.collection.us2.sumologic.com/receiver/v1/http/REDACTED: 403')
  const text = await cli(s.env, 'jobs', 'list', '--zone', 'zone1')
  assert.ok(!text.out.includes('secretpath') && text.out.includes(hidden), text.out)
  const shown = await cli(s.env, 'jobs', 'show', String(job.id), '--zone', 'zone1')
  assert.ok(!shown.out.includes('secretpath') && shown.out.includes(`destination_conf: ${hidden}\n`), shown.out)
  const secret = await cli(s.env, 'jobs', 'show', String(job.id), '--zone', 'zone1', '--show-secrets')
  assert.ok(secret.out.includes(`destination_conf: ${conf}\n`), secret.out)
})
