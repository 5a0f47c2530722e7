// Readiness (/health) against liveness (/health/live), in each state a replica can be in (#24 item 4).
// A balancer or kubelet acts on readiness: it must stop sending to a replica that cannot store
// (spool above its watermark, disk guard refusing, shutting down). It restarts on liveness: that
// must stay 200 in all of these, since a restart helps none of them, and above all not a replica
// whose destination is down (its spool takes the batches; a restart would only churn).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { freePort } from '../helpers/process.js'
import { post, startServer, type TestServer } from '../helpers/server.js'

const LINE = '{"RayID":"7c5b1e9a0b1c2d3e","EdgeStartTimestamp":1652295571783000123}\n'

async function probe(server: TestServer): Promise<{ ready: number, reasons: string[], live: number, body: any }> {
  const health = await fetch(`${server.url}/health`)
  const body = await health.json() as any
  const live = await fetch(`${server.url}/health/live`)
  assert.deepEqual(Object.keys(await live.json() as object).sort(), ['status', 'version'])
  return { ready: health.status, reasons: body.reasons, live: live.status, body }
}

/** A destination nobody listens on: Elasticsearch at a loopback port that refuses connections. */
async function downDestination(t: TestContext, env: Record<string, string> = {}): Promise<TestServer> {
  return await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: `http://127.0.0.1:${await freePort()}`, ELASTICSEARCH_RETRY_MS: '200', SHUTDOWN_GRACE_MS: '0', ...env })
}

test('a destination down: ready (the spool takes the batches) and alive', async (t) => {
  const server = await downDestination(t)
  assert.equal((await post(server, '/logpush/http_requests', LINE)).status, 200)
  // Bounded wait until the forwarder has tried and failed at least once.
  let state = await probe(server)
  for (let i = 0; i < 300 && state.body.sinks.elasticsearch.lastError == null; i++) {
    await new Promise((r) => setTimeout(r, 100))
    state = await probe(server)
  }
  assert.ok(state.body.sinks.elasticsearch.lastError, 'the destination failed a delivery')
  assert.equal(state.ready, 200, JSON.stringify(state.reasons))
  assert.equal(state.live, 200)
  assert.equal((await post(server, '/logpush/http_requests', LINE.replace('7c5b', '8c5b'))).status, 200, 'batches are still taken')
})

test('the spool above its high watermark: not ready, alive', async (t) => {
  // Nothing drains (the destination is down), so one batch puts the spool above 64 bytes.
  const server = await downDestination(t, { SPOOL_HIGH_WATERMARK_BYTES: '64', SPOOL_LOW_WATERMARK_BYTES: '1' })
  assert.equal((await post(server, '/logpush/http_requests', LINE.repeat(4))).status, 200)
  const state = await probe(server)
  assert.equal(state.ready, 503)
  assert.match(state.reasons.join(';'), /SPOOL_HIGH_WATERMARK_BYTES/)
  assert.equal(state.live, 200)
  assert.equal((await post(server, '/logpush/http_requests', LINE.replace('7c5b', '9c5b'))).status, 503, 'and batches are refused')
})

test('the disk guard refusing: not ready, alive', async (t) => {
  // A reserve larger than any disk: the guard refuses from the start.
  const server = await startServer(t, { SINKS: 'file', SPOOL_MIN_FREE_BYTES: String(2 ** 52) })
  const state = await probe(server)
  assert.equal(state.ready, 503)
  assert.match(state.reasons.join(';'), /SPOOL_MIN_FREE_BYTES/)
  assert.equal(state.live, 200)
  assert.equal((await post(server, '/logpush/http_requests', LINE)).status, 503)
})

test('shutting down (the health delay): not ready, alive, and uploads still served', async (t) => {
  const server = await startServer(t, { SINKS: 'file' })
  server.built.beginShutdown()
  const state = await probe(server)
  assert.equal(state.ready, 503)
  assert.deepEqual(state.reasons, ['shutting down'])
  assert.equal(state.live, 200)
  const res = await post(server, '/logpush/http_requests', LINE)
  assert.equal(res.status, 200)
  assert.equal(res.headers.get('connection'), 'close', 'kept-alive connections end with their answer')
})
