// Bucket sources end to end: the service as users run it (its own process, CONFIG_FILE), a real
// S3-compatible server (S3Mock) holding objects the way Logpush writes them, a real
// Elasticsearch. No mocks of the bucket, the spool or the destination.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { spawnService, waitDrained, type ServiceProcess } from '../helpers/process.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { TEST_S3_KEYS, eachLimit, logpushKey, newBucket, put, putGz, requireS3, testS3Client } from '../helpers/s3.js'
import { addDays, dayOf } from '../../src/sources/bucket/index.js'

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

async function configFile(sources: Array<Record<string, unknown>>): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-bucket-cfg-')), 'receiver.json')
  await writeFile(path, JSON.stringify({ sources }))
  return path
}

function sourceConfig(name: string, bucket: string, url: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    name, bucket, prefix: 'logs/http_requests/{DATE}/', dataset: 'http_requests', endpoint: url, region: 'us-east-1', forcePathStyle: true,
    accessKeyIdEnv: 'TEST_S3_KEY_ID', secretAccessKeyEnv: 'TEST_S3_SECRET', pollSeconds: 1, ...extra
  }
}

async function sourceStatus(service: ServiceProcess, name: string): Promise<any> {
  const health = await (await fetch(`${service.url}/health`)).json() as any
  return health.sources[name]
}

/** Polls /health until the source has settled `settled` objects (done + failed). */
async function waitSettled(service: ServiceProcess, name: string, settled: number, timeoutMs = 240_000): Promise<any> {
  const end = Date.now() + timeoutMs
  let s: any = null
  while (Date.now() < end) {
    s = await sourceStatus(service, name)
    if (s && s.objects.done + s.objects.failed >= settled) return s
    await sleep(200)
  }
  throw new Error(`source ${name} settled ${s?.objects.done}+${s?.objects.failed} of ${settled} objects: ${JSON.stringify(s)}`)
}

async function esCount(url: string, stream: string): Promise<number> {
  await fetch(`${url}/${stream}/_refresh`, { method: 'POST' })
  const res = await fetch(`${url}/${stream}/_count`)
  return res.ok ? ((await res.json()) as { count: number }).count : 0
}

test('a Logpush bucket: pages of keys, several days, late arrivals, challenge, CSV and corrupt objects; every valid line once in Elasticsearch', { timeout: 600_000 }, async (t) => {
  const url = requireS3(t)
  const es = requireElasticsearch(t)
  if (!url || !es) return
  const s3 = testS3Client(url)
  const bucket = await newBucket(s3, 'scenario')
  const today = dayOf(Date.now())
  const yesterday = addDays(today, -1)
  const before = addDays(today, -2)
  const p = 'logs/http_requests/'
  let n = 0
  let valid = 0
  const objects: Array<[string, string]> = []
  const add = (day: string, seq: number, lines: number): void => {
    objects.push([logpushKey(p, day, seq), batchText('http_requests', lines, 'unixnano', n)])
    n += lines
    valid += lines
  }
  for (let i = 0; i < 3; i++) add(before, 100 + i, 20)
  for (let i = 0; i < 5; i++) add(yesterday, 100 + i, 20)
  // More keys in one prefix than one ListObjectsV2 page holds (1,000).
  for (let i = 0; i < 1010; i++) add(today, 1000 + i, 2)
  await eachLimit(objects, 16, async ([key, text]) => await putGz(s3, bucket, key, text))
  const token = 'eyJhbGciOiJIUzI1NiJ9.eyJvd25lcnNoaXAiOiJjaGFsbGVuZ2UifQ.c2lnbmF0dXJlLW9mLXRoZS10b2tlbg'
  await put(s3, bucket, `${p}ownership-challenge-5f3a9c.txt`, token)
  // A job with output_type csv, and an object damaged in the middle of its deflate stream.
  await putGz(s3, bucket, logpushKey(p, today, 50, 'c5c5c5c5'), 'ClientIP,ClientRequestHost,EdgeResponseStatus\n192.0.2.1,example.com,200\n192.0.2.2,example.com,404\n')
  const good = gzipSync(batchText('http_requests', 200, 'unixnano', 9_000_000))
  for (let i = 200; i < 260; i++) good[i] = good[i]! ^ 0x5a
  await put(s3, bucket, logpushKey(p, today, 60, 'badbadba'), good)

  const namespace = `bucket${Date.now().toString(36)}`
  const service = await spawnService(t, {
    ...TEST_S3_KEYS,
    // Three days back, though the oldest objects are two days old: a UTC midnight between `today`
    // above and the service's start moved its first day past them (a flake audit). The day before
    // them has no object, so what is read is the same either side of midnight.
    CONFIG_FILE: await configFile([sourceConfig('http', bucket, url, { startLookbackDays: 3, concurrency: 8 })]),
    SINKS: 'elasticsearch', ELASTICSEARCH_URL: es, ELASTICSEARCH_NAMESPACE: namespace, LOG_LEVEL: 'info'
  })
  const started = Date.now()
  let s = await waitSettled(service, 'http', objects.length + 2)
  t.diagnostic(`${objects.length + 2} objects settled in ${Date.now() - started} ms`)
  assert.equal(s.objects.done, objects.length)
  assert.equal(s.objects.failed, 2)
  assert.deepEqual(s.failures.map((f: any) => f.code).sort(), ['LPR_ERR_PIPELINE_NOT_NDJSON', 'LPR_ERR_SOURCE_BAD_GZIP'])
  assert.equal(s.state, 'ok')

  // Late arrivals: a key sorting before every key already read today, and one into yesterday.
  const late: Array<[string, string]> = [
    [logpushKey(p, today, 1, '00000000'), batchText('http_requests', 7, 'unixnano', n)],
    [logpushKey(p, yesterday, 86_000, 'ffffffff'), batchText('http_requests', 9, 'unixnano', n + 7)]
  ]
  valid += 16
  for (const [key, text] of late) await putGz(s3, bucket, key, text)
  s = await waitSettled(service, 'http', objects.length + 4)
  assert.equal(s.objects.done, objects.length + 2)
  assert.equal(s.objects.failed, 2, 'the refused objects are not read again')

  await waitDrained(service.url, 180_000)
  assert.equal(await esCount(es, `logs-cloudflare.http_requests-${namespace}`), valid, 'every valid line once in Elasticsearch')

  const challenges = await (await fetch(`${service.url}/logpush/challenges`, { headers: { authorization: `Bearer ${service.token}` } })).json() as any
  assert.equal(challenges.challenges.length, 1, 'the challenge is shown once, not at every poll')
  assert.equal(challenges.challenges[0].token, token)
  assert.ok(!service.output().includes(token), 'the token is redacted in the log')
  assert.match(service.output(), /Ownership-challenge file in the bucket/)
  assert.match(service.output(), /LPR_ERR_SOURCE_BAD_GZIP/)

  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  assert.match(metrics, /lpr_source_objects_done_total\{source="http"\} 1020/)
  assert.match(metrics, /lpr_source_objects_failed_total\{source="http"\} 2/)
  assert.match(metrics, /lpr_source_up\{source="http"\} 1/)
  assert.ok(!service.output().includes(TEST_S3_KEYS.TEST_S3_SECRET), 'credentials never logged')
})

