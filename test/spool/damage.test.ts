// Damaged spool segments (issue 20 item 3): the spool knows what it committed (line count and
// length in the segment's name), never deletes bytes it cannot read (a copy in spool/damaged/),
// delivers the whole blocks before the damage, and reports it (damaged(), one log line).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, readdir, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import pino from 'pino'
import { Forwarder, Spool, type Segment } from '../../src/spool/index.js'
import type { Sink } from '../../src/delivery.js'
import { blockCrc } from '../../src/spool/format.js'

const LINES_PER_BLOCK = 10
const BLOCKS = 3

function lineOf(b: number, i: number): string {
  return `{"block":${b},"line":${i},"pad":"${'x'.repeat(40)}"}`
}

/** A spool with one committed segment of three blocks; the block offsets in the file. */
async function spoolWithSegment(): Promise<{ dir: string, path: string, blockStarts: number[], size: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-damage-'))
  const spool = new Spool({ dir, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: pino({ level: 'silent' }) })
  await spool.init()
  const batch = await spool.open('http_requests', 'req')
  for (let b = 0; b < BLOCKS; b++) {
    const lines = Buffer.from(Array.from({ length: LINES_PER_BLOCK }, (_, i) => lineOf(b, i) + '\n').join(''))
    batch.writeBlock(lines, LINES_PER_BLOCK, blockCrc(LINES_PER_BLOCK, lines))
  }
  await batch.seal()
  await batch.commit('seg')
  const [name] = (await readdir(join(dir, 'segments'))).filter((n) => n.endsWith('.seg'))
  const path = join(dir, 'segments', name!)
  // Record 0 is the header; each block a record: u32le length | u32le crc | payload.
  const file = await readFile(path)
  const blockStarts: number[] = []
  for (let at = 8 + file.readUInt32LE(0); at < file.length; at += 8 + file.readUInt32LE(at)) blockStarts.push(at)
  assert.equal(blockStarts.length, BLOCKS)
  return { dir, path, blockStarts, size: file.length }
}

/** Restarts on `dir`; the lines delivered from the segment, what was reported and logged. */
async function restart(dir: string): Promise<{ spool: Spool, lines: string[], logs: any[] }> {
  const logs: any[] = []
  const sink = new Writable({ write(chunk, _enc, cb) { logs.push(JSON.parse(String(chunk))); cb() } })
  const spool = new Spool({ dir, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: pino({ level: 'error' }, sink) })
  await spool.init()
  const lines: string[] = []
  const seg: Segment | null = spool.next(0)
  if (seg) for await (const l of spool.lines(seg, 0)) lines.push(l)
  return { spool, lines, logs: logs.filter((l) => /Damaged spool segment/.test(l.msg)) }
}

const expected = (blocks: number): string[] => Array.from({ length: blocks * LINES_PER_BLOCK }, (_, k) => lineOf(Math.floor(k / LINES_PER_BLOCK), k % LINES_PER_BLOCK))

const except = (block: number): string[] => expected(BLOCKS).filter((l) => !l.startsWith(`{"block":${block},`))

for (const [where, block] of [['first', 0], ['middle', 1], ['last', 2]] as const) {
  test(`a flipped byte in the ${where} block: every intact block before and after it is delivered once, the file's every byte is kept in damaged/, the byte range reported`, async () => {
    // The bug this pins: a damaged block made the spool cut the file there, deleting the intact
    // blocks after it for every destination (a flip in block 2 of 3 lost block 3 too).
    const { dir, path, blockStarts, size } = await spoolWithSegment()
    const original = await readFile(path)
    const damaged = Buffer.from(original)
    damaged[blockStarts[block]! + 20] ^= 0x55
    await writeFile(path, damaged)
    const { spool, lines, logs } = await restart(dir)
    assert.deepEqual(lines, except(block))
    const kept = await readFile(join(dir, 'damaged', join(path).split('/').at(-1)!))
    assert.ok(kept.equals(damaged), 'every byte of the damaged segment is kept')
    const end = blockStarts[block + 1] ?? size
    const [d] = spool.damaged()
    assert.deepEqual([d?.fromByte, d?.toByte, d?.linesLost], [blockStarts[block], end, LINES_PER_BLOCK])
    assert.deepEqual(d?.ranges, [{ fromByte: blockStarts[block], toByte: end }])
    assert.equal(logs.length, 1)
    assert.equal(logs[0].segment, d!.segment)
    assert.deepEqual([logs[0].fromByte, logs[0].toByte], [blockStarts[block], end])
    assert.match(logs[0].msg, new RegExp(`bytes ${blockStarts[block]}-${end} `))
    // Lines keep the numbers they were committed with: a destination that resumes inside the
    // segment after the damage gets exactly the lines after its checkpoint, none twice.
    const seg = spool.next(0)!
    const resumed: string[] = []
    for await (const l of spool.lines(seg, 25)) resumed.push(l)
    assert.deepEqual(resumed, expected(BLOCKS).slice(25).filter((l) => !l.startsWith(`{"block":${block},`)))
    // The next start reads the same file the same way; the copy is untouched.
    const again = await restart(dir)
    assert.deepEqual(again.lines, except(block))
    assert.equal(again.spool.damaged().length, 1)
    assert.ok((await readFile(join(dir, 'damaged', d!.segment))).equals(damaged), 'the full copy is not overwritten')
  })
}

