// The S3 client of a source: @aws-sdk/client-s3 v3, which speaks SigV4 to AWS, R2 and every
// S3-compatible store, brings the standard credential chain, and retries throttling itself.
import type { Readable } from 'node:stream'
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3'
import type { BucketSourceConfig } from '../../config/index.js'

export interface ListedObject {
  readonly key: string
  readonly etag: string | undefined
  readonly lastModified: number
  readonly size: number
}

/** What a source needs of a bucket: one listing page, one object body. */
export interface BucketClient {
  list(prefix: string, continuationToken: string | undefined, signal: AbortSignal): Promise<{ objects: ListedObject[], next: string | undefined }>
  get(key: string, signal: AbortSignal): Promise<Readable>
  destroy(): void
}

export function createBucketClient(config: BucketSourceConfig, env: NodeJS.ProcessEnv = process.env): BucketClient {
  const keyId = config.accessKeyIdEnv ? env[config.accessKeyIdEnv] : undefined
  const secret = config.secretAccessKeyEnv ? env[config.secretAccessKeyEnv] : undefined
  const token = config.sessionTokenEnv ? env[config.sessionTokenEnv] : undefined
  const client = new S3Client({
    region: config.region,
    ...(config.endpoint ? { endpoint: config.endpoint } : {}),
    forcePathStyle: config.forcePathStyle,
    // Named variables when the source names them; otherwise the standard AWS chain. An unset
    // named variable is left to fail at the first request, shown in /health, not at start.
    ...(config.accessKeyIdEnv ? { credentials: { accessKeyId: keyId ?? '', secretAccessKey: secret ?? '', ...(token ? { sessionToken: token } : {}) } } : {}),
    // Since 3.729 the client adds CRC32 checksums to every request and checks them on answers;
    // R2 (and B2, OVH) refuse such requests with 501. Only when an operation requires them.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    maxAttempts: 3,
    // requestTimeout is the socket's idle time: a body we stop reading while the spool catches up
    // must not count as a dead connection too soon.
    requestHandler: { connectionTimeout: 10_000, requestTimeout: 300_000 }
  })
  return {
    async list(prefix, continuationToken, signal) {
      const out = await client.send(new ListObjectsV2Command({ Bucket: config.bucket, Prefix: prefix, ...(continuationToken ? { ContinuationToken: continuationToken } : {}) }), { abortSignal: signal })
      return {
        objects: (out.Contents ?? []).filter((o) => o.Key).map((o) => ({ key: o.Key!, etag: o.ETag, lastModified: o.LastModified?.getTime() ?? 0, size: o.Size ?? 0 })),
        next: out.IsTruncated ? out.NextContinuationToken : undefined
      }
    },
    async get(key, signal) {
      const out = await client.send(new GetObjectCommand({ Bucket: config.bucket, Key: key }), { abortSignal: signal })
      return out.Body as Readable
    },
    destroy() { client.destroy() }
  }
}
