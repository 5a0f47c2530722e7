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
