// The re-send index (src/spool/resend-index.ts): bounded memory and start-up, durable before a
// segment goes, and the digests.log of earlier releases converted without reading it whole.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { Spool } from '../../src/spool/index.js'
import { randomFillSync } from 'node:crypto'
import { crc32 } from 'node:zlib'
import { encodeRecord, RECORD_BYTES, recordCrc, resendKey, ResendIndex } from '../../src/spool/resend-index.js'
import { KeyTable } from '../../src/spool/key-table.js'
import { createLogger } from '../../src/observability/index.js'
import { FaultFs, fsError } from '../helpers/fault-fs.js'

const DIR = '/spool'
const DATASET = 'http_requests'
const log = createLogger('silent')

function index(fs: FaultFs, maxEntries = 1_000_000, windowSeconds = 3600): ResendIndex {
  return new ResendIndex({ dir: DIR, windowSeconds, maxEntries, fs, log })
}

async function spoolOn(fs: FaultFs, maxEntries?: number): Promise<Spool> {
  const s = new Spool({ dir: DIR, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, ...(maxEntries ? { dedupeMaxEntries: maxEntries } : {}), log, fs })
  await s.init()
  return s
}

test('a digests.log of an earlier release is converted piece by piece: its keys, and its last sequence number, survive', async () => {
  // The bug this pins: digests.log was read whole into one string, so a file past V8's string
  // limit (~7 M lines) stopped every start with "Invalid string length". White-box: the
  // conversion must read it in pieces, never with readFile.
  const fs = new FaultFs()
  await fs.mkdir(DIR, { recursive: true })
  const now = Date.now()
  const lines: string[] = []
  for (let i = 0; i < 60_000; i++) lines.push(`${DATASET}:d${i} ${now - 1000 + (i % 500)} ${i + 1}`)
  lines.push(`${DATASET}:old ${now - 7200_000} 3`)
  lines.push(`_seq ${now} 70000`)
  fs.put(join(DIR, 'digests.log'), lines.join('\n') + '\n')
  const reads: string[] = []
  fs.hook = (call) => { if (call.path.endsWith('digests.log')) reads.push(call.op) }
  const spool = await spoolOn(fs)
  fs.hook = null
  assert.ok(!reads.includes('readFile'), `read with ${[...new Set(reads)].join(',')}`)
  assert.ok(reads.filter((op) => op === 'read').length > 1, 'in pieces')
  assert.equal(spool.isDuplicate(DATASET, 'd0'), true)
  assert.equal(spool.isDuplicate(DATASET, 'd59999'), true)
  assert.equal(spool.isDuplicate(DATASET, 'old'), false, 'past the window')
  assert.equal(spool.isDuplicate(DATASET, 'never'), false)
  await assert.rejects(fs.readFile(join(DIR, 'digests.log'), 'utf8'), { code: 'ENOENT' })
  // The highest number the earlier release gave out is never given again.
  const batch = await spool.open(DATASET, 'r')
  batch.writeEvent('{"a":1}')
  await batch.seal()
  assert.deepEqual(await batch.commit('fresh'), { duplicate: false, seq: 70001 })
  // And the converted records are read again at the next start.
  const again = await spoolOn(fs.crash())
  assert.equal(again.isDuplicate(DATASET, 'd12345'), true)
})

test('keys of delivered (deleted) segments are recognised after a restart, and the next number follows the last one given', async () => {
  const fs = new FaultFs()
  const spool = await spoolOn(fs)
  for (let i = 0; i < 5; i++) {
    const b = await spool.open(DATASET, 'r')
    b.writeEvent(`{"i":${i}}`)
    await b.seal()
    await b.commit(`k${i}`)
  }
  spool.expectConsumers(['only'])
  await spool.loadCheckpoint('only')
  await spool.saveCheckpoint('only', { seq: 6, index: 0 })
  assert.equal(spool.bytes(), 0, 'every segment was delivered and deleted')
  const after = await spoolOn(fs.crash())
  for (let i = 0; i < 5; i++) assert.equal(after.isDuplicate(DATASET, `k${i}`), true, `k${i}`)
  const b = await after.open(DATASET, 'r')
  b.writeEvent('{"x":1}')
  await b.seal()
  assert.deepEqual(await b.commit('new'), { duplicate: false, seq: 6 })
})

