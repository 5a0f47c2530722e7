// The spool's segment format (src/spool/format.ts): v2 blocks of lines read back byte for byte
// from any line on, v1 segments of the previous release read the same way, damage found.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { cp, mkdtemp, readFile, readdir, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { pino } from 'pino'
import { linesOf } from '../../src/delivery.js'
import { oneLine } from '../../src/one-line.js'
import { blockCrc, blockHeader, encodeBlocks, frameRecord, readBlocks, TornSegment, BLOCK_HEADER_BYTES, RECORD_HEADER_BYTES } from '../../src/spool/format.js'
import { Spool } from '../../src/spool/index.js'
import { readStore, startServer } from '../helpers/server.js'

const V1_FIXTURE = fileURLToPath(new URL('../../../test/fixtures/spool-v1/', import.meta.url))

/** Lines as v1 records, one each: what releases before blocks wrote. */
function frameV1(lines: readonly string[]): Buffer {
  return Buffer.concat(lines.map((l) => frameRecord(Buffer.from(l))))
}

function header(v: number): Buffer {
  return frameRecord(Buffer.from(JSON.stringify({ v, dataset: 'http_requests', requestId: 'r1', receivedAt: '2026-11-29T00:00:00.000Z' })))
}

async function lines(path: string, from = 0): Promise<Buffer[]> {
  const out: Buffer[] = []
  for await (const l of linesOf(readBlocks(path, from))) out.push(Buffer.from(l))
  return out
}

/** Lines as senders send them: UTF-8 text, bytes that are not UTF-8, a CR before the newline, and an HEC event with newlines of its own. */
function sample(n: number): Buffer[] {
  return Array.from({ length: n }, (_, i) => {
    if (i % 97 === 3) return Buffer.from(`{\n  "event": ${i}\n}`)
    if (i % 89 === 5) return Buffer.concat([Buffer.from(`{"b":"`), Buffer.from([0xff, 0xfe, 0x80]), Buffer.from(`${i}"}`)])
    if (i % 13 === 7) return Buffer.from(`{"crlf":${i}}\r`)
    return Buffer.from(`{"i":${i},"s":"d\u00e9j\u00e0 vu ${'x'.repeat(i % 50)}"}`)
  })
}

test('v2: the lines come back byte for byte from any line on, in blocks of many lines', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-format-'))
  const all = sample(400)
  // Several blocks, as a batch of several pieces writes them.
  const path = join(dir, 'seg')
  await writeFile(path, Buffer.concat([header(2), encodeBlocks(all.slice(0, 150)), encodeBlocks(all.slice(150, 151)), encodeBlocks(all.slice(151))]))
  const blocks = []
  for await (const b of readBlocks(path, 0)) blocks.push({ lines: b.lines, data: Buffer.from(b.data) })
  assert.ok(blocks.length < 20, `${blocks.length} blocks for 400 lines`)
  assert.equal(blocks.reduce((n, b) => n + b.lines, 0), 400)
  // A line is stored as it came, but for a record holding newlines of its own: that one is one line.
  const stored = all.map(oneLine)
  assert.ok(stored.some((l, i) => !l.equals(all[i]!)), 'the sample has records with newlines of their own')
  assert.equal(blocks.reduce((n, b) => n + b.data.filter((c) => c === 0x0a).length, 0), 400, 'one newline per line')
  for (const from of [0, 1, 3, 4, 149, 150, 151, 152, 250, 399, 400]) {
    assert.deepEqual(await lines(path, from), stored.slice(from), `from line ${from}`)
  }
})

test('a pretty-printed HEC event an earlier release stored verbatim is read as one line, from any line on', async () => {
  // The bug: such a record went to every destination with its newlines; Elasticsearch refused
  // the whole _bulk request (400 Malformed action/metadata line) and delivery stopped for good.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-format-'))
  const path = join(dir, 'seg')
  const pretty = Buffer.from('{\n  "RayID": "7c0f",\n  "EdgeStartTimestamp": 1652295571123456789,\n  "s": "a b\\n"\n}\n')
  const verbatim = Buffer.concat([blockHeader(1, pretty, blockCrc(1, pretty, true), true), pretty])
  await writeFile(path, Buffer.concat([header(2), encodeBlocks(['{"a":1}']), verbatim, encodeBlocks(['{"b":2}\r'])]))
  const one = '{"RayID":"7c0f","EdgeStartTimestamp":1652295571123456789,"s":"a b\\n"}'
  assert.deepEqual((await lines(path)).map(String), ['{"a":1}', one, '{"b":2}\r'])
  assert.deepEqual((await lines(path, 1)).map(String), [one, '{"b":2}\r'])
  for await (const b of readBlocks(path, 0)) assert.equal(b.data.filter((c) => c === 0x0a).length, b.lines)
  // v1 stored it as one record: read as one line too.
  const v1 = join(dir, 'v1')
  await writeFile(v1, Buffer.concat([header(1), frameV1(['{"a":1}', pretty.subarray(0, -1).toString()])]))
  assert.deepEqual((await lines(v1)).map(String), ['{"a":1}', one])
})

