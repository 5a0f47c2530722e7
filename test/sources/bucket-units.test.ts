// The pieces of a bucket source that need no bucket: days and keys, the failure table, and the
// progress record on real files.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appendFile, mkdtemp, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { ProgressRecord, challengePrefix, classify, closesAt, dayOf, isChallenge, objectDigest } from '../../src/sources/bucket/index.js'
import { bareEtag, daysBetween } from '../../src/sources/bucket/keys.js'
import { SourceBadGzip } from '../../src/errors.js'

test('days, prefixes and the ownership-challenge file', () => {
  assert.equal(dayOf(Date.UTC(2026, 1, 28, 23, 59)), '20260228')
  assert.deepEqual(daysBetween('20260227', '20260301'), ['20260228', '20260301'])
  assert.deepEqual(daysBetween('20260301', '20260301'), [])
  // 24 hours after the day ended: yesterday stays open all of today.
  assert.equal(closesAt('20260228', 24), Date.UTC(2026, 2, 2))
  assert.equal(challengePrefix('logs/http/{DATE}/'), 'logs/http/ownership-challenge')
  assert.equal(challengePrefix('{DATE}/'), 'ownership-challenge')
  assert.equal(challengePrefix('logs/http-{DATE}/'), 'logs/ownership-challenge')
  for (const k of ['ownership-challenge.txt', 'a/b/ownership-challenge-1f2e3d.txt', 'logs/20260101/ownership-challenge.txt']) assert.ok(isChallenge(k), k)
  for (const k of ['logs/20260101/20260101T000000Z_20260101T000030Z_abc.log.gz', 'ownership-challenge.txt.gz', 'x-ownership-challenge.txt']) assert.ok(!isChallenge(k), k)
  assert.equal(bareEtag('"9b2cf535f27731c974343645a3985328"'), '9b2cf535f27731c974343645a3985328')
  assert.equal(bareEtag('9b2c-3'), '9b2c-3')
  assert.notEqual(objectDigest('b', 'k', 'e1'), objectDigest('b', 'k', 'e2'), 'a rewritten object (new ETag) is a new object')
  assert.match(objectDigest('b', 'k', 'e'), /^[A-Za-z0-9_-]+$/, 'fits the spool segment name')
})

test('failures: throttling backs off, permissions show, bad objects are not retried', () => {
  const cases: Array<[unknown, Partial<ReturnType<typeof classify>>]> = [
    [{ name: 'SlowDown', $metadata: { httpStatusCode: 503 }, message: 'Please reduce your request rate.' }, { code: 'LPR_ERR_SOURCE_THROTTLED', throttled: true, permanent: false }],
    [{ name: 'Unknown', $metadata: { httpStatusCode: 429 } }, { throttled: true }],
    [{ name: 'AccessDenied', $metadata: { httpStatusCode: 403 }, message: 'Access Denied' }, { code: 'LPR_ERR_SOURCE_ACCESS_DENIED', permission: true, permanent: false }],
    [{ name: 'InvalidAccessKeyId', $metadata: { httpStatusCode: 403 } }, { permission: true }],
    [{ name: 'NoSuchBucket', $metadata: { httpStatusCode: 404 }, message: 'The specified bucket does not exist' }, { code: 'LPR_ERR_SOURCE_UNAVAILABLE', permanent: false, permission: false }],
    [Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' }), { code: 'LPR_ERR_SOURCE_UNAVAILABLE', permanent: false }],
    [new SourceBadGzip('incorrect header check'), { code: 'LPR_ERR_SOURCE_BAD_GZIP', permanent: true }],
    [{ code: 'LPR_ERR_PIPELINE_NOT_NDJSON', message: 'csv' }, { permanent: true }]
  ]
  for (const [err, want] of cases) {
    const got = classify(err, 'read s3://b/k')
    for (const [k, v] of Object.entries(want)) assert.equal(got[k as keyof typeof got], v, `${JSON.stringify(err)} ${k}`)
  }
})

test('progress record: survives a torn last line, prunes closed days, starts fresh for another bucket', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-progress-'))
  const a = new ProgressRecord(dir)
  await a.load('bucket', 'p/{DATE}/', '20260100')
  assert.ok(a.fresh)
  await a.mark('20260101', 'p/20260101/a.log.gz', { etag: 'e1', status: 'done', lastModified: 1, lines: 3 })
  await a.mark('20260102', 'p/20260102/b.log.gz', { etag: 'e2', status: 'failed', lastModified: 2, lines: 0, code: 'LPR_ERR_SOURCE_BAD_GZIP' })
  await a.closeFile()
  // kill -9 in the middle of an append.
  await appendFile(join(dir, 'progress.log'), '{"d":"20260102","k":"p/2026')

  const b = new ProgressRecord(dir)
  await b.load('bucket', 'p/{DATE}/', '20251231')
  assert.ok(!b.fresh)
  assert.equal(b.closedThrough, '20260100')
  assert.equal(b.get('20260101', 'p/20260101/a.log.gz')?.etag, 'e1')
  assert.equal(b.get('20260102', 'p/20260102/b.log.gz')?.code, 'LPR_ERR_SOURCE_BAD_GZIP')
  await b.close('20260101')
  assert.equal(b.size(), 1)
  assert.equal(b.get('20260101', 'p/20260101/a.log.gz'), undefined)
  await b.closeFile()
  const text = await readFile(join(dir, 'progress.log'), 'utf8')
  assert.ok(!text.includes('a.log.gz'), 'the closed day is gone from the file')

  const c = new ProgressRecord(dir)
  await c.load('other-bucket', 'p/{DATE}/', '20260300')
  assert.ok(c.fresh)
  assert.equal(c.size(), 0)
  await c.closeFile()
})