test('memory is bounded by maxEntries: past it the oldest quarter goes, the newest keys stay recognised', async () => {
  const fs = new FaultFs()
  const idx = index(fs, 1000)
  await idx.load()
  const now = Date.now()
  for (let i = 0; i < 5000; i++) idx.add(DATASET, `k${i}`, now - 3_000_000 + i * 500)
  assert.ok(idx.size <= 1000, `${idx.size} keys held`)
  assert.equal(idx.has(DATASET, 'k4999'), true)
  assert.equal(idx.has(DATASET, 'k4500'), true)
  assert.equal(idx.has(DATASET, 'k0'), false, 'the window was shortened to the newest keys')
})

test('a start reads bucket files newest first only until maxEntries keys are in; expired files are deleted, the newest kept', async () => {
  const fs = new FaultFs()
  const writer = index(fs, 10_000)
  await writer.load()
  const now = Date.now()
  const entries = (from: number, n: number, at: number): Array<{ dataset: string, digest: string, committedAt: number, seq: number }> =>
    Array.from({ length: n }, (_, i) => ({ dataset: DATASET, digest: `k${from + i}`, committedAt: at, seq: from + i + 1 }))
  await writer.record(entries(0, 1000, now - 3_000_000)) // oldest, still in the window
  await writer.record(entries(1000, 1000, now - 1_500_000))
  await writer.record(entries(2000, 1000, now - 60_000)) // newest
  const reads: string[] = []
  fs.hook = (call) => { if (call.op === 'read') reads.push(call.path) }
  const reader = index(fs, 1500)
  await reader.load()
  fs.hook = null
  assert.equal(reader.has(DATASET, 'k2999'), true)
  // The start stopped inside the middle file: its keys (all of one moment) are then not
  // recognised, neither those read (k1000) nor those left out (k1999), and the window says so.
  assert.equal(reader.has(DATASET, 'k1000'), false)
  assert.equal(reader.has(DATASET, 'k1999'), false)
  assert.equal(reader.has(DATASET, 'k0'), false, 'beyond maxEntries: not read')
  assert.equal(new Set(reads).size, 2, 'the oldest file was not read')
  assert.equal(reader.maxSeq, 3000)
  // An hour later every file has left the window: all but the newest are deleted.
  const later = index(fs, 10_000, 1)
  await later.load()
  assert.equal((await fs.readdir(join(DIR, 'resend'))).length, 1)
  assert.equal(later.maxSeq, 3000, 'the newest file keeps the last sequence number')
  assert.equal(later.has(DATASET, 'k2999'), false)
})

test('a torn append is cut back at start; a damaged record before good ones stops the start and is left as it was', async () => {
  const fs = new FaultFs()
  const writer = index(fs)
  await writer.load()
  const now = Date.now()
  await writer.record([{ dataset: DATASET, digest: 'a', committedAt: now, seq: 1 }, { dataset: DATASET, digest: 'b', committedAt: now, seq: 2 }])
  const [name] = await fs.readdir(join(DIR, 'resend'))
  const path = join(DIR, 'resend', name!)
  const fh = await fs.open(path, 'r')
  const good = Buffer.alloc((await fs.stat(path)).size)
  await fh.read(good, 0, good.length, 0)
  await fh.close()
  assert.equal(good.length, 2 * RECORD_BYTES)
  // A crash in the middle of an append: half a record at the end.
  fs.put(path, Buffer.concat([good, encodeRecord(resendKey(DATASET, 'c'), now, 3).subarray(0, 20)]))
  const reader = index(fs)
  await reader.load()
  assert.equal(reader.has(DATASET, 'b'), true)
  assert.equal((await fs.stat(path)).size, 2 * RECORD_BYTES, 'cut to its whole records')
  // One flipped byte in the first record, a good one after it: damage, not a torn append.
  const damaged = Buffer.from(good)
  damaged[3] ^= 0xff
  fs.put(path, damaged)
  await assert.rejects(index(fs).load(), { code: 'LPR_ERR_SPOOL_STATE_UNREADABLE' })
  assert.equal((await fs.stat(path)).size, 2 * RECORD_BYTES)
})

