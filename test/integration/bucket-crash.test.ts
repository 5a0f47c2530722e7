// kill -9 while a bucket source drains a bucket: the window between an object's spool commit and
// its progress mark is where a naive reader stores an object twice (read again after the crash)
// or skips one (marked before it was durable). Every line must end up exactly once in the file
// destination and in Elasticsearch, however often the process dies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { batchText } from '../helpers/fixtures.js'
import { eventLines, esCount } from '../helpers/stored.js'
import { freePort, spawnService, waitDrained, type ServiceProcess } from '../helpers/process.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { TEST_S3_KEYS, eachLimit, logpushKey, newBucket, putGz, requireS3, testS3Client } from '../helpers/s3.js'
import { dayOf } from '../../src/sources/bucket/index.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))


test('kill -9 loop while a source drains a bucket: every line exactly once in the file destination and in Elasticsearch', { timeout: 600_000 }, async (t) => {
  const url = requireS3(t)
  const es = requireElasticsearch(t)
  if (!url || !es) return
  const s3 = testS3Client(url)
  const bucket = await newBucket(s3, 'crash')
  const day = dayOf(Date.now())
  const p = 'logs/http_requests/'
  const LINES = 100
  const objects: Array<[string, string]> = Array.from({ length: 200 }, (_, i) => [logpushKey(p, day, 10 * i), batchText('http_requests', LINES, 'unixnano', i * LINES)])
  // Half is there at the start; the rest arrives while the service keeps dying.
  await eachLimit(objects.slice(0, 100), 16, async ([key, text]) => await putGz(s3, bucket, key, text))
  let writing = true
  const writer = (async () => {
    for (const [key, text] of objects.slice(100)) {
      await putGz(s3, bucket, key, text)
      await sleep(100)
    }
    writing = false
  })()

  const dir = await mkdtemp(join(tmpdir(), 'lpr-bucket-crash-'))
  const config = join(dir, 'receiver.json')
  await writeFile(config, JSON.stringify({
    sources: [{
      name: 'http', bucket, prefix: `${p}{DATE}/`, dataset: 'http_requests', endpoint: url, forcePathStyle: true,
      accessKeyIdEnv: 'TEST_S3_KEY_ID', secretAccessKeyEnv: 'TEST_S3_SECRET', pollSeconds: 1, concurrency: 3
    }]
  }))
  const namespace = `bcrash${Date.now().toString(36)}`
  const env = {
    ...TEST_S3_KEYS,
    CONFIG_FILE: config,
    DATA_DIR: join(dir, 'data'),
    PORT: String(await freePort()),
    SINKS: 'file,elasticsearch',
    ELASTICSEARCH_URL: es,
    ELASTICSEARCH_NAMESPACE: namespace,
    DELIVERY_RETRY_MAX_MS: '500',
    EVENTS_ROTATE_BYTES: String(256 * 1024)
  }
  let service: ServiceProcess = await spawnService(t, env)
  const settledRows = async (): Promise<number> => ((await (await fetch(`${service.url}/health`)).json()) as any).sources.http?.progress.rows ?? 0
  let crashes = 0
  const progressAtCrash: number[] = []
  while (crashes < 12 || writing) {
    // The source is built once the service listens: kill only after it has begun listing, at a
    // random moment of its reading.
    for (let i = 0; i < 300; i++) {
      const h = await (await fetch(`${service.url}/health`)).json().catch(() => null) as any
      if (h?.sources?.http?.lastListedAt || h?.sources?.http?.objects?.inFlight > 0) break
      await sleep(50)
    }
    await sleep(200 + Math.floor(Math.random() * 800))
    progressAtCrash.push(await settledRows().catch(() => -1))
    service.child.kill('SIGKILL')
    await service.exited
    crashes++
    service = await spawnService(t, env)
  }
  await writer
  const end = Date.now() + 240_000
  while (await settledRows() < objects.length) {
    assert.ok(Date.now() < end, 'every object settled after the last restart')
    await sleep(200)
  }
  // Each object is one spool batch, so one Elasticsearch bulk request: on a busy machine that takes a while.
  await waitDrained(service.url, 400_000)
  t.diagnostic(`${crashes} crashes; objects settled at each crash: ${progressAtCrash.join(', ')}`)
  assert.ok(progressAtCrash.some((n) => n > 0 && n < objects.length), 'crashes happened while the bucket was being drained')

  const expected = new Set(objects.flatMap(([, text]) => text.split('\n').filter(Boolean)))
  const stored = await eventLines(env.DATA_DIR, 'http_requests')
  const counts = new Map<string, number>()
  for (const l of stored) counts.set(l, (counts.get(l) ?? 0) + 1)
  const missing = [...expected].filter((l) => !counts.has(l)).length
  const doubled = [...counts.values()].filter((n) => n > 1).length
  t.diagnostic(`${objects.length} objects, ${expected.size} lines; file destination: ${stored.length} lines, ${missing} missing, ${doubled} doubled`)
  assert.equal(missing, 0, 'no line missing from the file destination')
  assert.equal(doubled, 0, 'no line twice in the file destination')
  assert.equal(stored.length, expected.size)
  assert.equal(await esCount(es, `logs-cloudflare.http_requests-${namespace}`), expected.size, 'Elasticsearch holds each line once')
})
