// Parse workers that die: a request they were checking is refused whole (503), nothing of it is
// stored, and the same body sent again is stored once; workers are restarted with backoff, and
// every worker validates against the schemas the main thread loaded, never SCHEMAS_DIR again.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import { ingest, loadDatasets, ParsePool, schemaSnapshot } from '../../src/pipeline/index.js'
import { DatasetStats, createLogger } from '../../src/observability/index.js'
import { schemasDir } from '../../src/paths.js'
import { FaultFs } from '../helpers/fault-fs.js'
import { DATASET, MemoryDestination, drained, startService } from '../helpers/spool-harness.js'
import { batchText } from '../helpers/fixtures.js'

const datasets = loadDatasets(schemasDir)
// The pool's workers and timers are unref'd (they never keep a stopping service alive); in a
// service the listener keeps the loop alive, here this does.
const keepAlive = setInterval(() => {}, 1000)
test.after(() => clearInterval(keepAlive))
const dataset = datasets.get(DATASET)!
const MAX_LINE = 1024 * 1024

function poolOf(schemas = schemaSnapshot(datasets), o: { restartBaseMs?: number, restartMaxMs?: number } = {}): ParsePool {
  return new ParsePool(1, { schemas, driftFieldsMax: 100, driftFieldNameMaxChars: 100, maxLineBytes: MAX_LINE, ...o }, createLogger('silent'))
}

/** The body in pieces; `between` runs after the first piece went out (a worker killed mid-batch). */
function body(text: string, between?: () => Promise<void>): Readable {
  const buf = Buffer.from(text)
  const piece = 64 * 1024
  return Readable.from((async function * () {
    for (let at = 0; at < buf.length; at += piece) {
      yield buf.subarray(at, at + piece)
      if (at === 0 && between) await between()
    }
  })())
}

async function until(what: string, ok: () => boolean): Promise<void> {
  for (let i = 0; i < 2000 && !ok(); i++) await sleep(5)
  assert.ok(ok(), what)
}

test('a parse worker killed mid-batch: that request fails with 503 LPR_ERR_PIPELINE_WORKER_GONE, nothing half-stored; sent again it is stored once', async (t) => {
  // The bug (#21 item 6): a worker that died failed its requests with an uncoded error (answered
  // 500, not a 503 Logpush retries on) and was restarted at once without backoff, re-reading the
  // schemas from disk.
  const fs = new FaultFs()
  const destination = new MemoryDestination()
  const service = await startService(fs, destination)
  const pool = poolOf(undefined, { restartBaseMs: 20 })
  t.after(async () => { await pool.close(); await service.stop() })
  const text = batchText(DATASET, 4000)
  const lines = text.split('\n').filter(Boolean)
  assert.ok(text.length > 4 * 64 * 1024, 'several pieces, so the worker dies mid-batch')
  const run = (source: Readable): Promise<Awaited<ReturnType<typeof ingest>>> => ingest({
    dataset, open: (d) => service.spool.open(d.name, 'req'), source, through: [], tally: new DatasetStats(100, 100), maxLineBytes: MAX_LINE, requestId: 'req', pool
  })
  await assert.rejects(run(body(text, async () => { await pool.workers()[0]!.terminate() })), (err: any) => {
    assert.equal(err.code, 'LPR_ERR_PIPELINE_WORKER_GONE')
    assert.equal(err.statusCode, 503, 'answered 503: Logpush sends the batch again')
    return true
  })
  assert.deepEqual(fs.list('/data/spool/segments').filter((n) => n.endsWith('.seg')), [], 'no segment of the failed request')
  assert.deepEqual(fs.list('/data/spool/staging'), [], 'its staging file removed')
  // The replacement starts after the backoff, not at once.
  assert.equal(pool.spawned, 1)
  await until('a worker is started again', () => pool.spawned === 2)
  const again = await run(body(text))
  assert.equal(again.accepted, lines.length)
  await again.batch!.seal()
  await again.batch!.commit('digest-1')
  await drained(service)
  assert.deepEqual(destination.delivered, lines, 'every line once, byte for byte')
})

test('workers that keep dying are restarted with a growing backoff, not in a loop', async () => {
  const pool = poolOf(undefined, { restartBaseMs: 40, restartMaxMs: 10_000 })
  try {
    const gaps: number[] = []
    for (let i = 0; i < 3; i++) {
      const before = pool.spawned
      const killedAt = Date.now()
      await pool.workers()[0]!.terminate()
      await until(`restart ${i + 1}`, () => pool.spawned === before + 1)
      gaps.push(Date.now() - killedAt)
    }
    // 40, 80, 160 ms at least: each death in a row doubles the wait.
    assert.ok(gaps[0]! >= 40 && gaps[1]! >= 80 && gaps[2]! >= 160, `gaps ${gaps.join(', ')} ms`)
    // Meanwhile a request finds no live worker and is refused at once (503), not queued.
    await pool.workers()[0]!.terminate()
    const s = pool.open(DATASET, MAX_LINE, 64)
    await assert.rejects(s.push(Buffer.from('{}\n')), { code: 'LPR_ERR_PIPELINE_WORKER_GONE' })
  } finally {
    await pool.close()
  }
})

test('every worker validates against the main thread\'s snapshot of the schemas, a restarted one too', async () => {
  // The bug (#21 item 6): each worker (and each restart) read SCHEMAS_DIR itself; a schema file
  // mid-edit made 17 restarts in 5 s and failed every request, and workers could validate
  // against other schemas than the main thread. Here the snapshot differs from the files on
  // disk: the workers must follow the snapshot.
  const snapshot = schemaSnapshot(datasets).map(([name, schema]): [string, typeof schema] => name !== DATASET
    ? [name, schema]
    : [name, { ...schema, maxProperties: 1 } as typeof schema])
  const pool = poolOf(snapshot, { restartBaseMs: 1 })
  try {
    const check = async (): Promise<number> => {
      const s = pool.open(DATASET, MAX_LINE, 64)
      const r = await s.end(Buffer.from(batchText(DATASET, 3)))
      return r.summary!.accepted
    }
    assert.equal(await check(), 0, 'the snapshot\'s maxProperties rejects lines the files on disk accept')
    await pool.workers()[0]!.terminate()
    await until('restarted', () => pool.spawned === 2)
    assert.equal(await check(), 0, 'the restarted worker has the same snapshot')
  } finally {
    await pool.close()
  }
})
