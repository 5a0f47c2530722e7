// The sources' failure policy in a bucket source, without a bucket: a client double lists one
// object and serves its body, an ingest double fails the way the pipeline and the spool fail.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { BucketSource, ProgressRecord, classify, dayOf, type BucketClient, type ObjectOutcome } from '../../src/sources/bucket/index.js'
import { normalizeSources } from '../../src/config/sources.js'
import { PipelineLinesBusy, PipelineWorkerGone, SourceBadGzip } from '../../src/errors.js'
import { createLogger } from '../../src/observability/index.js'
import { backoffMs, retryAfterMs } from '../../src/sources/failure-policy.js'
import { FaultFs, fsError } from '../helpers/fault-fs.js'
import { gzipSync } from 'node:zlib'
import { ingestObject } from '../../src/sources/bucket/index.js'
import { LineBudget, loadDatasets } from '../../src/pipeline/index.js'
import { Stats } from '../../src/observability/index.js'
import { schemasDir } from '../../src/paths.js'
import { DATASET, MemoryDestination, drained, startService } from '../helpers/spool-harness.js'
import { batchText } from '../helpers/fixtures.js'

const DIR = '/data/sources/s1'

function oneObjectClient(key: string): BucketClient {
  return {
    async list(prefix) {
      const objects = prefix.endsWith(`${dayOf(Date.now())}/`) ? [{ key: `${prefix}${key}`, etag: '"e1"', lastModified: Date.now(), size: 10 }] : []
      return { objects, next: undefined }
    },
    async get() { return Readable.from([Buffer.from('x')]) },
    destroy() {}
  }
}

function source(fs: FaultFs, ingest: () => Promise<ObjectOutcome>, extra: Record<string, unknown> = {}): BucketSource {
  const [config] = normalizeSources([{ name: 's1', bucket: 'b', prefix: 'logs/{DATE}/', dataset: 'http_requests', maxAttempts: 2, pollSeconds: 1, ...extra }])
  return new BucketSource({ config: config!, client: oneObjectClient('a.log.gz'), dir: DIR, ingest, onChallenge: () => {}, log: createLogger('silent'), fs, backoffBaseMs: 1 })
}

test('local trouble (line budget busy, spool ENOSPC/EIO, parse worker gone) pauses the source and never fails the object', async () => {
  // The bug (#21 item 2): classify() took PipelineLinesBusy, ENOSPC/EIO on the spool and a parse
  // worker's crash for "bucket unavailable"; after maxAttempts the object was marked failed for
  // good and its lines lost (5 reads while the budget was busy, none after it freed).
  const local = [
    () => new PipelineLinesBusy(1024),
    () => fsError('ENOSPC', 'write', '/data/spool/x'),
    () => fsError('EIO', 'sync', '/data/spool/x'),
    () => new PipelineWorkerGone('exited with code 1')
  ]
  for (const make of local) {
    const fs = new FaultFs()
    let reads = 0
    const s = source(fs, async () => {
      reads++
      if (reads <= 5) throw make()
      return { kind: 'stored', lines: 3, accepted: 3, rejected: 0, inflatedBytes: 10 }
    })
    await s.init()
    for (let i = 0; i < 10 && s.done === 0; i++) {
      await s.pollOnce()
      if (reads <= 5) assert.equal((s.status() as any).state, 'paused', `${make().code}: shown as a pause of the source`)
    }
    assert.equal(reads, 6, `${make().code}: read again after each pause`)
    assert.equal(s.failed, 0, `${make().code}: never given up (maxAttempts 2)`)
    assert.equal(s.done, 1)
    assert.equal((s.status() as any).state, 'ok')
    await s.stop()
  }
})

test('a read the bucket refuses (403) pauses the source and never fails the object: granted later, it is read', async () => {
  // The same class (#21 item 2): a policy missing s3:GetObject gave every object up after
  // maxAttempts, so none was read once the permission was granted.
  let reads = 0
  const s = source(new FaultFs(), async () => {
    reads++
    if (reads <= 4) throw Object.assign(new Error('Access Denied'), { name: 'AccessDenied', $metadata: { httpStatusCode: 403 } })
    return { kind: 'stored', lines: 1, accepted: 1, rejected: 0, inflatedBytes: 1 }
  })
  await s.init()
  for (let i = 0; i < 4; i++) {
    await s.pollOnce()
    assert.equal((s.status() as any).state, 'failing')
    assert.equal(s.gauges().up, false)
  }
  await s.pollOnce()
  assert.equal(s.failed, 0)
  assert.equal(s.done, 1)
  assert.equal(s.gauges().up, true)
  await s.stop()
})

