// A Logpush job may send up to 1 GB (uncompressed) in one batch. The body is streamed end to end,
// so a 200 MB batch must not make the server process grow anywhere near 200 MB; if a stage ever
// buffers the body (or all its lines), the peak RSS assertion below fails.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { createGzip, createGunzip } from 'node:zlib'
import split2 from 'split2'
import { batchStream } from '../helpers/fixtures.js'
import { peakRssBytes, spawnService, waitDrained } from '../helpers/process.js'

const MB = 1024 * 1024

async function countLines(dir: string): Promise<number> {
  let n = 0
  for (const f of (await readdir(dir)).sort()) {
    let s: Readable = createReadStream(join(dir, f))
    if (f.endsWith('.gz')) s = s.pipe(createGunzip())
    for await (const line of s.pipe(split2())) if (line) n++
  }
  return n
}

test('a 200 MB batch is ingested while the server peak RSS stays under 300 MB', { timeout: 300_000 }, async (t) => {
  const service = await spawnService(t, { EVENTS_GZIP_ROTATED: 'false' })
  const { stream, stats } = batchStream('http_requests', 200 * MB)
  const body = stream.pipe(createGzip({ level: 1 }))
  const res = await fetch(`${service.url}/logpush/http_requests`, {
    method: 'POST',
    body: Readable.toWeb(body) as ReadableStream,
    headers: { authorization: `Bearer ${service.token}`, 'content-encoding': 'gzip' },
    duplex: 'half'
  } as RequestInit)
  const json = await res.json() as any
  assert.equal(res.status, 200, JSON.stringify(json))
  assert.ok(stats.bytes >= 200 * MB)
  assert.equal(json.accepted, stats.lines)
  await waitDrained(service.url)
  const peak = await peakRssBytes(service.child.pid!)
  t.diagnostic(`uncompressed ${(stats.bytes / MB).toFixed(0)} MB, ${stats.lines} lines, server peak RSS ${(peak / MB).toFixed(1)} MB`)
  assert.ok(peak < 300 * MB, `peak RSS ${(peak / MB).toFixed(1)} MB`)
  assert.equal(await countLines(join(service.dataDir, 'events', 'http_requests')), stats.lines)
})

test('SIGTERM: no new requests, the one in flight finishes and is stored, the process exits 0', { timeout: 60_000 }, async (t) => {
  const service = await spawnService(t)
  const line = '{"RayID":"in-flight","EdgeStartTimestamp":1652295571783000123}\n'
  let sent = 0
  // A slow sender: the signal arrives while its body is still on the way.
  const slow = new Readable({
    read () {
      if (sent === 20) return this.push(null)
      setTimeout(() => { sent++; this.push(line) }, 50)
    }
  })
  const pending = fetch(`${service.url}/logpush/http_requests`, {
    method: 'POST',
    body: Readable.toWeb(slow) as ReadableStream,
    headers: { authorization: `Bearer ${service.token}` },
    duplex: 'half'
  } as RequestInit)
  while (sent < 5) await new Promise((r) => setTimeout(r, 20))
  service.child.kill('SIGTERM')
  const res = await pending
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { dataset: 'http_requests', accepted: 20, rejected: 0 })
  assert.equal(await service.exited, 0)
  await assert.rejects(fetch(`${service.url}/health`))
  assert.equal(await countLines(join(service.dataDir, 'events', 'http_requests')), 20)
})
