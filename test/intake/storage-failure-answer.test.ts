// The bug: a data directory that turned read-only or failed with EIO mid-run answered some uploads
// 500 {"code":"EACCES","message":"EACCES: permission denied, unlink '<DATA_DIR>/spool/staging/…'"}:
// after the commit failed, removing the staging file failed too, and that unlink's errno (with
// its path) replaced the coded answer; an errno outside the five known ones was a 500 as well.
// Every storage failure must be a 503 with Retry-After and a coded message that names no path.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createLogger, Stats } from '../../src/observability/index.js'
import { createHttpServer } from '../../src/compose/http.js'
import { ChallengeLog, intakePlugin, TokenSet } from '../../src/intake/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import type { Config } from '../../src/config/index.js'
import { FaultFs, fsError, type Op } from '../helpers/fault-fs.js'
import { DATASET, MemoryDestination, SPOOL_DIR, startService } from '../helpers/spool-harness.js'
import { batchText } from '../helpers/fixtures.js'

const datasets = loadDatasets(schemasDir)
const log = createLogger('silent')

async function serve(fs: FaultFs): Promise<{ post: () => Promise<{ status: number, body: any, retryAfter: unknown }>, stop: () => Promise<void> }> {
  const service = await startService(fs, new MemoryDestination())
  const stats = new Stats(datasets.keys(), 100)
  const app = createHttpServer({ config: { requestTimeoutMs: 0, keepAliveTimeoutMs: 5000 } as Config, log, tls: null, stats, closing: () => false })
  await app.register(intakePlugin, {
    tokens: new TokenSet(['t0ken-0123456789abcdef']),
    authHeader: 'x-logpush-token',
    datasets,
    spool: service.spool,
    stats,
    challenges: new ChallengeLog(10),
    limits: { maxBodyBytes: 1 << 24, maxInflatedBytes: 1 << 26, headBytes: 4096, maxLineBytes: 1 << 20 },
    driftFieldsMax: 100,
    pool: null,
    commit: async (batch, digest) => {
      await batch.seal()
      return { stored: !(await batch.commit(digest)).duplicate }
    }
  })
  let n = 0
  return {
    post: async () => {
      const r = await app.inject({ method: 'POST', url: `/logpush/${DATASET}`, payload: batchText(DATASET, 50, 'unixnano', 50 * n++), headers: { authorization: 'Bearer t0ken-0123456789abcdef' } })
      return { status: r.statusCode, body: r.json(), retryAfter: r.headers['retry-after'] }
    },
    stop: async () => { await app.close(); await service.stop() }
  }
}

// The disk fails at one call of the commit (the fsync of the staged file, or its rename into
// segments/), and from then on also every removal: a volume turned read-only or failing.
const cases: Array<[Op, string]> = [
  ['sync', 'EIO'], ['rename', 'EROFS'], ['rename', 'EACCES'], ['sync', 'EACCES'], ['rename', 'EBADF']
]

for (const [op, code] of cases) {
  test(`${code} at ${op}, and at every unlink after it: 503 with Retry-After, coded, no path`, async (t) => {
    const fs = new FaultFs()
    const server = await serve(fs)
    t.after(() => server.stop())
    const ok = await server.post()
    assert.equal(ok.status, 200, 'a healthy disk stores the batch')

    let failing = false
    fs.hook = (call) => {
      if (call.op === op && (call.path.includes('/staging/') || call.path.includes('/segments/'))) failing = true
      if (failing && (call.op === op || call.op === 'rm') && call.path.startsWith(SPOOL_DIR)) throw fsError(code, call.op, call.path)
    }
    const r = await server.post()
    assert.equal(r.status, 503, JSON.stringify(r.body))
    assert.equal(r.body.code, 'LPR_ERR_INTAKE_NOT_READY')
    assert.equal(r.retryAfter, '30')
    assert.match(r.body.message, new RegExp(code))
    assert.ok(!r.body.message.includes('/'), `no path in ${r.body.message}`)
    assert.ok(!JSON.stringify(r.body).includes(SPOOL_DIR))
  })
}
