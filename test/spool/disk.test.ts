// The spool's disk guard and its state files when the disk misbehaves, on FaultFs: each case is
// a clear error or a safe, logged choice, never a silent guess (#11 item 8).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Spool } from '../../src/spool/index.js'
import { createLogger } from '../../src/observability/index.js'
import { FaultFs, fsError } from '../helpers/fault-fs.js'
import { bodies, DATASET, SPOOL_DIR, send, type Body } from '../helpers/spool-harness.js'

const KiB = 1024

function spoolOn(fs: FaultFs, minFreeBytes: number): Spool {
  return new Spool({ dir: SPOOL_DIR, highWatermarkBytes: 1e12, lowWatermarkBytes: 0, minFreeBytes, dedupeSeconds: 3600, log: createLogger('silent'), fs })
}

/** Bodies of about `kib` KiB each. */
function bigBodies(n: number, kib: number, tag: string): Body[] {
  const pad = 'x'.repeat(1000)
  return bodies(n, kib, tag).map((b) => ({ digest: b.digest, lines: b.lines.map((l) => l.replace('{', `{"pad":"${pad}",`)) }))
}

test('a burst of batches stops at the disk reserve, not at a full disk', async () => {
  // The bug this pins: free space was read every 5 s only, so batches arriving faster ate the
  // SPOOL_MIN_FREE_BYTES reserve to the last byte; then neither the spool nor the events writer
  // (on the same disk) could write, and delivery, which would free the space, stopped too.
  const fs = new FaultFs()
  fs.capacityBytes = 400 * KiB
  const reserve = 200 * KiB
  const spool = spoolOn(fs, reserve)
  await spool.init()
  const answers = []
  for (const body of bigBodies(30, 20, 'burst')) {
    const a = await send(spool, body)
    answers.push(a)
    if (a === 'refused') break
  }
  assert.ok(!answers.includes('error'), `no write failed: ${answers.join(',')}`)
  assert.equal(answers.at(-1), 'refused', 'the spool refuses once the reserve is reached')
  const free = fs.capacityBytes - fs.usedBytes()
  assert.ok(free >= reserve - 21 * KiB, `the reserve is kept, but for one batch: ${free} bytes free`)
})

test('a full disk refuses batches (and fails readiness) even with SPOOL_MIN_FREE_BYTES=0, until space is free again', async () => {
  // The bug this pins: with SPOOL_MIN_FREE_BYTES=0 the free-space check can never refuse, so
  // /health stayed 200 (the balancer kept sending) while every batch failed with ENOSPC.
  const fs = new FaultFs()
  fs.capacityBytes = 100 * KiB
  const spool = spoolOn(fs, 0)
  await spool.init()
  const answers = []
  for (const body of bigBodies(10, 20, 'full')) {
    const a = await send(spool, body)
    answers.push(a)
    if (a !== 'stored') break
  }
  assert.equal(answers.at(-1), 'error', 'a write failed for lack of space')
  assert.match(spool.refusal() ?? '', /disk is full/, 'readiness (/health) reports the full disk')
  assert.equal(await send(spool, bigBodies(1, 1, 'later')[0]!), 'refused')
  fs.capacityBytes = 100 * 1024 * KiB
  await spool.refreshDisk()
  assert.equal(spool.refusal(), null, 'accepting again once space is free')
  assert.equal(await send(spool, bigBodies(1, 1, 'after')[0]!), 'stored')
})

test('a failed statfs keeps the disk guard working on an estimate; at start it is a clear error', async () => {
  // The bug this pins: a failed statfs set the free space to Infinity, which silently turned
  // the disk guard off.
  const fs = new FaultFs()
  fs.statfsError = 'EIO'
  await assert.rejects(spoolOn(fs, 1024).init(), { code: 'LPR_ERR_SPOOL_DISK_UNKNOWN' })
  await spoolOn(fs, 0).init() // no guard asked for: nothing to read

  const later = new FaultFs()
  later.capacityBytes = 400 * KiB
  const spool = spoolOn(later, 200 * KiB)
  await spool.init()
  later.statfsError = 'EIO'
  const answers = []
  for (const body of bigBodies(30, 20, 'estimate')) {
    const a = await send(spool, body)
    answers.push(a)
    if (a === 'refused') break
  }
  assert.equal(answers.at(-1), 'refused', `the estimate reaches the reserve: ${answers.join(',')}`)
  assert.ok(!answers.includes('error'))
})

test('an unreadable digests.log stops the start instead of being rewritten empty', async () => {
  // The bug this pins: any failure to read digests.log was taken for "no file", and the file
  // was then rewritten empty: every re-send record of the dedupe window was gone.
  const fs = new FaultFs()
  await fs.mkdir(SPOOL_DIR, { recursive: true })
  const digests = join(SPOOL_DIR, 'digests.log')
  const content = `${DATASET}:abc ${Date.now()} 41\n_seq ${Date.now()} 41\n`
  fs.put(digests, content)
  fs.hook = (call) => { if (call.op === 'open' && call.path === digests) throw fsError('EIO', 'open', digests) }
  await assert.rejects(spoolOn(fs, 0).init(), { code: 'LPR_ERR_SPOOL_STATE_UNREADABLE' })
  fs.hook = null
  assert.equal(await fs.readFile(digests, 'utf8'), content, 'the file is left as it was')
  const spool = spoolOn(fs, 0)
  await spool.init()
  assert.equal(spool.isDuplicate(DATASET, 'abc'), true, 'readable again: the record is still there')
})

test('an unreadable or damaged checkpoint stops the start instead of replaying everything', async () => {
  // The bug this pins: a checkpoint that could not be read or parsed became "start from 0",
  // and the destination got every spooled batch again.
  const fs = new FaultFs()
  const spool = spoolOn(fs, 0)
  await spool.init()
  assert.deepEqual(await spool.loadCheckpoint('fresh'), { seq: 0, index: 0 }, 'a destination without a checkpoint starts at the beginning')
  const path = join(SPOOL_DIR, 'checkpoints', 'file.json')
  fs.put(path, '{"seq":12,')
  await assert.rejects(spool.loadCheckpoint('file'), { code: 'LPR_ERR_SPOOL_STATE_UNREADABLE' })
  fs.put(path, '{"seq":12,"index":3}')
  fs.hook = (call) => { if (call.op === 'readFile' && call.path === path) throw fsError('EACCES', 'open', path) }
  await assert.rejects(spool.loadCheckpoint('file'), { code: 'LPR_ERR_SPOOL_STATE_UNREADABLE' })
  fs.hook = null
  assert.deepEqual(await spool.loadCheckpoint('file'), { seq: 12, index: 3 })
})
