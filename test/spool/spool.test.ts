// Spool bookkeeping on real files. Each test pins a way lines answered 200 could be lost.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Spool } from '../../src/spool/index.js'
import { createLogger } from '../../src/observability/index.js'

async function spoolAt(dir: string, dedupeSeconds = 3600): Promise<Spool> {
  const s = new Spool({ dir, highWatermarkBytes: 1e12, lowWatermarkBytes: 1e11, minFreeBytes: 0, dedupeSeconds, log: createLogger('silent') })
  await s.init()
  return s
}

async function commit(spool: Spool, line: string, digest = line.replace(/\W/g, '')): Promise<number> {
  const batch = await spool.open('http_requests', 'req')
  batch.writeEvent(line)
  await batch.seal()
  const outcome = await batch.commit(digest)
  if (outcome.duplicate) throw new Error('unexpected duplicate')
  return outcome.seq
}

test('no segment is deleted before every destination has loaded its checkpoint', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  const first = await spoolAt(dir)
  for (const l of ['{"a":1}', '{"a":2}', '{"a":3}']) await commit(first, l)

  // A restart: the file destination is fast, Elasticsearch still starting.
  const spool = await spoolAt(dir)
  spool.expectConsumers(['file', 'elasticsearch'])
  await spool.loadCheckpoint('file')
  await spool.saveCheckpoint('file', { seq: 4, index: 0 })
  assert.equal((await readdir(join(dir, 'segments'))).length, 3, 'nothing deleted while elasticsearch has not registered')
  await spool.loadCheckpoint('elasticsearch')
  assert.equal(spool.next(0)?.seq, 1, 'elasticsearch still gets the first batch')
  await spool.saveCheckpoint('elasticsearch', { seq: 4, index: 0 })
  assert.equal((await readdir(join(dir, 'segments'))).length, 0, 'deleted once both are past them')
})

test('a sequence number a destination has passed is never given to a new batch', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  const first = await spoolAt(dir)
  first.expectConsumers(['file'])
  await first.loadCheckpoint('file')
  // A checkpoint ahead of every segment on disk (a segment's rename lost to a power cut after a
  // destination had seen it would leave exactly this).
  await first.saveCheckpoint('file', { seq: 7, index: 0 })
  const spool = await spoolAt(dir)
  spool.expectConsumers(['file'])
  const cp = await spool.loadCheckpoint('file')
  const seq = await commit(spool, '{"after":"restart"}')
  assert.ok(seq >= cp.seq, `new batch got ${seq}, checkpoint is ${cp.seq}`)
  assert.equal(spool.next(cp.seq)?.seq, seq, 'the destination will deliver it')
})

test('re-send digests older than the window are forgotten; a window of 0 turns detection off', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  const spool = await spoolAt(dir, 1)
  await commit(spool, '{"x":1}', 'd1')
  assert.equal(spool.isDuplicate('http_requests', 'd1'), true)
  await new Promise((r) => setTimeout(r, 1100))
  assert.equal(spool.isDuplicate('http_requests', 'd1'), false)
  const off = await spoolAt(await mkdtemp(join(tmpdir(), 'lpr-spool-')), 0)
  await commit(off, '{"x":2}', 'd2')
  assert.equal(off.isDuplicate('http_requests', 'd2'), false)
  await commit(off, '{"x":2}', 'd2')
})
