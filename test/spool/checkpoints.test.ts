// Checkpoints written in groups (issue 20 item 5, src/spool/checkpoints.ts): a destination that
// takes a replay without duplicates lets its checkpoint lag by SPOOL_CHECKPOINT_INTERVAL_MS, so
// that many delivered segments cost one write; a crash then replays what the lag held, exactly
// once where the destination cuts back, and never loses a line: clean-up waits for durable
// checkpoints. A destination that cannot dedupe still has each checkpoint written before the
// next batch.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Forwarder, Spool } from '../../src/spool/index.js'
import { createLogger } from '../../src/observability/index.js'
import type { DeliveryBatch, DeliveryResult, Rejection, Sink } from '../../src/delivery.js'
import { FaultFs, fsError } from '../helpers/fault-fs.js'
import { bodies, drained, MemoryDestination, send, SPOOL_DIR, startService, type Body } from '../helpers/spool-harness.js'

const log = createLogger('silent')

async function until(what: string, done: () => boolean): Promise<void> {
  const end = Date.now() + 10_000
  while (!done()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}

const checkpointSyncs = (fs: FaultFs, from: number): number => fs.log.slice(from).filter((c) => c.op === 'sync' && c.path.includes('/checkpoints/')).length

/** A power cut, then a restart that delivers what its durable checkpoints left: each of `sent` must have arrived once. */
async function restartDeliversEachOnce(fs: FaultFs, destination: Sink & { copies(body: Body): number }, checkpointIntervalMs: number, sent: readonly Body[]): Promise<void> {
  const again = await startService(fs.crash(), destination, { checkpointIntervalMs })
  await drained(again)
  await again.stop()
  for (const b of sent) assert.equal(destination.copies(b), 1, b.digest)
}

test('many segments delivered within the interval cost one checkpoint write; a power cut before it replays them exactly once', async () => {
  const fs = new FaultFs()
  const destination = new MemoryDestination()
  const { spool } = await startService(fs, destination, { checkpointIntervalMs: 60_000 })
  const from = fs.log.length
  const sent = bodies(6, 3, 'lag')
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  await until('delivery', () => destination.delivered.length === 18)
  assert.equal(checkpointSyncs(fs, from), 0, 'no checkpoint written per delivered segment')
  assert.equal(spool.bytes() > 0, true, 'nothing deleted before a durable checkpoint passed it')
  // kill -9 / power cut: what was delivered is past the durable checkpoint.
  const after = fs.crash()
  const again = await startService(after, destination, { checkpointIntervalMs: 60_000 })
  await until('the replay', () => destination.delivered.length === 18 && again.spool.backlog('memory').segments === 0)
  for (const b of sent) assert.equal(destination.copies(b), 1, b.digest)
  const flushFrom = after.log.length
  await again.forwarder.stop(1000)
  assert.equal(checkpointSyncs(after, flushFrom), 1, 'the stop writes the lagging checkpoint, once')
  assert.equal(again.spool.bytes(), 0, 'and the delivered segments are then deleted')
})

test('a checkpoint group that fails to write is retried, and the segments it covers stay until one is durable', async () => {
  const fs = new FaultFs()
  const destination = new MemoryDestination()
  const { spool, forwarder } = await startService(fs, destination)
  let failing = true
  fs.hook = (call) => { if (failing && call.op === 'sync' && call.path.includes('/checkpoints/')) throw fsError('EIO', call.op, call.path) }
  const sent = bodies(3, 2, 'retry')
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  await until('delivery', () => destination.delivered.length === 6)
  const from = fs.log.length
  await until('a failed checkpoint write, retried', () => checkpointSyncs(fs, from) >= 2)
  assert.ok(spool.bytes() > 0, 'segments kept while no checkpoint past them is durable')
  failing = false
  await until('the retried write and the clean-up', () => spool.bytes() === 0)
  await forwarder.stop(1000)
  await restartDeliversEachOnce(fs, destination, 0, sent)
})

/** A destination that cannot dedupe and does not cut back (Splunk HEC): what it got, it keeps. */
class Keeping implements Sink {
  readonly name = 'keeping'
  readonly got: string[] = []
  async init(): Promise<void> {}
  async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    let n = 0
    for await (const line of batch.lines()) { this.got.push(line); n++ }
    return { delivered: n, duplicates: 0, rejected: [] }
  }
  copies(body: Body): number { return this.got.filter((l) => l === body.lines[0]).length }
  async close(): Promise<void> {}
}

