// How test files reach the S3-compatible server (S3Mock) that test/support/run-tests.ts starts.
import type { TestContext } from 'node:test'
import { gzipSync } from 'node:zlib'
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3'

/** Any keys do for S3Mock; tests pass them to the service through these variables. */
export const TEST_S3_KEYS = { TEST_S3_KEY_ID: 'lpr-test-key', TEST_S3_SECRET: 'lpr-test-secret' }

export function s3Url(): string | undefined {
  return process.env.TEST_S3_URL?.trim().replace(/\/+$/, '') || undefined
}

/** The S3 server's URL, or a loud skip; in CI a missing server fails the test. */
export function requireS3(t: TestContext): string | undefined {
  const url = s3Url()
  if (url) return url
  if (process.env.CI === 'true') throw new Error('S3Mock is required in CI but TEST_S3_URL is not set (run through `npm test`)')
  const reason = 'SKIPPED: no S3-compatible server (TEST_S3_URL unset): `npm test` (the whole suite) starts S3Mock; for chosen files run `TEST_S3=managed node dist/test/support/run-tests.js <file>`'
  console.warn(`\n!!!!!!!! BUCKET TEST "${t.name}" ${reason} !!!!!!!!\n`)
  t.skip(reason)
  return undefined
}

export function testS3Client(url: string): S3Client {
  return new S3Client({
    endpoint: url,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: TEST_S3_KEYS.TEST_S3_KEY_ID, secretAccessKey: TEST_S3_KEYS.TEST_S3_SECRET },
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED'
  })
}

export async function newBucket(client: S3Client, hint: string): Promise<string> {
  const bucket = `${hint}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}`
  await client.send(new CreateBucketCommand({ Bucket: bucket }))
  return bucket
}

export async function put(client: S3Client, bucket: string, key: string, body: Buffer | string): Promise<void> {
  await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: typeof body === 'string' ? Buffer.from(body) : body }))
}

export async function putGz(client: S3Client, bucket: string, key: string, text: string): Promise<void> {
  await put(client, bucket, key, gzipSync(text))
}

/** Runs `fn` over `items` with at most `n` at a time. */
export async function eachLimit<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!)
  }))
}

/** A Logpush-like object key: <prefix><YYYYMMDD>/<start>_<end>_<hex>.log.gz */
export function logpushKey(prefix: string, day: string, seq: number, hex = Math.random().toString(16).slice(2, 10)): string {
  const hh = String(Math.floor(seq / 3600) % 24).padStart(2, '0')
  const mm = String(Math.floor(seq / 60) % 60).padStart(2, '0')
  const ss = String(seq % 60).padStart(2, '0')
  return `${prefix}${day}/${day}T${hh}${mm}${ss}Z_${day}T${hh}${mm}${ss}Z_${hex}.log.gz`
}