/**
 * A service with the sources `others` makes and a source "ok" reading a bucket of one object,
 * once "ok" has read it (undefined when the test is skipped for want of S3).
 */
async function beside(t: TestContext, hint: string, others: (bucket: string, url: string) => Array<Record<string, unknown>>, env: Record<string, string> = {}): Promise<ServiceProcess | undefined> {
  const url = requireS3(t)
  if (!url) return undefined
  const s3 = testS3Client(url)
  const bucket = await newBucket(s3, hint)
  await putGz(s3, bucket, logpushKey('logs/http_requests/', dayOf(Date.now()), 5), batchText('http_requests', 3))
  const service = await spawnService(t, { ...TEST_S3_KEYS, ...env, CONFIG_FILE: await configFile([...others(bucket, url), sourceConfig('ok', bucket, url)]), SINKS: 'discard' })
  const ok = await waitSettled(service, 'ok', 1, 60_000)
  assert.equal(ok.objects.done, 1)
  return service
}

test('a bucket that cannot be listed shows in /health per source, and the other source keeps going', { timeout: 120_000 }, async (t) => {
  const service = await beside(t, 'perm', (bucket, url) => [sourceConfig('missing', `no-such-${bucket}`, url)])
  if (!service) return
  let missing: any
  for (let i = 0; i < 100; i++) {
    missing = await sourceStatus(service, 'missing')
    if (missing?.lastError) break
    await sleep(100)
  }
  assert.equal(missing.state, 'failing')
  assert.equal(missing.lastError.code, 'LPR_ERR_SOURCE_UNAVAILABLE')
  assert.match(missing.lastError.message, /NoSuchBucket/)
  assert.match(await (await fetch(`${service.url}/metrics`)).text(), /lpr_source_up\{source="missing"\} 0/)
})

test('a bucket source whose progress record cannot be read stops alone: /health shows it stopped, lpr_source_up 0, the other reads on', { timeout: 120_000 }, async (t) => {
  // The bug (#21 item 4): one source whose init failed made every source fail; /health showed
  // "sources":{} and no lpr_source_up series existed, so LogpushReceiverSourceDown could never fire.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-bucket-alone-'))
  // A progress record that cannot be read (EISDIR here; EIO on a failing disk).
  await mkdir(join(dataDir, 'sources', 'broken', 'progress.log'), { recursive: true })
  const service = await beside(t, 'alone', (bucket, url) => [sourceConfig('broken', bucket, url)], { DATA_DIR: dataDir })
  if (!service) return
  const broken = await sourceStatus(service, 'broken')
  assert.equal(broken.state, 'stopped')
  assert.equal(broken.lastError.code, 'LPR_ERR_SOURCE_STATE_UNREADABLE')
  const metrics = await (await fetch(`${service.url}/metrics`)).text()
  assert.match(metrics, /^lpr_source_up\{source="broken"\} 0$/m)
  assert.match(metrics, /^lpr_source_up\{source="ok"\} 1$/m)
})
