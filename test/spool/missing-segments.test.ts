// Segments deleted or emptied while the service was stopped (issue 20 item 3): the spool keeps a
// durable record of the numbers it committed (src/spool/commit-record.ts), so a segment that is
// gone is damage, reported like any other, and delivery goes on with the segments after it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Spool } from '../../src/spool/index.js'
import { DEFAULT_CHECKPOINT_INTERVAL_MS } from '../../src/spool/checkpoints.js'
import { FaultFs, fsError, type Call } from '../helpers/fault-fs.js'
import { answered200, bodies, drained, MemoryDestination, send, SPOOL_DIR, startService, turn, type Answer, type Body, type Service } from '../helpers/spool-harness.js'
import type { DeliveryBatch, DeliveryResult } from '../../src/delivery.js'

const SEGMENTS = `${SPOOL_DIR}/segments`
const segmentNames = (fs: FaultFs): string[] => fs.list(SEGMENTS).filter((n) => n.endsWith('.seg'))

/** A destination that is down until told otherwise: what is sent stays spooled. */
class Gated extends MemoryDestination {
  down = true
  override async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    if (this.down) throw new Error('down')
    return await super.deliver(batch)
  }
}

/** Starts a spool and one forwarder on `fs`, logging to `logs`, with the default checkpoint interval. */
async function start(fs: FaultFs, destination: MemoryDestination, logs: any[]): Promise<Service> {
  const log = pino({ level: 'info' }, new Writable({ write(chunk, _enc, cb) { logs.push(JSON.parse(String(chunk))); cb() } }))
  return await startService(fs, destination, { log, checkpointIntervalMs: DEFAULT_CHECKPOINT_INTERVAL_MS })
}

/** Five batches committed while the destination is down; the service stopped. */
async function fiveSpooled(): Promise<{ fs: FaultFs, destination: Gated, sent: Body[] }> {
  const fs = new FaultFs()
  const destination = new Gated()
  const { forwarder, spool } = await start(fs, destination, [])
  const sent = bodies(5, 3, 'm')
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  await forwarder.stop(1000)
  assert.equal(segmentNames(fs).length, 5)
  return { fs, destination, sent }
}

for (const [what, index] of [['a middle segment', 2], ['the last segment', 4], ['the first segment', 0]] as const) {
  test(`${what} deleted while the service is stopped is reported as damage; every other batch is delivered once`, async () => {
    // The bug this pins: a segment file deleted while the service was stopped was not noticed at
    // all: its lines were lost for every destination, silently (the attack run lost 2,000 lines).
    const { fs, destination, sent } = await fiveSpooled()
    const name = segmentNames(fs).sort()[index]!
    await fs.rm(`${SEGMENTS}/${name}`, { force: true })
    destination.down = false
    const logs: any[] = []
    const service = await start(fs, destination, logs)
    const { spool, forwarder } = service
    await drained(service)
    await forwarder.stop(1000)
    for (const [i, b] of sent.entries()) assert.equal(destination.copies(b), i === index ? 0 : 1, `${b.digest}`)
    const seq = name.slice(0, 12)
    assert.deepEqual(spool.damaged().map((d) => d.segment), [seq])
    assert.equal(spool.damaged()[0]!.keptAs, null)
    const lines = logs.filter((l) => /Missing spool segment/.test(l.msg))
    assert.equal(lines.length, 1)
    assert.match(lines[0].msg, new RegExp(seq))
    // A new batch never gets the missing number (a deleted last segment's either).
    const again = await start(fs, destination, [])
    assert.equal(await send(again.spool, bodies(1, 3, 'after')[0]!), 'stored')
    assert.ok(segmentNames(fs).some((n) => n.startsWith('000000000006.')), segmentNames(fs).join())
    await drained(again)
    await again.forwarder.stop(1000)
    assert.equal(destination.copies(bodies(1, 3, 'after')[0]!), 1)
  })
}

test('a segment emptied while the service is stopped is damage; every other batch is delivered once', async () => {
  const { fs, destination, sent } = await fiveSpooled()
  const name = segmentNames(fs).sort()[1]!
  await fs.truncate(`${SEGMENTS}/${name}`, 0)
  destination.down = false
  const service = await start(fs, destination, [])
  const { spool, forwarder } = service
  await drained(service)
  await forwarder.stop(1000)
  for (const [i, b] of sent.entries()) assert.equal(destination.copies(b), i === 1 ? 0 : 1, `${b.digest}`)
  assert.deepEqual(spool.damaged().map((d) => d.segment), [name])
})

test('a segment every destination had delivered, gone before its clean-up, is not reported', async () => {
  const { fs, destination } = await fiveSpooled()
  const names = segmentNames(fs).sort()
  // The destination's checkpoint is past the first two; their clean-up did not happen.
  fs.put(`${SPOOL_DIR}/checkpoints/memory.json`, JSON.stringify({ seq: Number(names[2]!.slice(0, 12)), index: 0, state: { count: 0 } }))
  await fs.rm(`${SEGMENTS}/${names[0]!}`, { force: true })
  const { spool, forwarder } = await start(fs, destination, [])
  await forwarder.stop(1000)
  assert.deepEqual(spool.damaged(), [])
})