test('a destination that cannot dedupe has each checkpoint durable before the next batch: a power cut sends nothing twice', async () => {
  const fs = new FaultFs()
  const destination = new Keeping()
  const { spool } = await startService(fs, destination, { checkpointIntervalMs: 60_000 })
  const sent = bodies(4, 2, 'keep')
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  await until('delivery', () => destination.got.length === 8 && spool.backlog('keeping').segments === 0)
  // The last batch's checkpoint is written before the forwarder looks for the next: let it land.
  await until('the last checkpoint durable (clean-up deletes the segments)', () => spool.bytes() === 0)
  await restartDeliversEachOnce(fs, destination, 60_000, sent)
})

/**
 * Elasticsearch as the spool sees it: a line is known by its _id (a replay stores nothing twice),
 * and a line it cannot index (a mapping conflict) is refused, every time it is sent.
 */
class Indexing implements Sink {
  readonly name = 'indexing'
  readonly replaysWithoutDuplicates = true
  readonly docs = new Set<string>()
  async init(): Promise<void> {}
  async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    const rejected: Rejection[] = []
    let n = 0
    for await (const line of batch.lines()) {
      if (line.includes('"line":0')) rejected.push({ dataset: batch.dataset, sink: this.name, code: 'LPR_ERR_REFUSED', reason: 'mapper_parsing_exception', raw: line })
      else { this.docs.add(line); n++ }
    }
    return { delivered: n, duplicates: 0, rejected }
  }
  async close(): Promise<void> {}
}

test('a lagging checkpoint does not store a refused line\'s dead letter twice: a batch with refusals has its checkpoint written at once', async () => {
  // The bug this pins: a destination that "replays without duplicates" (Elasticsearch, OpenSearch,
  // the files with shaping failures) had its checkpoint deferred even after a batch whose refused
  // lines were appended to the dead-letter files; a crash within SPOOL_CHECKPOINT_INTERVAL_MS
  // replayed the batch, the line was refused again, and its dead letter was stored twice.
  const fs = new FaultFs()
  const destination = new Indexing()
  const deadLetters: string[] = [] // the dead-letter files: fsync'd appends, they outlive the crash
  const startWith = (f: FaultFs) => startService(f, destination, { checkpointIntervalMs: 60_000, deadLetter: async (r) => { deadLetters.push(...r.map((x) => x.raw)) } })
  const { spool } = await startWith(fs)
  const sent = bodies(2, 3, 'refused')
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  await until('delivery', () => deadLetters.length === 2 && spool.backlog('indexing').segments === 0)
  // Written at once, the checkpoint lets clean-up delete the segments; lagging (the bug) it is not
  // written within the 60 s interval.
  await until('a written checkpoint past the batches with dead letters (clean-up deletes them)', () => spool.bytes() === 0)
  // kill -9 within the checkpoint interval.
  const again = await startWith(fs.crash())
  await drained(again)
  await again.stop()
  assert.equal(destination.docs.size, 4)
  assert.deepEqual(deadLetters.sort(), sent.map((b) => b.lines[0]!).sort(), 'each refused line dead-lettered once')
})

test('a spool refusing batches above its high watermark writes lagging checkpoints at once, so that it frees space without waiting SPOOL_CHECKPOINT_INTERVAL_MS', async () => {
  // The bug: with checkpoints lagging by the interval, a spool over its high watermark kept its
  // delivered segments (clean-up waits for durable checkpoints) and kept answering 503 for up to
  // the interval after its destination had caught up; /health stayed 503 with nothing to deliver.
  const fs = new FaultFs()
  const destination = new MemoryDestination()
  const spool = new Spool({ dir: SPOOL_DIR, highWatermarkBytes: 1, lowWatermarkBytes: 0.5, minFreeBytes: 0, dedupeSeconds: 3600, log, fs, checkpointIntervalMs: 3_600_000 })
  await spool.init()
  const forwarder = new Forwarder({ spool, sink: destination, log, deadLetter: async () => {}, retryMaxMs: 1 })
  spool.expectConsumers([forwarder.name])
  await forwarder.prepare()
  for (const b of bodies(1, 3, 'full')) assert.equal(await send(spool, b), 'stored')
  assert.notEqual(spool.refusal(), null, 'over the high watermark: refusing')
  forwarder.start()
  await until('delivery', () => destination.delivered.length === 3)
  await until('the spool accepting again', () => spool.refusal() === null)
  assert.equal(spool.bytes(), 0, 'the delivered segments are deleted')
  await forwarder.stop(1000)
})