test('damage in two blocks: the intact block between them is delivered and both ranges are reported', async () => {
  const { dir, path, blockStarts, size } = await spoolWithSegment()
  const damaged = await readFile(path)
  damaged[blockStarts[0]! + 20] ^= 0x55
  damaged[blockStarts[2]! + 20] ^= 0x55
  await writeFile(path, damaged)
  const { spool, lines } = await restart(dir)
  assert.deepEqual(lines, expected(BLOCKS).filter((l) => l.startsWith('{"block":1,')))
  assert.deepEqual(spool.damaged()[0]?.ranges, [{ fromByte: blockStarts[0], toByte: blockStarts[1] }, { fromByte: blockStarts[2], toByte: size }])
  assert.equal(spool.damaged()[0]?.linesLost, 2 * LINES_PER_BLOCK)
})

test('a torn length field is damage: the blocks before and after it are delivered and the bytes kept', async () => {
  // The bug this pins: a length field pointing past the end lost the intact block after it.
  const { dir, path, blockStarts } = await spoolWithSegment()
  const damaged = await readFile(path)
  damaged.writeUInt32LE(0x7fffffff, blockStarts[1]!)
  await writeFile(path, damaged)
  const { spool, lines } = await restart(dir)
  assert.deepEqual(lines, except(1))
  assert.deepEqual([spool.damaged()[0]?.fromByte, spool.damaged()[0]?.toByte], [blockStarts[1], blockStarts[2]])
  assert.ok((await readFile(join(dir, 'damaged', spool.damaged()[0]!.segment))).equals(damaged))
})

test('a segment cut exactly at a block boundary, or emptied, is damage reported at start', async () => {
  // The bug this pins: a cut at a block boundary or a file truncated to 0 bytes read as a whole,
  // shorter segment; the lines in the missing part were lost for every destination and nothing
  // was reported.
  for (const cut of ['boundary', 'empty'] as const) {
    const { dir, path, blockStarts, size } = await spoolWithSegment()
    const at = cut === 'boundary' ? blockStarts[2]! : 0
    await truncate(path, at)
    const { spool, lines, logs } = await restart(dir)
    assert.deepEqual(lines, cut === 'boundary' ? expected(2) : [], cut)
    assert.equal(spool.damaged().length, 1, cut)
    assert.deepEqual([spool.damaged()[0]!.fromByte, spool.damaged()[0]!.toByte], [at, size], cut)
    assert.equal(logs.length, 1, cut)
  }
})

test('a destination stopped inside a damaged segment, after the damage, resumes at the next line: nothing sent twice, nothing skipped', async () => {
  // The bug this pins: a destination checkpoints the lines it has read (from + count), but the
  // spool numbers the lines lost to damage too (resync.ts), so a checkpoint taken after the
  // damage pointed lines too early: the restart sent the intact lines after the damage again.
  const { dir, path, blockStarts } = await spoolWithSegment()
  const damaged = await readFile(path)
  damaged[blockStarts[1]! + 20] ^= 0x55
  await writeFile(path, damaged)
  const got: string[] = []
  // Takes one line at a time with a checkpoint after each; the first run stops after 15 lines.
  let stopAfter: number | null = 15
  const sink: Sink = {
    name: 'lines',
    async init() {},
    async deliver(batch, progress) {
      let n = 0
      for await (const line of batch.lines()) {
        if (stopAfter !== null && got.length >= stopAfter) throw new Error('stopped')
        got.push(line)
        await progress(batch.from + ++n, [])
      }
      return { delivered: n, duplicates: 0, rejected: [] }
    },
    async close() {}
  }
  const run = async (): Promise<void> => {
    const spool = new Spool({ dir, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log: pino({ level: 'silent' }) })
    await spool.init()
    const forwarder = new Forwarder({ spool, sink, log: pino({ level: 'silent' }), deadLetter: async () => {}, retryMaxMs: 1 })
    spool.expectConsumers([forwarder.name])
    await forwarder.prepare()
    forwarder.start()
    const end = Date.now() + 10_000
    while (got.length < (stopAfter ?? except(1).length) && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 1))
    await forwarder.stop(1000)
  }
  await run()
  assert.equal(got.length, 15)
  stopAfter = null
  await run()
  assert.deepEqual(got, except(1))
})
