// The sources' state files under failing calls and power cuts, in process on FaultFs
// (test/helpers/fault-fs.ts), as test/spool/faults.test.ts walks the spool: a bucket source's
// progress record, a collector's cursor with its staged windows, and the replay ledger. Each walk
// runs the same work once per fsync/rename point (and, for failures, per open and write), failing
// or cutting the power there, then restarts on what is left and checks what was acknowledged.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Writable } from 'node:stream'
import { ProgressRecord } from '../../src/sources/bucket/index.js'
import { Collector, writeLine, type Window, type WindowFetcher } from '../../src/sources/cloudflare/index.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { createLogger } from '../../src/observability/index.js'
import { Ledger } from '../../src/replay/ledger.js'
import { FaultFs, fsError, type Call, type Op } from '../helpers/fault-fs.js'
import { fakeSpool } from '../helpers/collector-spool.js'

const CRASH_POINTS = new Set<Op>(['sync', 'syncDir', 'rename'])
const FAILURE_POINTS = new Set<Op>([...CRASH_POINTS, 'open', 'write', 'readFile', 'readdir', 'rm'])

/** Runs `work` on a fresh FaultFs counting the points of `kinds` it passes. */
async function countPoints(kinds: Set<Op>, work: (fs: FaultFs) => Promise<unknown>): Promise<number> {
  const fs = new FaultFs()
  let n = 0
  fs.hook = (call: Call) => { if (kinds.has(call.op)) n++ }
  await work(fs)
  return n
}

/** A hook that crashes (or fails with EIO) at the k-th call of `kinds`. */
function at(k: number, kinds: Set<Op>, what: 'crash' | 'fail'): (call: Call, fs: FaultFs) => void {
  let n = 0
  return (call, fs) => {
    if (!kinds.has(call.op) || n++ !== k) return
    if (what === 'crash') fs.crash()
    throw fsError('EIO', call.op, call.path)
  }
}

// ---- bucket source: progress record ----

const PDIR = '/data/sources/s1'
const DAYS = ['20261111', '20261112', '20261113']

interface ProgressAck { marks: Array<[string, string]>, closed: string }

/** Marks rows over three days, closing the first two on the way; records what was acknowledged. */
async function progressWork(fs: FaultFs, ack: ProgressAck): Promise<void> {
  const p = new ProgressRecord(PDIR, fs)
  await p.load('b', 'p/{DATE}/', '20261110')
  for (const [i, day] of DAYS.entries()) {
    for (let j = 0; j < 3; j++) {
      const key = `p/${day}/o${j}.log.gz`
      await p.mark(day, key, { etag: `e${j}`, status: 'done', lastModified: j, lines: 1 }).then(() => ack.marks.push([day, key]), () => {})
    }
    if (i < 2) await p.close(day).then(() => { ack.closed = day }, () => {})
  }
  await p.closeFile().catch(() => {})
}

async function checkProgress(fs: FaultFs, ack: ProgressAck, where: string): Promise<void> {
  fs.hook = null
  const p = new ProgressRecord(PDIR, fs)
  // Never a silent reset: it loads what was durable, or (before its first header was) starts fresh.
  await p.load('b', 'p/{DATE}/', '20261110')
  assert.ok(p.closedThrough >= ack.closed, `${where}: closedThrough ${p.closedThrough} went back before ${ack.closed}`)
  assert.ok(p.closedThrough <= '20261112', `${where}: closedThrough ${p.closedThrough} past what was closed`)
  for (const [day, key] of ack.marks) {
    if (day <= p.closedThrough) continue
    assert.equal(p.get(day, key)?.etag !== undefined, true, `${where}: acknowledged ${key} lost`)
  }
  await p.closeFile()
}