test('only what the object is fails it: not gzip at once; the store failing it counts attempts up to maxAttempts', async () => {
  const fs = new FaultFs()
  const bad = source(fs, async () => { throw new SourceBadGzip('incorrect header check') })
  await bad.init()
  await bad.pollOnce()
  assert.equal(bad.failed, 1)
  await bad.stop()
  let reads = 0
  const flaky = source(new FaultFs(), async () => { reads++; throw Object.assign(new Error('InternalError'), { name: 'InternalError', $metadata: { httpStatusCode: 500 } }) })
  await flaky.init()
  await flaky.pollOnce()
  assert.equal(flaky.failed, 0)
  await flaky.pollOnce()
  assert.equal(flaky.failed, 1, 'given up after maxAttempts 2')
  assert.equal(reads, 2)
  await flaky.stop()
})

test('the policy table: local conditions, object verdicts, gone, throttling', () => {
  const cases: Array<[unknown, string]> = [
    [new PipelineLinesBusy(1), 'pause-local'],
    [new PipelineWorkerGone('x'), 'pause-local'],
    [fsError('ENOSPC', 'write', '/s'), 'pause-local'],
    [fsError('EIO', 'write', '/s'), 'pause-local'],
    [{ code: 'LPR_ERR_INTAKE_NOT_READY', message: 'spool full' }, 'pause-local'],
    [new SourceBadGzip('x'), 'fail-item'],
    [{ code: 'LPR_ERR_SOURCE_INFLATED_TOO_LARGE' }, 'fail-item'],
    [{ name: 'NoSuchKey', $metadata: { httpStatusCode: 404 } }, 'fail-item'],
    [{ name: 'SlowDown', $metadata: { httpStatusCode: 503 } }, 'pause-throttled'],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), 'retry-item'],
    [{ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }, 'permission']
  ]
  for (const [err, action] of cases) assert.equal(classify(err, 'read s3://b/k').action, action, JSON.stringify(err))
  assert.equal(classify(fsError('ENOSPC', 'write', '/s'), 'read').code, 'LPR_ERR_SOURCE_LOCAL')
  assert.equal(classify({ name: 'NoSuchKey' }, 'read').code, 'LPR_ERR_SOURCE_OBJECT_GONE')
})

test('backoff doubles to its cap; a Retry-After wins but never beyond its cap', () => {
  // The bug (#21 item 5): an unbounded Retry-After was obeyed: one header could park a collector for a day.
  const o = { baseMs: 1000, capMs: 60_000, retryAfterMaxMs: 300_000 }
  assert.deepEqual([1, 2, 3, 7, 40].map((n) => backoffMs(n, o)), [1000, 2000, 4000, 60_000, 60_000])
  assert.equal(backoffMs(1, { ...o, retryAfterMs: 30_000 }), 30_000)
  assert.equal(backoffMs(1, { ...o, retryAfterMs: 86_400_000 }), 300_000)
  assert.equal(retryAfterMs({ retryAfter: '120' }), 120_000)
  assert.equal(retryAfterMs({ headers: new Headers({ 'retry-after': '5' }) }), 5000)
  assert.equal(retryAfterMs('Wed, 21 Oct 2015 07:28:00 GMT'), null)
  assert.equal(retryAfterMs({}), null)
})

test('an unreadable progress record stops that source with a coded error and is never rewritten', async () => {
  // The bug (#21 item 3): one EIO reading progress.log made the source start as new: closedThrough
  // jumped from 20261110 to 20261122 (today minus the look-back), skipping every day between, and
  // the record was rewritten so the skip stuck.
  const fs = new FaultFs()
  await fs.mkdir(DIR, { recursive: true })
  const record = '{"closedThrough":"20261110","bucket":"b","prefix":"logs/{DATE}/"}\n{"d":"20261111","k":"logs/20261111/a.log.gz","e":"e1","s":"done","m":1,"n":3}\n'
  fs.put(`${DIR}/progress.log`, record)
  fs.hook = (call) => { if (call.op === 'readFile' && call.path.endsWith('progress.log')) throw fsError('EIO', 'read', call.path) }
  await assert.rejects(new ProgressRecord(DIR, fs).load('b', 'logs/{DATE}/', '20261122'), (err: any) => err.code === 'LPR_ERR_SOURCE_STATE_UNREADABLE' && /Fix the disk/.test(err.message))
  const s = source(fs, async () => { throw new Error('never read') })
  await s.init()
  const status = s.status() as any
  assert.equal(status.state, 'stopped')
  assert.equal(status.lastError.code, 'LPR_ERR_SOURCE_STATE_UNREADABLE')
  assert.equal(s.gauges().up, false)
  s.start()
  await s.stop()
  fs.hook = null
  assert.equal(await fs.readFile(`${DIR}/progress.log`, 'utf8'), record, 'the record is left as it was')
  assert.ok(!fs.log.some((c) => c.op === 'rename' || (c.op === 'open' && c.path.includes('progress'))), 'nothing written')
  // A header that is not ours is damage too, not a first start.
  fs.put(`${DIR}/progress.log`, 'garbage\n')
  await assert.rejects(new ProgressRecord(DIR, fs).load('b', 'logs/{DATE}/', '20261122'), { code: 'LPR_ERR_SOURCE_STATE_UNREADABLE' })
  // Readable again: it carries on from where it was.
  fs.put(`${DIR}/progress.log`, record)
  const p = new ProgressRecord(DIR, fs)
  await p.load('b', 'logs/{DATE}/', '20261122')
  assert.equal(p.closedThrough, '20261110')
  assert.equal(p.get('20261111', 'logs/20261111/a.log.gz')?.etag, 'e1')
})