test('v1: a segment the previous release wrote is read the same way, from any line on', async () => {
  const segments = join(V1_FIXTURE, 'spool', 'segments')
  const names = (await readdir(segments)).sort()
  const http = (await readFile(join(V1_FIXTURE, 'expected-http_requests.ndjson'))).subarray(0, -1)
  const expected: Buffer[] = []
  for (let at = 0; at <= http.length;) {
    const nl = http.indexOf(0x0a, at)
    expected.push(http.subarray(at, nl < 0 ? http.length : nl))
    at = nl < 0 ? http.length + 1 : nl + 1
  }
  const got: Buffer[] = []
  for (const name of names.filter((n) => n.includes('.http_requests.'))) got.push(...await lines(join(segments, name)))
  assert.deepEqual(got.map(String), expected.map(String))
  const first = join(segments, names[0]!)
  const firstLines = await lines(first)
  for (const from of [0, 1, 2, 150, firstLines.length - 1, firstLines.length]) assert.deepEqual(await lines(first, from), firstLines.slice(from), `from line ${from}`)
})

test('a damaged last block ends what can be read at the last whole block; the file is left as it is', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-format-'))
  const spool = new Spool({ dir, highWatermarkBytes: 1e9, lowWatermarkBytes: 1e8, minFreeBytes: 0, dedupeSeconds: 0, log: pino({ level: 'silent' }) })
  await spool.init()
  const all = sample(300).filter((l) => !l.includes(0x0a))
  const batch = await spool.open('http_requests', 'r1')
  for (const part of [all.slice(0, 100), all.slice(100)]) {
    const data = Buffer.concat(part.flatMap((l) => [l, Buffer.from('\n')]))
    batch.writeBlock(data, part.length, blockCrc(part.length, data))
  }
  await batch.seal()
  const outcome = await batch.commit('d1')
  assert.equal(outcome.duplicate, false)
  const seg = spool.next(0)!
  assert.equal(seg.lines, all.length)
  const bytes = await readFile(seg.path)
  const headerBytes = RECORD_HEADER_BYTES + bytes.readUInt32LE(0)
  const secondBlock = headerBytes + RECORD_HEADER_BYTES + bytes.readUInt32LE(headerBytes)
  bytes[secondBlock + BLOCK_HEADER_BYTES + 10] ^= 0x01
  await writeFile(seg.path, bytes)
  let whole = 0
  await assert.rejects(async () => { for await (const b of readBlocks(seg.path, 0)) whole += b.lines }, (err: unknown) => err instanceof TornSegment && err.goodBytes === secondBlock)
  assert.equal(whole, 100, 'the first block is read before the damage is found')
  const read: string[] = []
  for await (const l of spool.payloads(seg, 0)) read.push(String(l))
  assert.deepEqual(read, all.slice(0, 100).map(String), 'the whole first block, nothing of the damaged one')
  assert.equal((await stat(seg.path)).size, bytes.length, 'never a byte deleted (the copy in damaged/ is damage.test.ts)')
  assert.deepEqual([spool.damaged()[0]?.fromByte, spool.damaged()[0]?.toByte], [secondBlock, bytes.length])
})

test('an upgraded service delivers what the previous release left spooled, byte for byte, exactly once', async (t) => {
  // The spool in the fixture was written by the release before blocks (format v1), by the real
  // service with its Splunk destination unreachable: three batches, none delivered.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-upgrade-'))
  await cp(join(V1_FIXTURE, 'spool'), join(dataDir, 'spool'), { recursive: true })
  const server = await startServer(t, { DATA_DIR: dataDir, SINKS: 'file' })
  for (const dataset of ['http_requests', 'network_analytics_logs']) {
    const stored = await readStore(server, 'events', dataset)
    assert.equal(stored, await readFile(join(V1_FIXTURE, `expected-${dataset}.ndjson`), 'utf8'), dataset)
  }
})

