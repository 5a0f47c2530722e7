// Collectors inside the service: a collector whose credential Cloudflare refuses stops alone,
// the other collector stores through the spool to the destination, the intake still answers 200,
// and /health and /metrics show each collector.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { post, readStore, startServer } from '../helpers/server.js'
import { batchText } from '../helpers/fixtures.js'
import { addAuditV1, addAuditV2, startCloudflareDouble } from '../helpers/cloudflare-double/index.js'
import { schemasDir } from '../../src/paths.js'

const ACCOUNT = '01a7362d577a6c3019a474fd6f485823'

/** CONFIG_FILE lines of the collector that works in every test: audit logs v2 of ACCOUNT. */
const AUDIT_V2_COLLECTOR = [
  'collectors:',
  '  - name: audit-v2',
  '    type: audit_logs_v2',
  `    account: "${ACCOUNT}"`,
  '    auth: { tokenEnv: TEST_APP_CF_TOKEN }',
  '    delaySeconds: 0',
  '    startLookbackHours: 1'
]

/** /health once its collectors section is as `done` wants (30 s at most). */
async function settled(url: string, done: (collectors: Record<string, any>) => boolean): Promise<any> {
  const end = Date.now() + 30_000
  for (;;) {
    const health = await (await fetch(`${url}/health`)).json() as any
    const c = health.collectors ?? {}
    if (done(c)) return health
    assert.ok(Date.now() < end, `collectors settle: ${JSON.stringify(c)}`)
    await sleep(50)
  }
}

test('a refused collector stops alone; the other collector and the intake go on; /health and /metrics show both', async (t) => {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add(ACCOUNT)
  double.tokens.set('goodtoken', { accounts: [ACCOUNT], zones: [], permissions: ['audit:read'] })
  // A token without the audit permission: 403 "Authentication error" (10000).
  double.tokens.set('jobsonly', { accounts: [ACCOUNT], zones: [], permissions: ['logs:read'] })
  const now = Date.now()
  for (let i = 0; i < 3; i++) addAuditV2(double, ACCOUNT, now - 600_000 + i * 1000, { id: `v2-${i}` })
  addAuditV1(double, ACCOUNT, now - 600_000, { id: 'never-read' })
  process.env.TEST_APP_CF_TOKEN = 'goodtoken'
  process.env.TEST_APP_CF_WEAK = 'jobsonly'
  const dir = await mkdtemp(join(tmpdir(), 'lpr-collector-app-'))
  const config = join(dir, 'receiver.yaml')
  await writeFile(config, [
    ...AUDIT_V2_COLLECTOR,
    '  - name: audit-weak',
    '    type: audit_logs',
    `    account: "${ACCOUNT}"`,
    '    auth: { tokenEnv: TEST_APP_CF_WEAK }',
    '    startLookbackHours: 1',
    ''
  ].join('\n'))
  const server = await startServer(t, { CONFIG_FILE: config, CLOUDFLARE_API_URL: base, SINKS: 'file' })
  const health = await settled(server.url, (c) => c['audit-weak']?.state === 'stopped' && c['audit-v2']?.records === 3)
  const weak = health.collectors['audit-weak']
  assert.equal(weak.type, 'audit_logs')
  assert.equal(weak.dataset, 'audit_logs')
  assert.equal(weak.lastError.code, 'LPR_ERR_COLLECTOR_AUTH')
  assert.match(weak.lastError.message, /HTTP 403: Authentication error \(code 10000\)/)
  const good = health.collectors['audit-v2']
  assert.equal(good.state, 'running')
  assert.equal(good.dataset, 'audit_logs_v2')
  assert.equal(good.lastError, null)
  assert.equal(good.lastWindow.records, 3)
  assert.ok(good.lagSeconds < 120, `caught up: ${good.lagSeconds}`)
  assert.ok(!JSON.stringify(health).includes('goodtoken') && !JSON.stringify(health).includes('jobsonly'), 'no token in /health')

  const r = await post(server, '/logpush/http_requests', batchText('http_requests', 3))
  assert.equal(r.status, 200, 'the intake is not affected')

  const stored = (await readStore(server, 'events', 'audit_logs_v2')).split('\n').filter(Boolean).map((l) => JSON.parse(l))
  assert.deepEqual(stored.map((l) => l.AuditLogID), ['v2-0', 'v2-1', 'v2-2'])
  assert.equal(stored[0].ActorEmail, 'admin@example.com')

  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /lpr_collector_up\{collector="audit-weak"\} 0/)
  assert.match(metrics, /lpr_collector_up\{collector="audit-v2"\} 1/)
  assert.match(metrics, /lpr_collector_records_total\{collector="audit-v2",dataset="audit_logs_v2"\} 3/)
  assert.match(metrics, /lpr_collector_errors_total\{collector="audit-weak",code="LPR_ERR_COLLECTOR_AUTH"\} 1/)
  assert.match(metrics, /lpr_collector_lag_seconds\{collector="audit-v2"\} \d/)
  assert.deepEqual(double.violations, [])
})

test('a collector that cannot be built stops alone, shown in /health and /metrics; the other runs', async (t) => {
  // The bug: one collector whose build threw (here its record mapping is missing from SCHEMAS_DIR)
  // kept every collector from starting, with one log line and an empty /health section.
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add(ACCOUNT)
  double.tokens.set('goodtoken', { accounts: [ACCOUNT], zones: [], permissions: ['audit:read'] })
  const now = Date.now()
  for (let i = 0; i < 3; i++) addAuditV2(double, ACCOUNT, now - 600_000 + i * 1000, { id: `v2-${i}` })
  process.env.TEST_APP_CF_TOKEN = 'goodtoken'
  const dir = await mkdtemp(join(tmpdir(), 'lpr-collector-unbuilt-'))
  const schemas = join(dir, 'schemas')
  await cp(schemasDir, schemas, { recursive: true })
  await rm(join(schemas, 'collectors', 'audit_logs.json'))
  const config = join(dir, 'receiver.yaml')
  await writeFile(config, [
    ...AUDIT_V2_COLLECTOR,
    '  - name: audit-v1',
    '    type: audit_logs',
    `    account: "${ACCOUNT}"`,
    '    auth: { tokenEnv: TEST_APP_CF_TOKEN }',
    ''
  ].join('\n'))
  const server = await startServer(t, { CONFIG_FILE: config, SCHEMAS_DIR: schemas, CLOUDFLARE_API_URL: base, SINKS: 'file' })
  const health = await settled(server.url, (c) => c['audit-v1']?.state === 'stopped' && c['audit-v2']?.records === 3)
  assert.match(health.collectors['audit-v1'].lastError.message, /audit_logs/)
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_collector_up\{collector="audit-v1"\} 0$/m)
  assert.match(metrics, /^lpr_collector_up\{collector="audit-v2"\} 1$/m)
  assert.deepEqual(double.violations, [])
})