test('progress record: a power cut at any fsync or rename keeps every acknowledged row and never moves closedThrough back', async (t) => {
  // The bug (#21 item 5): the progress record went through node:fs directly, so neither walk could
  // fail or cut it; only the spool was covered.
  const points = await countPoints(CRASH_POINTS, (fs) => progressWork(fs, { marks: [], closed: '' }))
  t.diagnostic(`${points} fsync/rename points`)
  assert.ok(points > 15)
  for (let k = 0; k < points; k++) {
    const fs = new FaultFs()
    const ack: ProgressAck = { marks: [], closed: '' }
    fs.hook = at(k, CRASH_POINTS, 'crash')
    await progressWork(fs, ack).catch(() => {})
    assert.ok(fs.crashed, `point ${k} reached`)
    await checkProgress(fs.crash(), ack, `crash at point ${k}`)
  }
})

test('progress record: a failure at any open, write, fsync or rename fails only that call; a restart finds every acknowledged row', async (t) => {
  const points = await countPoints(FAILURE_POINTS, (fs) => progressWork(fs, { marks: [], closed: '' }))
  t.diagnostic(`${points} points`)
  for (let k = 1; k < points; k++) { // point 0 is the first load's own mkdir/readFile: covered by the unreadable-record test
    const fs = new FaultFs()
    const ack: ProgressAck = { marks: [], closed: '' }
    fs.hook = at(k, FAILURE_POINTS, 'fail')
    await progressWork(fs, ack).catch(() => {})
    await checkProgress(fs, ack, `failure at point ${k}`)
  }
})

// ---- collector: cursor and staged windows ----

const CDIR = '/data/collectors/c1'
const T0 = Date.UTC(2026, 10, 28, 10, 0, 0)
const NOW = T0 + 3_600_000 + 300_000

/** Three records a minute, in memory: what the API would serve, window by window. */
class MemoryFetcher implements WindowFetcher {
  async fetch(w: Window, out: Writable, signal: AbortSignal): Promise<{ records: number }> {
    let n = 0
    for (let t = Math.ceil(w.start / 20_000) * 20_000; t < w.end; t += 20_000) {
      await writeLine(out, JSON.stringify({ id: `r${t}` }) + '\n', signal)
      n++
    }
    return { records: n }
  }
}
// The collector starts an hour back from NOW and reads up to NOW - 5 min: 55 minutes, 3 a minute.
const ALL_RECORDS = 3 * 55

const [CONFIG] = normalizeCollectors([{ name: 'c1', type: 'audit_logs', account: '01a7362d577a6c3019a474fd6f485823', auth: { tokenEnv: 'UNUSED' }, windowSeconds: 900, delaySeconds: 300, startLookbackHours: 1, pollSeconds: 1 }])

function collector(fs: FaultFs, spool: ReturnType<typeof fakeSpool>): Collector {
  return new Collector({ config: CONFIG!, dataset: 'audit_logs', fetcher: new MemoryFetcher(), dir: CDIR, ingest: spool.ingest, log: createLogger('silent'), now: () => NOW, fs })
}

/** Steps until caught up; a failed step is retried (as the loop does), at most `tries` failures. */
async function drain(c: Collector, tries = 50): Promise<void> {
  for (let guard = 0; guard < 200; guard++) {
    try {
      if (!await c.step()) return
    } catch (err) {
      if (--tries < 0) throw err
    }
  }
  assert.fail('never caught up')
}

async function collectorWork(fs: FaultFs, spool: ReturnType<typeof fakeSpool>): Promise<void> {
  const c = collector(fs, spool)
  await c.init()
  if (c.status().state === 'stopped') return
  await drain(c, 0)
}

function exactlyOnce(spool: ReturnType<typeof fakeSpool>, where: string): void {
  const ids = spool.lines().map((l: { id: string }) => l.id)
  assert.equal(ids.length, ALL_RECORDS, `${where}: ${ids.length} records stored`)
  assert.equal(new Set(ids).size, ALL_RECORDS, `${where}: a record stored twice`)
}

