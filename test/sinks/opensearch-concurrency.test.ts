// OPENSEARCH_BULK_CONCURRENCY: up to that many _bulk requests of one batch in flight, never more,
// every line delivered once and the batch checkpointed to its end. A _bulk double holds each
// request until another arrives (or a fallback timer fires): with concurrency 2 the second bulk
// comes while the first is held, with concurrency 1 it never can. No timing is asserted.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createServer } from 'node:http'
import type { AddressInfo } from 'node:net'
import { post, startServer } from '../helpers/server.js'

interface Gate { url: string, maxInFlight: number, ids: string[] }

async function gatedBulkDouble(t: TestContext): Promise<Gate> {
  const held: Array<() => void> = []
  let inFlight = 0
  const gate: Gate = { url: '', maxInFlight: 0, ids: [] }
  const server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const answer = (status: number, body: unknown): void => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(body))
      }
      if (!(req.method === 'POST' && (req.url ?? '').startsWith('/_bulk'))) return answer(200, req.method === 'PUT' ? { acknowledged: true } : {})
      const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((l) => l.length > 0)
      const items: unknown[] = []
      for (let i = 0; i < lines.length; i += 2) {
        const id = (JSON.parse(lines[i]!) as { create: { _id: string } }).create._id
        gate.ids.push(id)
        items.push({ create: { _id: id, status: 201 } })
      }
      inFlight++
      gate.maxInFlight = Math.max(gate.maxInFlight, inFlight)
      const release = (): void => {
        clearTimeout(timer)
        inFlight--
        answer(200, { took: 1, errors: false, items })
      }
      // Released by the next bulk's arrival; the timer only keeps a serial sender from waiting forever.
      const timer = setTimeout(() => { const i = held.indexOf(release); if (i >= 0) held.splice(i, 1); release() }, 300)
      const earlier = held.splice(0)
      held.push(release)
      for (const r of earlier) r()
    })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  gate.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  return gate
}

const line = (i: number): string => `{"RayID":"r${i}","ZoneName":"example.com","EdgeStartTimestamp":${1700000000000000000 + i},"EdgeResponseStatus":200,"ClientRequestURI":"/${'x'.repeat(200)}"}`

for (const concurrency of [1, 2]) {
  test(`OPENSEARCH_BULK_CONCURRENCY=${concurrency}: at most ${concurrency} _bulk request(s) in flight, and ${concurrency} when there is more to send; every line delivered once`, { timeout: 120_000 }, async (t) => {
    const gate = await gatedBulkDouble(t)
    const server = await startServer(t, { SINKS: 'opensearch', OPENSEARCH_URL: gate.url, OPENSEARCH_BULK_BYTES: '4096', OPENSEARCH_BULK_CONCURRENCY: String(concurrency) })
    const lines = Array.from({ length: 120 }, (_, i) => line(i))
    assert.equal((await post(server, '/logpush/http_requests', lines.join('\n') + '\n')).status, 200)
    assert.ok(await server.built.drained(60_000), 'the spool drained: the batch was checkpointed to its end')
    assert.equal(gate.ids.length, lines.length, 'every line sent once')
    assert.equal(new Set(gate.ids).size, lines.length)
    assert.equal(gate.maxInFlight, concurrency)
  })
}
