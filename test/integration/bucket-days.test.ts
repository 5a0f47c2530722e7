// A bucket source over 60 simulated days, with a clock the test drives and a real S3-compatible
// server: late objects (a key that sorts before ones already read, an object landing in
// yesterday's prefix after midnight) are read, each object once, and the progress record and the
// heap stay the size of the open days. The bug this pins: a record keyed by every object ever
// seen grows for as long as the service runs (elastic/beats#39052), and a start-after cursor
// skips late keys.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, stat } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import v8 from 'node:v8'
import vm from 'node:vm'
import { Spool, type SpoolBatch } from '../../src/spool/index.js'
import { Stats, createLogger } from '../../src/observability/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { BucketSource, addDays, createBucketClient, dayOf, ingestObject } from '../../src/sources/bucket/index.js'
import { batchText } from '../helpers/fixtures.js'
import { TEST_S3_KEYS, logpushKey, newBucket, putGz, requireS3, testS3Client } from '../helpers/s3.js'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc') as () => void
const DAY = 86_400_000

test('60 simulated days: late arrivals read once, progress record and heap bounded', { timeout: 300_000 }, async (t) => {
  const url = requireS3(t)
  if (!url) return
  const s3 = testS3Client(url)
  const bucket = await newBucket(s3, 'days')
  const dir = await mkdtemp(join(tmpdir(), 'lpr-days-'))
  const log = createLogger('silent')
  const spool = new Spool({ dir: join(dir, 'spool'), highWatermarkBytes: 1e12, lowWatermarkBytes: 1e11, minFreeBytes: 0, dedupeSeconds: 86_400, log })
  await spool.init()
  const datasets = loadDatasets(schemasDir)
  const dataset = datasets.get('http_requests')!
  const stats = new Stats(datasets.keys(), 10)
  let committedLines = 0
  const commit = async (batch: SpoolBatch, digest: string): Promise<{ stored: boolean }> => {
    await batch.seal()
    const outcome = await batch.commit(digest)
    if (!outcome.duplicate) committedLines += batch.lines
    return { stored: !outcome.duplicate }
  }
  let clock = Date.UTC(2026, 0, 1, 12)
  const config = {
    name: 'days', bucket, prefix: 'cf/http/{DATE}/', dataset: 'http_requests', endpoint: url, region: 'us-east-1', forcePathStyle: true,
    accessKeyIdEnv: 'TEST_S3_KEY_ID', secretAccessKeyEnv: 'TEST_S3_SECRET',
    pollSeconds: 1, startLookbackDays: 0, closeAfterHours: 24, concurrency: 4, maxAttempts: 3
  }
  const source = new BucketSource({
    config,
    client: createBucketClient(config, { ...process.env, ...TEST_S3_KEYS }),
    dir: join(dir, 'sources', 'days'),
    ingest: (body, digest, label) => ingestObject({ spool, stats, pool: null, maxLineBytes: 1 << 20, maxInflatedBytes: 1 << 30, driftFieldsMax: 10, driftFieldNameMaxChars: 128, maxLineDepth: 32, lineBudget: null, commit }, dataset, body, digest, label),
    onChallenge: () => {},
    log,
    now: () => clock
  })
  await source.init()
  t.after(() => source.stop())

  let written = 0
  let n = 0
  const object = async (day: string, seq: number): Promise<void> => {
    await putGz(s3, bucket, logpushKey('cf/http/', day, seq), batchText('http_requests', 5, 'unixnano', n++ * 5))
    written += 5
  }
  const rows: number[] = []
  const heap: number[] = []
  for (let d = 0; d < 60; d++) {
    const today = dayOf(clock)
    const yesterday = addDays(today, -1)
    // Read at noon: this morning's object, and two that reached yesterday's prefix after
    // yesterday's noon poll had read its morning object: one whose key sorts before it (a slow
    // upload), one near midnight.
    // (On the first day, yesterday is before the look-back: not read, so not written.)
    await Promise.all([object(today, 3600 * 9), ...(d > 0 ? [object(yesterday, 3600 * 1), object(yesterday, 3600 * 23)] : [])])
    await source.pollOnce()
    rows.push(source.recordSize().rows)
    if (d === 10 || d === 59) { gc(); heap.push(process.memoryUsage().heapUsed) }
    clock += DAY
  }
  // Let the last days close.
  clock += 3 * DAY
  await source.pollOnce()

  const size = source.recordSize()
  const file = await stat(join(dir, 'sources', 'days', 'progress.log'))
  t.diagnostic(`${written / 5} objects over 60 days; most progress rows at any time ${Math.max(...rows)}; after the last days closed: ${size.rows} rows, ${file.size} bytes; heap at day 10 ${(heap[0]! / 1e6).toFixed(1)} MB, day 60 ${(heap[1]! / 1e6).toFixed(1)} MB`)
  assert.equal(committedLines, written, 'every line of every object, late ones included, stored exactly once')
  assert.equal(source.done, written / 5)
  assert.equal(source.failed, 0)
  assert.ok(Math.max(...rows) <= 6, `the record holds at most two open days of rows (${Math.max(...rows)})`)
  assert.equal(size.rows, 0)
  assert.equal(size.closedThrough, addDays(dayOf(clock), -2))
  assert.ok(file.size < 1024, 'pruned rows are gone from the file too')
  assert.ok(heap[1]! - heap[0]! < 8e6, `heap grew by ${((heap[1]! - heap[0]!) / 1e6).toFixed(1)} MB over 50 days`)
})
