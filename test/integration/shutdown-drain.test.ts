// The bug this pins (#24): on SIGTERM the service closed its listener in the same step as it set
// the shutting-down state, so no new connection ever saw /health answer 503; a balancer learnt of
// the stop only from refused connections and, meanwhile, answered senders 503 "no server
// available". Now /health answers 503 for SHUTDOWN_HEALTH_DELAY_MS while uploads are still
// served; only then does the listener close.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { spawnService } from '../helpers/process.js'

test('SIGTERM: /health turns 503 while uploads are still answered 200, then the listener closes and the process exits 0', { timeout: 120_000 }, async (t) => {
  // Long enough for the steps below on a loaded machine; nothing here measures it.
  const service = await spawnService(t, { SINKS: 'file', SHUTDOWN_HEALTH_DELAY_MS: '8000', LOG_LEVEL: 'info' })
  service.child.kill('SIGTERM')
  let health: Response | null = null
  for (let i = 0; i < 100; i++) {
    health = await fetch(`${service.url}/health`)
    if (health.status === 503) break
    await new Promise((r) => setTimeout(r, 20))
  }
  assert.equal(health?.status, 503, 'a new connection sees /health 503')
  assert.deepEqual((await health!.json() as any).reasons, ['shutting down'])
  assert.equal((await fetch(`${service.url}/health/live`)).status, 200, 'alive: nothing to restart')
  const res = await fetch(`${service.url}/logpush/http_requests`, {
    method: 'POST',
    body: gzipSync('{"RayID":"after-sigterm","EdgeStartTimestamp":1652295571783000123}\n'),
    headers: { authorization: `Bearer ${service.token}`, 'content-encoding': 'gzip' }
  })
  assert.equal(res.status, 200, 'an upload after SIGTERM is still stored')
  assert.equal(await service.exited, 0)
  await assert.rejects(fetch(`${service.url}/health`), 'the listener is closed')
  const log = service.output()
  assert.ok(log.indexOf('/health answers 503') < log.indexOf('no new requests'), 'the 503 phase comes before the listener closes')
})
