// Spool bookkeeping on real files. Each test pins a way lines answered 200 could be lost.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Forwarder, Spool } from '../../src/spool/index.js'
import { createLogger } from '../../src/observability/index.js'
import { FaultFs } from '../helpers/fault-fs.js'
import { MemoryDestination } from '../helpers/spool-harness.js'

const isSegment = (name: string): boolean => name.endsWith('.seg')

async function spoolAt(dir: string, dedupeSeconds = 3600, highWatermarkBytes = 1e12): Promise<Spool> {
  const s = new Spool({ dir, highWatermarkBytes, lowWatermarkBytes: highWatermarkBytes / 10, minFreeBytes: 0, dedupeSeconds, log: createLogger('silent') })
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
  assert.equal((await readdir(join(dir, 'segments'))).filter(isSegment).length, 3, 'nothing deleted while elasticsearch has not registered')
  await spool.loadCheckpoint('elasticsearch')
  assert.equal(spool.next(0)?.seq, 1, 'elasticsearch still gets the first batch')
  await spool.saveCheckpoint('elasticsearch', { seq: 4, index: 0 })
  assert.equal((await readdir(join(dir, 'segments'))).filter(isSegment).length, 0, 'deleted once both are past them')
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

test('re-send digests older than the window are forgotten; a window of 0 turns detection off', async (t) => {
  // The clock is node:test's mock of Date (timers stay real): the commit's fsyncs take real time,
  // and on a slow machine they outlasted the 1 s window before the first check (a flake audit).
  t.mock.timers.enable({ apis: ['Date'], now: Date.now() })
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  const spool = await spoolAt(dir, 1)
  await commit(spool, '{"x":1}', 'd1')
  assert.equal(spool.isDuplicate('http_requests', 'd1'), true)
  t.mock.timers.tick(1000)
  assert.equal(spool.isDuplicate('http_requests', 'd1'), true, 'recognised for the whole window')
  // Commit times are kept in whole seconds, rounded up: forgotten within one second after the window.
  t.mock.timers.tick(1100)
  assert.equal(spool.isDuplicate('http_requests', 'd1'), false)
  const off = await spoolAt(await mkdtemp(join(tmpdir(), 'lpr-spool-')), 0)
  await commit(off, '{"x":2}', 'd2')
  assert.equal(off.isDuplicate('http_requests', 'd2'), false)
  await commit(off, '{"x":2}', 'd2')
})

/** A Map that counts the entries its iterators hand out. */
class CountingMap<K, V> extends Map<K, V> {
  visited = 0
  override * entries(): MapIterator<[K, V]> { for (const e of super.entries()) { this.visited++; yield e } }
  override * values(): MapIterator<V> { for (const v of super.values()) { this.visited++; yield v } }
  override * keys(): MapIterator<K> { for (const k of super.keys()) { this.visited++; yield k } }
  override [Symbol.iterator](): MapIterator<[K, V]> { return this.entries() }
}

test('draining a backlog does constant work per segment, however long the backlog', async () => {
  // The bug this pins (#11 item 7): finding a destination's next segment, its backlog, the
  // spool's size and the segments to delete each walked every segment on disk, on every step:
  // a backlog of 50k segments cost 11 s of CPU per destination. White-box: the spool's map of
  // segments is swapped for one that counts what its iterators visit.
  const fs = new FaultFs()
  const spool = new Spool({ dir: '/spool', highWatermarkBytes: 1e12, lowWatermarkBytes: 0, minFreeBytes: 0, dedupeSeconds: 3600, log: createLogger('silent'), fs })
  const counting = new CountingMap<number, unknown>()
  Object.defineProperty((spool as unknown as { segs: object }).segs, 'segments', { value: counting })
  await spool.init()
  const n = 3000
  for (let i = 0; i < n; i++) await commit(spool, `{"n":${i}}`, `d${i}`)
  spool.expectConsumers(['fast', 'slow'])
  let fast = await spool.loadCheckpoint('fast')
  let slow = await spool.loadCheckpoint('slow')
  counting.visited = 0
  // One destination drains while the other holds every segment, then the other drains.
  for (const name of ['fast', 'slow'] as const) {
    for (let seg = spool.next(name === 'fast' ? fast.seq : slow.seq); seg; seg = spool.next(seg.seq + 1)) {
      spool.backlog(name)
      spool.bytes()
      const cp = { seq: seg.seq + 1, index: 0 }
      await spool.saveCheckpoint(name, cp)
      if (name === 'fast') fast = cp
      else slow = cp
    }
    assert.equal(spool.backlog(name).segments, 0)
  }
  assert.equal(spool.bytes(), 0, 'everything delivered is deleted')
  assert.ok(counting.visited <= 4 * n, `${counting.visited} segment visits to drain ${n} segments twice`)
})

test('a checkpoint restored without its segments never makes a new batch lose its first lines', async () => {
  // The bug this pins: a checkpoint {seq: 5, index: 3} restored onto an empty spool made the next
  // new segment number 5, and the destination skipped its first 3 lines as "delivered".
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  await mkdir(join(dir, 'checkpoints'), { recursive: true })
  await writeFile(join(dir, 'checkpoints', 'file.json'), JSON.stringify({ seq: 5, index: 3 }))
  const spool = await spoolAt(dir)
  spool.expectConsumers(['file'])
  const cp = await spool.loadCheckpoint('file')
  const batch = await spool.open('http_requests', 'req')
  for (let i = 0; i < 4; i++) batch.writeEvent(`{"n":${i}}`)
  await batch.seal()
  await batch.commit('restored')
  const seg = spool.next(cp.seq)!
  const from = seg.seq === cp.seq ? cp.index : 0
  const lines: string[] = []
  for await (const l of spool.lines(seg, from)) lines.push(l)
  assert.equal(lines.length, 4, `segment ${seg.seq} delivered from line ${from}`)
})

test('a clean-up asked for while one runs deletes what the newer checkpoint passed', async () => {
  // The bug this pins: collect() folded a second request into the clean-up already under way,
  // which used the older bound, so segments every destination had passed stayed on disk (and
  // counted against the high watermark) until some later checkpoint.
  const fs = new FaultFs()
  const spool = new Spool({ dir: '/spool', highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: createLogger('silent'), fs })
  await spool.init()
  for (let i = 0; i < 4; i++) await commit(spool, `{"c":${i}}`, `c${i}`)
  spool.expectConsumers(['file'])
  await spool.loadCheckpoint('file')
  // The first clean-up's deletion waits until the second checkpoint is saved.
  let release!: () => void
  const gate = new Promise<void>((resolve) => { release = resolve })
  let held = false
  fs.hook = async (call) => { if (call.op === 'rm' && !held) { held = true; await gate } }
  const first = spool.saveCheckpoint('file', { seq: 2, index: 0 })
  while (!held) await new Promise((r) => setImmediate(r))
  const second = spool.saveCheckpoint('file', { seq: 5, index: 0 })
  await new Promise((r) => setTimeout(r, 20))
  release()
  await Promise.all([first, second])
  fs.hook = null
  assert.equal(spool.bytes(), 0, 'every segment the destination passed is deleted')
  assert.deepEqual((await fs.readdir('/spool/segments')).filter(isSegment), [])
})

test('a spool above its high watermark at start refuses from the first batch', async () => {
  // The bug this pins: the watermark was only checked after a commit, so a service restarted
  // with a spool above its high watermark said ok in /health and accepted the first batch.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-spool-'))
  const first = await spoolAt(dir, 3600, 1e12)
  for (let i = 0; i < 5; i++) await commit(first, `{"w":${i},"pad":"${'x'.repeat(200)}"}`, `w${i}`)
  const bytes = first.bytes()
  const again = await spoolAt(dir, 3600, bytes / 2)
  assert.match(again.refusal() ?? 'accepting', /SPOOL_HIGH_WATERMARK_BYTES/)
})

test('a destination that does not take a dataset writes no checkpoint per segment it skips, and they are still deleted', async () => {
  // The bug this pins: a destination routed away from a dataset wrote a checkpoint (two fsyncs)
  // for every segment of it that it skipped, as many as the batches themselves cost.
  const fs = new FaultFs()
  const log = createLogger('silent')
  const spool = new Spool({ dir: '/spool', highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log, fs })
  await spool.init()
  const taker = new MemoryDestination()
  const skipper = Object.assign(new MemoryDestination(), { name: 'skipper' })
  const forwarders = [
    new Forwarder({ spool, sink: taker, log, deadLetter: async () => {}, retryMaxMs: 1 }),
    new Forwarder({ spool, sink: skipper, log, deadLetter: async () => {}, retryMaxMs: 1, accepts: () => false })
  ]
  spool.expectConsumers(forwarders.map((f) => f.name))
  for (const f of forwarders) await f.prepare()
  const skipperWrites: string[] = []
  fs.hook = (call) => { if (call.path.includes('checkpoints/skipper') && (call.op === 'sync' || call.op === 'rename')) skipperWrites.push(call.op) }
  for (const f of forwarders) f.start()
  for (let i = 0; i < 10; i++) await commit(spool, `{"s":${i}}`, `s${i}`)
  const end = Date.now() + 10_000
  while ((spool.backlog('memory').segments > 0 || spool.bytes() > 0) && Date.now() < end) await new Promise((r) => setTimeout(r, 5))
  for (const f of forwarders) await f.stop(1000)
  fs.hook = null
  assert.equal(taker.delivered.length, 10)
  assert.equal(skipper.delivered.length, 0)
  // Its position goes out with the group of checkpoints (SPOOL_CHECKPOINT_INTERVAL_MS) and at the
  // stop, never once per skipped segment: clean-up waits for durable checkpoints.
  assert.ok(skipperWrites.filter((op) => op === 'sync').length <= 2, `checkpoint writes for 10 skipped segments: ${skipperWrites.join()}`)
  assert.equal(spool.bytes(), 0, 'segments the skipper passed and the taker delivered are deleted')
})

test('a batch without lines makes no segment, and is still recognised when sent again after a restart', async () => {
  // The bug this pins: an object or window with no lines (or a batch whose every line was
  // refused) still made an empty segment, with its fsyncs, its checkpoint writes per destination
  // and its place in the backlog.
  const fs = new FaultFs()
  const log = createLogger('silent')
  const open = async (f: FaultFs): Promise<Spool> => {
    const s = new Spool({ dir: '/spool', highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log, fs: f })
    await s.init()
    return s
  }
  const spool = await open(fs)
  const batch = await spool.open('http_requests', 'req')
  await batch.seal()
  assert.deepEqual(await batch.commit('nothing'), { duplicate: false, seq: 0 })
  assert.deepEqual((await fs.readdir('/spool/segments')).filter(isSegment), [])
  assert.deepEqual(await fs.readdir('/spool/staging'), [], 'its staging file is gone')
  assert.equal(spool.isDuplicate('http_requests', 'nothing'), true)
  const again = await open(fs.crash())
  assert.equal(again.isDuplicate('http_requests', 'nothing'), true, 'recorded durably')
  assert.equal(await commit(again, '{"after":1}'), 1, 'numbering is not disturbed')
})

test('a clean-up asked for just as the one under way finishes runs again, not folded into the finished one', async () => {
  // The bug: collect() cleared its "under way" mark in a .finally() attached outside the run, one
  // microtask after the run's last pass; a request in that microtask (a checkpoint written just
  // then) was told the finished run would cover it, and its segments stayed until the next one.
  const spool = new Spool({ dir: '/spool', highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: createLogger('silent'), fs: new FaultFs() })
  await spool.init()
  const inner = spool as unknown as { collect(): Promise<void>, collectOnce(): Promise<void> }
  let passes = 0
  let finishFirst!: () => void
  inner.collectOnce = () => { passes++; return passes === 1 ? new Promise<void>((resolve) => { finishFirst = resolve }) : Promise.resolve() }
  const first = inner.collect()
  finishFirst()
  await null // the run's last pass has returned; a request comes in the next microtask
  const second = inner.collect()
  await Promise.all([first, second])
  assert.equal(passes, 2, 'the second request had a pass of its own')
})
