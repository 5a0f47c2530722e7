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
import { Spool, type Segment } from '../../src/spool/index.js'
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
  const [name] = await readdir(join(dir, 'segments'))
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

for (const [where, block] of [['first', 0], ['middle', 1], ['last', 2]] as const) {
  test(`a flipped byte in the ${where} block: the blocks before it are delivered, the file's every byte is kept in damaged/, and it is reported once`, async () => {
    // The bug this pins: a damaged block made the spool truncate the file in place, deleting the
    // damaged bytes (and everything after them) for good; nothing kept them for an operator.
    const { dir, path, blockStarts, size } = await spoolWithSegment()
    const original = await readFile(path)
    const damaged = Buffer.from(original)
    damaged[blockStarts[block]! + 20] ^= 0x55
    await writeFile(path, damaged)
    const { spool, lines, logs } = await restart(dir)
    assert.deepEqual(lines, expected(block))
    const kept = await readFile(join(dir, 'damaged', join(path).split('/').at(-1)!))
    assert.ok(kept.equals(damaged), 'every byte of the damaged segment is kept')
    const [d] = spool.damaged()
    assert.deepEqual([d?.fromByte, d?.toByte], [blockStarts[block], size])
    assert.equal(logs.length, 1)
    assert.equal(logs[0].segment, d!.segment)
    assert.deepEqual([logs[0].fromByte, logs[0].toByte], [blockStarts[block], size])
    // The next start finds the segment cut to its whole blocks: reported again, the copy untouched.
    const again = await restart(dir)
    assert.deepEqual(again.lines, expected(block))
    assert.equal(again.spool.damaged().length, 1)
    assert.ok((await readFile(join(dir, 'damaged', d!.segment))).equals(damaged), 'the full copy is not overwritten')
  })
}

test('a torn length field is damage: the blocks before it are delivered and the bytes kept', async () => {
  const { dir, path, blockStarts } = await spoolWithSegment()
  const damaged = await readFile(path)
  damaged.writeUInt32LE(0x7fffffff, blockStarts[1]!)
  await writeFile(path, damaged)
  const { spool, lines } = await restart(dir)
  assert.deepEqual(lines, expected(1))
  assert.equal(spool.damaged()[0]?.fromByte, blockStarts[1])
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