test('through the real pipeline and spool: an object read while the shared line budget is held by others, and while the spool\'s disk fails, is stored once they free, never failed', async (t) => {
  // The bug (#21 item 2), end to end in process: the pipeline's own PipelineLinesBusy and the
  // spool's EIO were taken for "bucket unavailable" and the object was given up after maxAttempts.
  const fs = new FaultFs()
  const destination = new MemoryDestination()
  const service = await startService(fs, destination)
  t.after(() => service.stop())
  const dataset = loadDatasets(schemasDir).get(DATASET)!
  const text = batchText(DATASET, 50)
  const budget = new LineBudget(64 * 1024)
  const objects = {
    spool: service.spool, stats: new Stats([DATASET], 100, 100), pool: null, maxLineBytes: 64 * 1024, maxInflatedBytes: 1 << 24,
    driftFieldsMax: 100, driftFieldNameMaxChars: 100, maxLineDepth: 64, lineBudget: budget,
    commit: async (batch: any, digest: string) => { await batch.seal(); return { stored: !(await batch.commit(digest)).duplicate } }
  }
  const client: BucketClient = { ...oneObjectClient('a.log.gz'), async get() { return Readable.from([gzipSync(text)]) } }
  const [config] = normalizeSources([{ name: 's1', bucket: 'b', prefix: 'logs/{DATE}/', dataset: DATASET, maxAttempts: 2, pollSeconds: 1 }])
  const s = new BucketSource({ config: config!, client, dir: DIR, ingest: (body, digest, label) => ingestObject(objects, dataset, body, digest, label), onChallenge: () => {}, log: createLogger('silent'), fs, backoffBaseMs: 1 })
  await s.init()
  // Other requests hold the whole budget for five polls.
  budget.used = budget.bytes
  for (let i = 0; i < 5; i++) {
    await s.pollOnce()
    assert.equal((s.status() as any).lastError?.code, 'LPR_ERR_PIPELINE_LINES_BUSY')
  }
  budget.used = 0
  // Then the spool's disk fails every write for five polls.
  fs.hook = (call) => { if (call.op === 'write' && call.path.includes('/spool/')) throw fsError('EIO', 'write', call.path) }
  for (let i = 0; i < 5; i++) {
    await s.pollOnce()
    assert.equal((s.status() as any).state, 'paused', JSON.stringify((s.status() as any).lastError))
  }
  fs.hook = null
  for (let i = 0; i < 3 && s.done === 0; i++) await s.pollOnce()
  assert.equal(s.failed, 0, 'never given up (maxAttempts 2)')
  assert.equal(s.done, 1)
  await drained(service)
  assert.deepEqual(destination.delivered, text.split('\n').filter(Boolean), 'every line once')
  await s.stop()
})

test('an empty progress record is damage, not a first start: the source stops and the file is left as it is', async () => {
  // The bug: a progress.log that exists but is empty (zeroed or truncated by a disk or a hand;
  // the service only ever writes one with its header) was read as no record at all: the source
  // started as new at today minus startLookbackDays and rewrote the record, skipping every day
  // between the one it had closed and that.
  const fs = new FaultFs()
  await fs.mkdir(DIR, { recursive: true })
  fs.put(`${DIR}/progress.log`, '')
  await assert.rejects(new ProgressRecord(DIR, fs).load('b', 'logs/{DATE}/', '20261122'), { code: 'LPR_ERR_SOURCE_STATE_UNREADABLE' })
  assert.equal(await fs.readFile(`${DIR}/progress.log`, 'utf8'), '', 'the record is left as it was')
})

test('a Retry-After that is not whole seconds (a fraction, an exponent, hex, a sign) is no Retry-After: the backoff applies', () => {
  // The bug: any number was believed, so a peer answering "Retry-After: 0.001" (or "1e-9") made
  // a collector, which retries for ever, try again after a millisecond every time: a hot loop
  // against the API, the doubling backoff bypassed. HTTP's Retry-After is whole seconds (RFC 9110
  // 10.2.3: 1*DIGIT); "0x10" and "+5" were read as numbers too.
  for (const v of ['0.001', '1e-9', '1e3', '0x10', '+5', '-5', ' ', 'soon', '5s']) {
    assert.equal(retryAfterMs(v), null, v)
    assert.equal(retryAfterMs({ retryAfter: v }), null, v)
  }
  const o = { baseMs: 1000, capMs: 60_000, retryAfterMaxMs: 300_000 }
  assert.equal(backoffMs(5, { ...o, retryAfterMs: retryAfterMs({ headers: new Headers({ 'retry-after': '0.001' }) }) }), 16_000)
  // Whole seconds, with the blanks a header may carry around them, still win.
  assert.equal(retryAfterMs(' 7 '), 7000)
  assert.equal(retryAfterMs(['3']), 3000)
})
