// A request cut off while its pieces are with a parse worker: whatever the worker answers after
// the cut, nothing of the request is left in the spool's staging directory and no file stays open.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Readable } from 'node:stream'
import { ingest, loadDatasets, ParsePool, schemaSnapshot } from '../../src/pipeline/index.js'
import type { ParseSession } from '../../src/pipeline/parse-pool.js'
import { DatasetStats, createLogger } from '../../src/observability/index.js'
import { schemasDir } from '../../src/paths.js'
import { FaultFs } from '../helpers/fault-fs.js'
import { DATASET, MemoryDestination, startService, turn } from '../helpers/spool-harness.js'
import { batchText } from '../helpers/fixtures.js'

const datasets = loadDatasets(schemasDir)
const dataset = datasets.get(DATASET)!
const MAX_LINE = 1024 * 1024
// The pool's workers are unref'd; here this keeps the loop alive.
const keepAlive = setInterval(() => {}, 1000)
test.after(() => clearInterval(keepAlive))

test('a request aborted while its first piece is with a parse worker leaves no staging file behind', async (t) => {
  // The bug: the consumer's destroy() discarded the batch while the piece it had taken out of
  // `inflight` was still awaiting its answer; that answer (with rejected lines) then went on into
  // the discarded batch, which created a dead-letter staging file nobody removed (its file handle
  // closed only by the garbage collector).
  const fs = new FaultFs()
  // Creating the dead letters' file takes a while, as on a busy disk.
  fs.hook = async (call) => { if (call.op === 'open' && call.path.endsWith('.dead-letter')) for (let i = 0; i < 200; i++) await turn() }
  const service = await startService(fs, new MemoryDestination())
  const real = new ParsePool(1, { schemas: schemaSnapshot(datasets), driftFieldsMax: 100, driftFieldNameMaxChars: 100, maxLineBytes: MAX_LINE }, createLogger('silent'))
  t.after(async () => { await real.close(); await service.stop() })

  // The worker's answers reach this thread only once the gate opens, so the request is cut off
  // while this thread waits for the first one.
  let open!: () => void
  const gate = new Promise<void>((resolve) => { open = resolve })
  let pushed = 0
  const pool = {
    open (name: string, maxLineBytes: number, maxDepth: number): ParseSession {
      const s = real.open(name, maxLineBytes, maxDepth)
      return { push: (lines) => { pushed++; const answer = s.push(lines); return gate.then(() => answer) }, end: (rest) => s.end(rest), cancel: () => s.cancel() }
    }
  } as unknown as ParsePool

  // Every other line refused by the schema: every piece's answer carries dead letters.
  const text = batchText(DATASET, 3000).split('\n').filter(Boolean).map((l, i) => (i % 2 ? '{"RayID":"x","ClientASN":"nan"}' : l)).join('\n') + '\n'
  assert.ok(text.length > 3 * 256 * 1024, 'more than two pieces')
  let cut = false
  const source = Readable.from((async function * () {
    const buf = Buffer.from(text)
    // The cut comes once two pieces went out: this thread then waits for the first one's answer.
    for (let at = 0; pushed < 2; at += 64 * 1024) yield buf.subarray(at, at + 64 * 1024)
    cut = true
    throw new Error('the sender went away')
  })())

  const running = ingest({ dataset, open: (d) => service.spool.open(d.name, 'req'), source, through: [], tally: new DatasetStats(100, 100), maxLineBytes: MAX_LINE, requestId: 'req', pool })
  running.catch(() => {})
  while (!cut) await turn()
  await turn()
  open()
  await assert.rejects(running, /the sender went away/)
  for (let i = 0; i < 50; i++) await turn()
  assert.deepEqual(fs.list('/data/spool/staging'), [], 'nothing of the aborted request left in staging')
})