test('a commit record that cannot be read stops the start with a coded error', async () => {
  const { fs } = await fiveSpooled()
  const record = fs.list(SEGMENTS).find((n) => n.startsWith('committed.'))!
  await fs.rename(`${SEGMENTS}/${record}`, `${SEGMENTS}/committed.garbage`)
  const spool = new Spool({ dir: SPOOL_DIR, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: pino({ level: 'silent' }), fs })
  await assert.rejects(spool.init(), (err: any) => err.code === 'LPR_ERR_SPOOL_STATE_UNREADABLE' && /committed\.garbage/.test(err.message))
})

test('numbers stay dense: a failed commit gives its number back, so no later start reports it missing', async () => {
  // A gap left by a failed commit would read as a deleted segment at the next start.
  const fs = new FaultFs()
  const destination = new Gated()
  const { spool, forwarder } = await start(fs, destination, [])
  const [a, b, c] = bodies(3, 2, 'dense')
  assert.equal(await send(spool, a!), 'stored')
  let failOnce = true
  fs.hook = (call) => {
    if (failOnce && call.op === 'syncDir' && call.path === SEGMENTS) { failOnce = false; throw fsError('EIO', call.op, call.path) }
  }
  assert.equal(await send(spool, b!), 'error')
  fs.hook = null
  assert.equal(await send(spool, c!), 'stored')
  await forwarder.stop(1000)
  assert.deepEqual(segmentNames(fs).sort().map((n) => Number(n.slice(0, 12))), [1, 2])
  destination.down = false
  const again = await start(fs, destination, [])
  await drained(again)
  await again.forwarder.stop(1000)
  assert.deepEqual(again.spool.damaged(), [])
  assert.deepEqual([destination.copies(a!), destination.copies(b!), destination.copies(c!)], [1, 0, 1])
})

// The walks: a failure or a power cut at every call that touches the record (and every fsync and
// rename of the commits around it), then a segment deleted while stopped. Every batch answered
// 200 is delivered exactly once or is the deleted one, which is reported; nothing is reported
// that was not deleted (a record ahead of its segments would be), nothing delivered twice.
const isPoint = (call: Call): boolean =>
  call.op === 'sync' || (call.op === 'syncDir' && call.path === SEGMENTS) || (call.op === 'rename' && call.path.startsWith(SEGMENTS)) ||
  (call.op === 'open' && /\/(committed\.|[^/]*\.hole$)/.test(call.path))

async function walkOnce(k: number, mode: 'fail' | 'crash'): Promise<{ points: number }> {
  let fs = new FaultFs()
  const destination = new Gated()
  const service = await startService(fs, destination)
  let seen = 0
  let at: Call | null = null
  fs.hook = async (call, current) => {
    if (isPoint(call) && seen++ === k) {
      at = call
      if (mode === 'crash') fs = current.crash()
      throw fsError(k % 2 === 0 ? 'EIO' : 'ENOSPC', call.op, call.path)
    }
    if (call.op === 'sync' || call.op === 'syncDir') await turn()
  }
  const sent = bodies(6, 2, `w${k}`)
  const answers = await Promise.all(sent.map((b) => send(service.spool, b)))
  await service.stop()
  fs.hook = null
  const where = `${mode} at point ${k} (${at ? `${(at as Call).op} ${(at as Call).path}` : 'not reached'})`
  // Deleted while stopped: the middle one of what is on disk.
  const names = segmentNames(fs).sort()
  const gone = names[Math.floor(names.length / 2)]
  if (gone) await fs.rm(`${SEGMENTS}/${gone}`, { force: true })
  destination.down = false
  const again = await startService(fs, destination)
  try {
    await drained(again)
    assert.deepEqual(again.spool.damaged().map((d) => d.segment), gone ? [gone.slice(0, 12)] : [], `${where}: reported`)
    sent.forEach((b, i) => {
      const copies = destination.copies(b)
      const deleted = gone !== undefined && gone.includes(`.${b.digest}.seg`)
      const a: Answer = answers[i]!
      if (answered200(a) && !deleted) assert.equal(copies, 1, `${where}: ${b.digest} answered ${a}, delivered ${copies} times`)
      else assert.ok(copies <= (deleted ? 0 : 1), `${where}: ${b.digest} (${a}${deleted ? ', deleted' : ''}) delivered ${copies} times`)
    })
  } finally {
    await again.stop()
  }
  return { points: seen }
}

for (const mode of ['fail', 'crash'] as const) {
  test(`${mode === 'fail' ? 'a failed call' : 'a power cut'} at any point of the commits and their record, then a segment deleted while stopped: reported, the rest delivered once`, async (t) => {
    // A run where nothing fails counts the points.
    const { points } = await walkOnce(Infinity, mode)
    for (let k = 0; k < points; k++) await walkOnce(k, mode)
    t.diagnostic(`${points} points`)
    assert.ok(points > 12, 'the walk reaches the commits and the record')
  })
}
