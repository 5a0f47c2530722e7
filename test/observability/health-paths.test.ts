// /health showed local paths to anyone who reached the intake port: a source's lastError carried
// the progress record's full path (LPR_ERR_SOURCE_STATE_UNREADABLE) and errno messages theirs
// (`EIO: i/o error, open '/var/lib/…'`). The root folders are now shown by name.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import { healthPlugin, maskLocalPaths } from '../../src/observability/health.js'
import { Stats } from '../../src/observability/stats.js'

const DATA_DIR = '/var/lib/logpush-receiver'

test('/health names DATA_DIR and SCHEMAS_DIR instead of showing where they are', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(healthPlugin, {
    version: 'test',
    stats: new Stats(['http_requests'], 10),
    readiness: async () => ({ ready: false, reasons: [`data directory not writable: EROFS: read-only file system, open '${DATA_DIR}/.health-probe'`] }),
    sources: () => ({ logs: { state: 'stopped', lastError: { code: 'LPR_ERR_SOURCE_STATE_UNREADABLE', message: `EIO: i/o error, open '${DATA_DIR}/sources/logs/progress.log'` } } }),
    collectors: () => ({ audit: { lastError: { message: 'schema /opt/lpr/schemas/audit_logs.json', at: new Date(0) } } }),
    localRoots: [[DATA_DIR, '$DATA_DIR'], ['/opt/lpr/schemas', '$SCHEMAS_DIR']]
  })
  const res = await app.inject({ method: 'GET', url: '/health' })
  assert.equal(res.statusCode, 503)
  assert.ok(!res.body.includes(DATA_DIR) && !res.body.includes('/opt/lpr'), res.body)
  const body = res.json()
  assert.equal(body.sources.logs.lastError.message, "EIO: i/o error, open '$DATA_DIR/sources/logs/progress.log'")
  assert.equal(body.reasons[0], "data directory not writable: EROFS: read-only file system, open '$DATA_DIR/.health-probe'")
  assert.equal(body.collectors.audit.lastError.message, 'schema $SCHEMAS_DIR/audit_logs.json')
  assert.equal(body.collectors.audit.lastError.at, '1970-01-01T00:00:00.000Z', 'a Date is shown as JSON shows it')
})

test('maskLocalPaths: the longer root wins, "/" is never a root, values other than strings pass', () => {
  const roots = [['/data', '$A'], ['/data/spool', '$B'], ['/', '$ROOT']] as const
  assert.deepEqual(maskLocalPaths({ a: '/data/spool/x /data/y', n: 3, b: true, z: null, l: ['/data'] }, roots), { a: '$B/x $A/y', n: 3, b: true, z: null, l: ['$A'] })
})