/** A spool with one committed segment of `body` (header included); the spool and the segment. */
async function spoolWith(body: (header: Buffer) => Buffer, lines: number): Promise<{ spool: Spool, seg: NonNullable<ReturnType<Spool['next']>> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-format-'))
  const spool = new Spool({ dir, highWatermarkBytes: 1e9, lowWatermarkBytes: 1e8, minFreeBytes: 0, dedupeSeconds: 0, log: pino({ level: 'silent' }) })
  await spool.init()
  const name = `000000000001.http_requests.${lines}.d1.seg`
  await writeFile(join(dir, 'segments', name), body(header(2)))
  const restarted = new Spool({ dir, highWatermarkBytes: 1e9, lowWatermarkBytes: 1e8, minFreeBytes: 0, dedupeSeconds: 0, log: pino({ level: 'silent' }) })
  await restarted.init()
  return { spool: restarted, seg: restarted.next(0)! }
}

async function payloads(spool: Spool, seg: NonNullable<ReturnType<Spool['next']>>, from = 0): Promise<string[]> {
  const out: string[] = []
  for await (const l of spool.payloads(seg, from)) out.push(String(l))
  return out
}

test('v1: a record with newlines of its own (an HEC event the previous release stored) stays one line', async () => {
  // The bug: v1 records were gathered into plain blocks, so a pretty-printed HEC event came
  // back as several lines that are not JSON, and the line count no longer matched checkpoints.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-format-'))
  const all = ['{"a":1}', '{\n  "b": 2\n}', '{"c":3}', '{"d":4}']
  const path = join(dir, 'seg')
  await writeFile(path, Buffer.concat([header(1), frameV1(all)]))
  // Issue 21: and it is delivered as one line, without the whitespace between its tokens.
  const one = ['{"a":1}', '{"b":2}', '{"c":3}', '{"d":4}']
  for (let from = 0; from <= all.length; from++) assert.deepEqual((await lines(path, from)).map(String), one.slice(from), `from line ${from}`)
})

test('v1: the whole lines before a damaged record are delivered and the damage reported from there', async () => {
  // The bug: v1 lines gathered into a block were dropped when the damage was found, although
  // the segment was cut after them: a destination never got them.
  const all = ['{"a":1}', '{"a":2}', '{"a":3}']
  let goodBytes = 0
  const { spool, seg } = await spoolWith(() => {
    const good = Buffer.concat([header(1), frameV1(all)])
    goodBytes = good.length
    const bad = frameV1(['{"a":4}'])
    bad[RECORD_HEADER_BYTES + 2] ^= 0x01
    return Buffer.concat([good, bad])
  }, 4)
  assert.deepEqual(await payloads(spool, seg), all)
  assert.equal((await stat(seg.path)).size, seg.bytes, 'never a byte deleted')
  assert.equal(spool.damaged()[0]?.fromByte, goodBytes)
})

test('v2: zeros where blocks should be (an empty record passes its checksum) are damage, not a reader crash', async () => {
  // The bug: a run of zero bytes reads as a record of length 0 whose crc32 (0) matches, and the
  // block reader threw a RangeError instead of TornSegment: delivery retried that segment forever.
  const all = sample(20).filter((l) => !l.includes(0x0a))
  let goodBytes = 0
  const { spool, seg } = await spoolWith((h) => {
    const good = Buffer.concat([h, encodeBlocks(all)])
    goodBytes = good.length
    return Buffer.concat([good, Buffer.alloc(4096)])
  }, all.length + 5)
  assert.deepEqual(await payloads(spool, seg), all.map(String))
  assert.equal((await stat(seg.path)).size, seg.bytes, 'never a byte deleted')
  assert.equal(spool.damaged()[0]?.fromByte, goodBytes)
})

test('a damaged length field is damage found before any memory is asked for it', async () => {
  const all = ['{"a":1}', '{"a":2}']
  let goodBytes = 0
  const { spool, seg } = await spoolWith((h) => {
    const good = Buffer.concat([h, encodeBlocks(all)])
    goodBytes = good.length
    const bad = encodeBlocks(['{"a":3}'])
    bad.writeUInt32LE(0xfffffff0, 0)
    return Buffer.concat([good, bad])
  }, 3)
  assert.deepEqual(await payloads(spool, seg), all)
  assert.equal((await stat(seg.path)).size, seg.bytes, 'never a byte deleted')
  assert.equal(spool.damaged()[0]?.fromByte, goodBytes)
})
