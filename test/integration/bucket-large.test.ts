// A 200 MB (inflated) bucket object goes through with flat memory: the body streams from the
// bucket through gunzip and the parse workers into the spool batch file, never whole in memory.
// A reader that buffers the object (or its inflated text) grows by hundreds of MB.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createGzip } from 'node:zlib'
import { batchStream } from '../helpers/fixtures.js'
import { spawnService } from '../helpers/process.js'
import { TEST_S3_KEYS, logpushKey, newBucket, put, requireS3, testS3Client } from '../helpers/s3.js'
import { dayOf } from '../../src/sources/bucket/index.js'

const MB = 1024 * 1024

async function rss(pid: number): Promise<number> {
  return Number(/VmRSS:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'))![1]) * 1024
}

test('a 200 MB object is read with flat memory and every line accepted', { timeout: 300_000 }, async (t) => {
  const url = requireS3(t)
  if (!url) return
  const s3 = testS3Client(url)
  const bucket = await newBucket(s3, 'large')
  const { stream, stats } = batchStream('http_requests', 200 * MB)
  const parts: Buffer[] = []
  for await (const chunk of stream.pipe(createGzip({ level: 1 }))) parts.push(chunk as Buffer)
  const gz = Buffer.concat(parts)
  parts.length = 0

  const dir = await mkdtemp(join(tmpdir(), 'lpr-bucket-large-'))
  const config = join(dir, 'receiver.json')
  await writeFile(config, JSON.stringify({
    sources: [{ name: 'big', bucket, prefix: 'logs/{DATE}/', dataset: 'http_requests', endpoint: url, forcePathStyle: true, accessKeyIdEnv: 'TEST_S3_KEY_ID', secretAccessKeyEnv: 'TEST_S3_SECRET', pollSeconds: 1 }]
  }))
  const service = await spawnService(t, { ...TEST_S3_KEYS, CONFIG_FILE: config, SINKS: 'discard' })
  // Settle after start (workers up, the source built and polling) before taking the baseline.
  for (let i = 0; i < 600; i++) {
    const h = await (await fetch(`${service.url}/health`)).json() as any
    if (h.sources.big?.lastListedAt) break
    await new Promise((r) => setTimeout(r, 100))
  }
  await new Promise((r) => setTimeout(r, 2000))
  const baseline = await rss(service.child.pid!)
  await put(s3, bucket, logpushKey('logs/', dayOf(Date.now()), 1), gz)
  let peak = baseline
  let status: any
  const end = Date.now() + 240_000
  for (;;) {
    peak = Math.max(peak, await rss(service.child.pid!))
    status = await (await fetch(`${service.url}/health`)).json()
    if (status.sources.big && status.sources.big.objects.done + status.sources.big.objects.failed > 0) break
    assert.ok(Date.now() < end, 'the object was read in time')
    await new Promise((r) => setTimeout(r, 100))
  }
  t.diagnostic(`object ${(stats.bytes / MB).toFixed(0)} MB inflated, ${(gz.length / MB).toFixed(1)} MB gzip, ${stats.lines} lines; service RSS ${(baseline / MB).toFixed(0)} MB before, peak ${(peak / MB).toFixed(0)} MB while reading (+${((peak - baseline) / MB).toFixed(0)} MB)`)
  assert.equal(status.sources.big.objects.done, 1, JSON.stringify(status.sources.big))
  assert.equal(status.datasets.http_requests.accepted, stats.lines, 'every line accepted')
  // GC lets RSS wander by tens of MB; holding the object (or its text) would add 200 MB and more.
  assert.ok(peak - baseline < 96 * MB, `memory stayed flat: +${((peak - baseline) / MB).toFixed(0)} MB for a ${(stats.bytes / MB).toFixed(0)} MB object`)
})
