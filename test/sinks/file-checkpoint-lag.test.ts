// The file destination under checkpoints written in groups (src/spool/checkpoints.ts): after a
// crash the spool replays from a checkpoint older than the last delivery, and the destination
// cuts its files back to what that checkpoint names.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { FileSink } from '../../src/sinks/file/sink.js'
import { createLogger } from '../../src/observability/index.js'
import type { DeliveryBatch } from '../../src/delivery.js'

const log = createLogger('silent')

function batch(seq: number, lines: string[]): DeliveryBatch {
  const data = Buffer.from(lines.map((l) => l + '\n').join(''))
  return {
    seq,
    dataset: 'http_requests',
    from: 0,
    count: lines.length,
    lines: async function * () { yield * lines },
    payloads: async function * () { for (const l of lines) yield Buffer.from(l) },
    blocks: async function * () { yield { lines: lines.length, data } }
  }
}

async function stored(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const f of (await readdir(dir)).sort()) {
    const raw = await readFile(join(dir, f))
    out.push(...(f.endsWith('.gz') ? gunzipSync(raw) : raw).toString().split('\n').filter(Boolean))
  }
  return out
}

test('a rotated events file is compressed only once a written checkpoint is past it: a replay from an older one stores nothing twice', async () => {
  // The bug this pins: a rotated file was gzipped at once. With its checkpoint still pending (a
  // group not yet written) a crash left the older checkpoint naming the file at a smaller size;
  // the .ndjson was gone, nothing was cut back, and the replayed lines were stored twice.
  const root = await mkdtemp(join(tmpdir(), 'lpr-file-lag-'))
  const opts = { dir: root, rotateBytes: 100, rotateMs: 3_600_000, gzipRotated: true, log }
  const a = batch(1, ['{"a":1,"pad":"xxxxxxxxxxxxxxxx"}', '{"a":2,"pad":"xxxxxxxxxxxxxxxx"}'])
  const c = batch(2, ['{"c":1,"pad":"xxxxxxxxxxxxxxxx"}', '{"c":2,"pad":"xxxxxxxxxxxxxxxx"}'])
  const b = batch(3, ['{"b":1,"pad":"xxxxxxxxxxxxxxxx"}'])
  const first = new FileSink(opts)
  await first.init(undefined)
  const afterA = (await first.deliver(a)).state
  first.checkpointed(afterA) // the checkpoint after A is written
  await first.deliver(c)
  await first.deliver(b) // rotates the file A and C are in
  // The checkpoints after C and B were still pending: the crash (close() stands for it, its
  // compressions finished) leaves the one after A.
  await first.close()
  const replay = new FileSink(opts)
  await replay.init(afterA)
  for (const x of [c, b]) await replay.deliver(x)
  await replay.close()
  const lines = await stored(join(root, 'http_requests'))
  assert.deepEqual(lines.sort(), ['{"a":1,', '{"a":2,', '{"c":1,', '{"c":2,', '{"b":1,'].map((p) => `${p}"pad":"xxxxxxxxxxxxxxxx"}`).sort())
})

test('with routing the file destination still compresses its rotated files: the routing wrapper passes the written checkpoints on', async () => {
  // The bug this pins: RoutingSink did not pass checkpointed() (nor replaysWithoutDuplicates) on
  // to the file destination it wraps, and a rotated file is gzipped only from checkpointed(): with
  // FILE_GZIP_ROTATED and a routing rule for the files, no rotated events file was ever compressed
  // while the service ran.
  const { Forwarder, Spool } = await import('../../src/spool/index.js')
  const { FaultFs } = await import('../helpers/fault-fs.js')
  const { send, bodies, SPOOL_DIR } = await import('../helpers/spool-harness.js')
  const { buildRouters, RoutingSink } = await import('../../src/shaping/index.js')
  const { loadDatasets } = await import('../../src/pipeline/index.js')
  const { schemasDir } = await import('../../src/paths.js')
  const routers = buildRouters([{ name: 'by-zone', datasets: ['http_requests'], field: 'ZoneName', table: { 'acme.example': 'acme' }, default: 'shared' }], { acme: {}, shared: {} }, ['file'], loadDatasets(schemasDir)).get('file')!
  const root = await mkdtemp(join(tmpdir(), 'lpr-file-routed-gzip-'))
  const sink = new RoutingSink(new FileSink({ dir: root, rotateBytes: 100, rotateMs: 3_600_000, gzipRotated: true, log }), routers, () => {})
  const spool = new Spool({ dir: SPOOL_DIR, highWatermarkBytes: 1e12, lowWatermarkBytes: 1, minFreeBytes: 0, dedupeSeconds: 3600, log, fs: new FaultFs(), checkpointIntervalMs: 0 })
  await spool.init()
  const forwarder = new Forwarder({ spool, sink, log, deadLetter: async () => {}, retryMaxMs: 1 })
  spool.expectConsumers([forwarder.name])
  await forwarder.prepare()
  forwarder.start()
  const sent = bodies(4, 2, 'routed').map((b) => ({ ...b, lines: b.lines.map((_, i) => `{"ZoneName":"acme.example","RayID":"${b.digest}-${i}","pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}`) }))
  for (const b of sent) assert.equal(await send(spool, b), 'stored')
  const end = Date.now() + 10_000
  while (spool.backlog(forwarder.name).segments > 0) {
    if (Date.now() > end) throw new Error('not delivered')
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
  await forwarder.stop(1000)
  const names = await readdir(join(root, 'acme', 'http_requests'))
  assert.ok(names.filter((n) => n.endsWith('.ndjson')).length >= 1, names.join(' '))
  assert.ok(names.some((n) => n.endsWith('.ndjson.gz')), `a rotated file is compressed: ${names.join(' ')}`)
  assert.equal((await stored(join(root, 'acme', 'http_requests'))).length, 8)
})

test('a file rotated by age while its dataset is idle is compressed: the written checkpoint names it at its final size', async () => {
  // The bug this pins: a rotated file waited for a written checkpoint that no longer named it,
  // but only a delivery to its own dataset changes which file a checkpoint names; a dataset that
  // went quiet (a Logpush job paused) kept its last file, rotated by age, uncompressed for good,
  // though the checkpoint naming it already had its whole size (nothing to cut back).
  const root = await mkdtemp(join(tmpdir(), 'lpr-file-aged-'))
  const sink = new FileSink({ dir: root, rotateBytes: 1 << 20, rotateMs: 30, gzipRotated: true, log })
  await sink.init(undefined)
  sink.checkpointed(sink.startState())
  const state = (await sink.deliver(batch(1, ['{"a":1}', '{"a":2}']))).state
  sink.checkpointed(state) // written; no more batches come for this dataset
  const dir = join(root, 'http_requests')
  const end = Date.now() + 10_000
  while (!(await readdir(dir)).some((n) => n.endsWith('.ndjson.gz'))) {
    if (Date.now() > end) assert.fail(`never compressed: ${(await readdir(dir)).join(' ')}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  await sink.close()
  assert.deepEqual(await stored(dir), ['{"a":1}', '{"a":2}'])
})
