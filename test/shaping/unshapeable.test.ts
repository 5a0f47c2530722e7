// The bug: a line the shaping could not handle (the shaper threw) failed the whole delivery, so
// that destination retried the batch for ever and got none of its other lines, instead of
// dead-lettering that one line for that destination (coded) and delivering the rest.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Forwarder, Spool } from '../../src/spool/index.js'
import { FileSink } from '../../src/sinks/file/sink.js'
import type { Rejection } from '../../src/delivery.js'
import { createLogger } from '../../src/observability/index.js'
import { buildShapers, shapeFor } from '../../src/shaping/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'

const log = createLogger('silent')
const datasets = loadDatasets(schemasDir)

test('a line the shaping cannot handle is dead-lettered for that destination (coded) and the rest of the batch is delivered', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-unshapeable-'))
  const spool = new Spool({ dir: join(dir, 'spool'), highWatermarkBytes: 1e12, lowWatermarkBytes: 0, minFreeBytes: 0, dedupeSeconds: 3600, log })
  await spool.init()
  const sink = new FileSink({ dir: join(dir, 'events'), rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: false, log })
  const shapers = buildShapers([{ name: 'trunc', datasets: ['http_requests'], transforms: [{ field: 'ClientIP', type: 'truncate-ip' }] }], ['file'], datasets)
  const dead: Rejection[] = []
  const forwarder = new Forwarder({
    spool, sink, log, retryMaxMs: 1,
    deadLetter: async (r) => { dead.push(...r as Rejection[]) },
    shape: shapeFor('file', shapers, () => {})
  })
  spool.expectConsumers([forwarder.name])
  await forwarder.prepare()
  // Injected past validation, straight into the spool: a line the shaper's walk cannot read.
  const bad = '["not","an","object"]'
  const good = (i: number): string => `{"RayID":"r${i}","ClientIP":"198.51.100.${i}","EdgeStartTimestamp":${1700000000000000000 + i}}`
  const batch = await spool.open('http_requests', 'req-1')
  for (const l of [good(1), bad, good(2)]) batch.writeEvent(l)
  await batch.seal()
  await batch.commit('d1')
  forwarder.start()
  const end = Date.now() + 20_000
  while (spool.backlog(forwarder.name).segments > 0) {
    assert.ok(Date.now() < end, `the batch is delivered, not retried for ever: ${JSON.stringify(forwarder.status())}`)
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await forwarder.stop(1000)
  await sink.close()
  const files = await readdir(join(dir, 'events', 'http_requests'))
  const out = (await Promise.all(files.sort().map((f) => readFile(join(dir, 'events', 'http_requests', f), 'utf8')))).join('').split('\n').filter(Boolean)
  assert.deepEqual(out, [good(1).replace('198.51.100.1"', '198.51.100.0"'), good(2).replace('198.51.100.2"', '198.51.100.0"')])
  assert.equal(dead.length, 1)
  assert.deepEqual({ ...dead[0], reason: undefined }, { dataset: 'http_requests', sink: 'file', code: 'LPR_ERR_SHAPING_LINE', reason: undefined, raw: bad })
  assert.match(dead[0]!.reason, /shaping/)
})