test('the key table finds every key it holds and none it does not, across growth', () => {
  let t = new KeyTable(8)
  const keys = Array.from({ length: 5000 }, (_, i) => resendKey(DATASET, `x${i}`))
  for (const [i, k] of keys.entries()) {
    if (!t.fits()) t = t.rebuilt(t.capacity * 2, 0)
    t.set(k, 1000 + i)
  }
  assert.equal(t.size, 5000)
  for (const [i, k] of keys.entries()) assert.equal(t.get(k), 1000 + i)
  assert.equal(t.get(resendKey(DATASET, 'absent')), 0)
})

test('the record checksum is zlib\'s CRC-32 of the record\'s first 28 bytes', () => {
  // The start checks four bytes a step; the format (and the files of the release before) is zlib's CRC-32.
  const rec = Buffer.alloc(RECORD_BYTES)
  for (let i = 0; i < 2000; i++) {
    randomFillSync(rec)
    assert.equal(recordCrc(rec, 0), crc32(rec.subarray(0, 28)))
    encodeRecord(resendKey(DATASET, `c${i}`), Date.now() + i, i, rec)
    assert.equal(rec.readUInt32LE(28), crc32(rec.subarray(0, 28)))
  }
})

test('dropping expired keys in place keeps every live key findable, across clusters that wrap around the end', () => {
  // A table whose size is not a power of two, filled to its limit, so that clusters are long
  // and some wrap from the last slot to the first.
  const t = new KeyTable(1000)
  const keys: Buffer[] = []
  for (let i = 0; t.fits(); i++) {
    const k = resendKey(DATASET, `w${i}`)
    keys.push(k)
    t.set(k, 1 + (i % 10))
  }
  assert.equal(t.size, 750)
  t.dropBefore(6)
  assert.equal(t.size, keys.filter((_, i) => 1 + (i % 10) >= 6).length)
  for (const [i, k] of keys.entries()) assert.equal(t.get(k), 1 + (i % 10) >= 6 ? 1 + (i % 10) : 0, `key ${i}`)
  // And the table takes new keys into the freed slots.
  for (let i = 0; t.fits(); i++) t.set(resendKey(DATASET, `n${i}`), 20)
  for (const [i, k] of keys.entries()) if (1 + (i % 10) >= 6) assert.equal(t.get(k), 1 + (i % 10))
})

/** A directory with three bucket files (many read chunks each), an expired one and a torn tail. */
async function bucketState(): Promise<{ fs: FaultFs, digests: string[] }> {
  const fs = new FaultFs()
  const writer = index(fs, 1_000_000, 86_400)
  await writer.load()
  const now = Date.now()
  const digests: string[] = []
  let seq = 0
  for (const age of [20 * 3600_000, 10 * 3600_000, 60_000]) {
    const entries = Array.from({ length: 300 }, () => {
      const digest = `b${seq}`
      digests.push(digest)
      return { dataset: DATASET, digest, committedAt: now - age, seq: ++seq }
    })
    await writer.record(entries)
  }
  fs.put(join(DIR, 'resend', `${String(now - 30 * 86_400_000 - ((now - 30 * 86_400_000) % 1_800_000)).padStart(15, '0')}.bin`), encodeRecord(resendKey(DATASET, 'ancient'), now - 30 * 86_400_000, 1))
  const names = (await fs.readdir(join(DIR, 'resend'))).sort()
  const newest = join(DIR, 'resend', names.at(-1)!)
  const fh = await fs.open(newest, 'a')
  await fh.write(encodeRecord(resendKey(DATASET, 'torn'), now, 9999).subarray(0, 11), 0, 11)
  await fh.close()
  return { fs, digests }
}

