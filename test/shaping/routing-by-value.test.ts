// Routing with byValue: a value that names a configured tenant must reach that tenant's own
// targets, the same whichever of its lines comes first in a batch.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildRouters, RoutingSink } from '../../src/shaping/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import type { DeliveryBatch, DeliveryResult, Sink } from '../../src/delivery.js'

const datasets = loadDatasets(schemasDir)
const line = (i: number, zone: string): string => `{"RayID":"r${i}","ZoneName":"${zone}","EdgeStartTimestamp":${1700000000000000000 + i}}`

/** A destination that records which lines each delivery sent to which folder. */
class Recorder implements Sink {
  readonly name = 'file'
  readonly got = new Map<string, string[]>()
  async init(): Promise<void> {}
  async close(): Promise<void> {}
  async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    const folder = batch.route?.folder ?? '(own)'
    for await (const l of batch.lines()) if (l.length > 0) this.got.set(folder, [...this.got.get(folder) ?? [], l])
    return { delivered: 0, duplicates: 0, rejected: [] }
  }
}

function batchOf(lines: string[]): DeliveryBatch {
  return {
    seq: 0, dataset: 'http_requests', from: 0, count: lines.length,
    async * lines() { yield * lines },
    async * payloads() { for (const l of lines) yield Buffer.from(l) },
    async * blocks() { yield { lines: lines.length, data: Buffer.from(lines.join('\n') + '\n') } }
  }
}

test('a byValue value naming a configured tenant goes to that tenant\'s own folder, whichever line comes first', async () => {
  // The bug: with byValue, a value equal to a configured tenant's name ("bravo") made a route from
  // the name itself (folder "bravo"), while the table's value for the same tenant used its
  // configured folder ("bravo-files"); lines of one tenant were then delivered together to
  // whichever of the two routes came first in the batch, so part of bravo's lines left its folder.
  const routers = buildRouters([{ name: 'z', datasets: ['http_requests'], field: 'ZoneName', table: { 'bravo.example': 'bravo' }, byValue: true }],
    { bravo: { file: { folder: 'bravo-files' } } }, ['file'], datasets)
  for (const order of [['bravo', 'bravo.example'], ['bravo.example', 'bravo']]) {
    const inner = new Recorder()
    const sink = new RoutingSink(inner, routers.get('file')!, () => {})
    const lines = [line(1, order[0]!), line(2, order[1]!), line(3, 'newcustomer')]
    await sink.deliver(batchOf(lines), async () => {}, new AbortController().signal)
    assert.deepEqual(Object.fromEntries(inner.got), { 'bravo-files': [lines[0], lines[1]], newcustomer: [lines[2]] }, `order ${order.join(', ')}`)
  }
})
