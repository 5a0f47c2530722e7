// The bug: the file destination recovers by cutting its files back to the state checkpointed with
// the last delivered batch, but before its first checkpoint there was no state at all, so a crash
// between the very first delivery and its checkpoint kept that batch in events-0000000001 and the
// spool delivered it again into the next file. The kill -9 tests saw it on a loaded machine as one
// whole batch doubled (40 lines of network_analytics_logs, 100 of http_requests).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Forwarder, Spool } from '../../src/spool/index.js'
import { FileSink } from '../../src/sinks/file/sink.js'
import { createLogger } from '../../src/observability/index.js'
import { bodies, send } from '../helpers/spool-harness.js'

const log = createLogger('silent')

async function open(dir: string): Promise<{ spool: Spool, sink: FileSink, forwarder: Forwarder }> {
  const spool = new Spool({ dir: join(dir, 'spool'), highWatermarkBytes: 1e12, lowWatermarkBytes: 0, minFreeBytes: 0, dedupeSeconds: 3600, log })
  await spool.init()
  const sink = new FileSink({ dir: join(dir, 'events'), rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: false, log })
  const forwarder = new Forwarder({ spool, sink, log, deadLetter: async () => {}, retryMaxMs: 1 })
  spool.expectConsumers([forwarder.name])
  await forwarder.prepare()
  return { spool, sink, forwarder }
}

async function storedLines(dir: string): Promise<string[]> {
  const events = join(dir, 'events', 'http_requests')
  const out: string[] = []
  for (const f of (await readdir(events)).sort()) out.push(...(await readFile(join(events, f), 'utf8')).split('\n').filter(Boolean))
  return out
}

test('a crash between the first delivery to the files and its checkpoint does not store that batch twice', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-first-delivery-'))
  const [body] = bodies(1, 5, 'first')
  const first = await open(dir)
  assert.equal(await send(first.spool, body!), 'stored')
  // What the forwarder does, up to the crash: the batch reaches the file, its checkpoint never does.
  const seg = first.spool.next(0)!
  await first.sink.deliver(first.spool.batch(seg, 0))
  await first.sink.close()
  assert.deepEqual(await storedLines(dir), body!.lines, 'the first life wrote the batch')

  const second = await open(dir)
  second.forwarder.start()
  const end = Date.now() + 10_000
  while (second.spool.backlog(second.forwarder.name).segments > 0) {
    assert.ok(Date.now() < end, 'the second life delivers the batch again')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  await second.forwarder.stop(1000)
  await second.sink.close()
  assert.deepEqual(await storedLines(dir), body!.lines, 'each line once')
})