const small = (fs: FaultFs): ResendIndex => new ResendIndex({ dir: DIR, windowSeconds: 86_400, maxEntries: 1_000_000, fs, log, readChunkBytes: 40 * RECORD_BYTES })

test('a start read in many chunks, each read ahead of its insertion, finds every key and the last sequence number', async () => {
  const { fs, digests } = await bucketState()
  const reads: number[] = []
  fs.hook = (call) => { if (call.op === 'read') reads.push(call.n) }
  const idx = small(fs)
  await idx.load()
  fs.hook = null
  assert.ok(reads.length >= 3 * 8, `${reads.length} reads`)
  assert.equal(idx.size, digests.length)
  for (const d of digests) assert.equal(idx.has(DATASET, d), true, d)
  assert.equal(idx.has(DATASET, 'ancient'), false)
  assert.equal(idx.has(DATASET, 'torn'), false)
  assert.equal(idx.maxSeq, 900)
})

test('a start whose file-system calls fail, each in turn, stops with LPR_ERR_SPOOL_STATE_UNREADABLE, leaves no file open, and the next start reads everything', async () => {
  // Reads are issued ahead of their turn: a failing read ahead must still be reported as the
  // coded error of its own file, never as an unhandled rejection or a generic crash, and the
  // files already opened must be closed.
  const unhandled: unknown[] = []
  const onUnhandled = (err: unknown): void => { unhandled.push(err) }
  process.on('unhandledRejection', onUnhandled)
  try {
    let calls = 0
    {
      const { fs } = await bucketState()
      fs.hook = () => { calls++ }
      await small(fs).load()
    }
    assert.ok(calls > 20, `${calls} calls`)
    for (const code of ['EIO', 'ENOSPC', 'EROFS']) {
      for (let k = 0; k < calls; k++) {
        const { fs, digests } = await bucketState()
        let i = 0
        let opened = 0
        let closed = 0
        fs.hook = (call) => {
          // A close that fails counts: the descriptor is gone either way (close(2) frees it).
          if (call.op === 'close' && call.path.includes('/resend/0')) closed++
          if (i++ === k) throw fsError(code, call.op, call.path)
          if (call.op === 'open' && call.path.includes('/resend/0')) opened++
        }
        await assert.rejects(small(fs).load(), (err: Error & { code?: string }) => {
          assert.equal(err.code, 'LPR_ERR_SPOOL_STATE_UNREADABLE', `${code} at call ${k}: ${err.message}`)
          return true
        }, `${code} at call ${k}`)
        await new Promise((resolve) => setImmediate(resolve))
        assert.ok(closed >= opened, `${code} at call ${k}: ${opened} opened, ${closed} closed`)
        fs.hook = null
        const again = small(fs)
        await again.load()
        for (const d of digests) assert.equal(again.has(DATASET, d), true, `${code} at call ${k}: ${d}`)
        assert.equal(again.maxSeq, 900)
      }
    }
    await new Promise((resolve) => setImmediate(resolve))
    assert.deepEqual(unhandled, [])
  } finally {
    process.off('unhandledRejection', onUnhandled)
  }
})

test('damage in a later chunk of a file stops the start, even while the next chunk is being read ahead', async () => {
  const { fs } = await bucketState()
  const names = (await fs.readdir(join(DIR, 'resend'))).sort()
  const path = join(DIR, 'resend', names.at(-2)!)
  const data = Buffer.alloc((await fs.stat(path)).size)
  const fh = await fs.open(path, 'r')
  await fh.read(data, 0, data.length, 0)
  await fh.close()
  data[100 * RECORD_BYTES + 5] ^= 0x01
  fs.put(path, data)
  await assert.rejects(small(fs).load(), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'LPR_ERR_SPOOL_STATE_UNREADABLE')
    assert.match(err.message, new RegExp(`at byte ${100 * RECORD_BYTES}`))
    return true
  })
  assert.equal((await fs.stat(path)).size, data.length, 'left as it was')
})