test('collector: a power cut at any fsync or rename of the cursor or a staged window loses no record and stores none twice', async (t) => {
  // The bug (#21 item 5): the cursor's and staging's files went through node:fs directly, so no
  // walk could fail or cut them; only the spool was covered.
  const points = await countPoints(CRASH_POINTS, (fs) => collectorWork(fs, fakeSpool()))
  t.diagnostic(`${points} fsync/rename points`)
  assert.ok(points > 20, 'the cursor and the staged windows pass through the injectable file system')
  for (let k = 0; k < points; k++) {
    const fs = new FaultFs()
    // The spool outlives the crash (its own walks are in test/spool/faults.test.ts).
    const spool = fakeSpool()
    fs.hook = at(k, CRASH_POINTS, 'crash')
    await collectorWork(fs, spool).catch(() => {})
    assert.ok(fs.crashed, `point ${k} reached`)
    const after = fs.crash()
    const c = collector(after, spool)
    await c.init()
    assert.notEqual(c.status().state, 'stopped', `crash at point ${k}: ${JSON.stringify(c.status().lastError)}`)
    await drain(c, 0)
    exactlyOnce(spool, `crash at point ${k}`)
  }
})

test('collector: a failure at any call of the cursor or a staged window is retried; every record once', async (t) => {
  const points = await countPoints(FAILURE_POINTS, (fs) => collectorWork(fs, fakeSpool()))
  t.diagnostic(`${points} points`)
  for (let k = 0; k < points; k++) {
    const fs = new FaultFs()
    const spool = fakeSpool()
    fs.hook = at(k, FAILURE_POINTS, 'fail')
    let c = collector(fs, spool)
    await c.init()
    // A cursor it could not read stops the collector (never guessed): a restart reads it again.
    if (c.status().state === 'stopped') { c = collector(fs, spool); await c.init() }
    await drain(c)
    exactlyOnce(spool, `failure at point ${k}`)
  }
})

// ---- replay ledger ----

const LDIR = '/data/replay/http_requests'
const BATCHES = [{ ids: ['a'.repeat(22), 'b'.repeat(22)], body: 'one\n' }, { ids: ['c'.repeat(22)], body: 'two\n' }]

async function ledgerWork(fs: FaultFs, begun: string[], finished: string[]): Promise<void> {
  const l = new Ledger(LDIR, fs)
  await l.load()
  for (const p of BATCHES) {
    await l.begin(p)
    begun.push(p.body)
    await l.finish(p)
    finished.push(p.body)
  }
}

test('replay ledger: after a power cut at any fsync or rename, a batch is either recorded or still pending, never neither', async (t) => {
  const points = await countPoints(CRASH_POINTS, (fs) => ledgerWork(fs, [], []))
  t.diagnostic(`${points} fsync/rename points`)
  for (let k = 0; k < points; k++) {
    const fs = new FaultFs()
    const begun: string[] = []
    const finished: string[] = []
    fs.hook = at(k, CRASH_POINTS, 'crash')
    await ledgerWork(fs, begun, finished).catch(() => {})
    const l = new Ledger(LDIR, fs.crash())
    await l.load()
    const pending = await l.pending()
    for (const p of BATCHES) {
      const recorded = p.ids.every((id) => l.has(id))
      if (finished.includes(p.body)) assert.ok(recorded, `crash at ${k}: finished ${p.body} not recorded`)
      if (begun.includes(p.body)) assert.ok(recorded || pending?.body === p.body, `crash at ${k}: begun ${p.body} neither recorded nor pending`)
    }
  }
})

test('replay ledger: a ledger that cannot be read stops the replay with a coded error, never replays everything again', async () => {
  // The bug (#21 item 5): load() swallowed any error reading replayed.log and started empty, so
  // one EIO sent every dead letter again.
  const fs = new FaultFs()
  await ledgerWork(fs, [], [])
  fs.hook = (call) => { if (call.op === 'readFile') throw fsError('EIO', 'read', call.path) }
  await assert.rejects(new Ledger(LDIR, fs).load(), { code: 'LPR_ERR_REPLAY_LEDGER_UNREADABLE' })
  fs.hook = null
  fs.put(`${LDIR}/pending.json`, '{"ids":[')
  const l = new Ledger(LDIR, fs)
  await l.load()
  await assert.rejects(l.pending(), { code: 'LPR_ERR_REPLAY_LEDGER_UNREADABLE' })
})
