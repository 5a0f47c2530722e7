// The ownership challenge, done for the user: Cloudflare writes a token to the destination
// (POST …/logpush/ownership answers the file's name), and the job request must carry it back
// (research §3; CF docs logpush-ownership-challenge.mdx, example-logpush-curl.mdx). We read it
// where this service can see it: the bucket a bucket source of ours reads, or what the HTTP
// intake kept of a challenge body (GET /logpush/challenges).
import type { Readable } from 'node:stream'
import { setTimeout as sleep } from 'node:timers/promises'
import type Cloudflare from 'cloudflare'
import type { BucketSourceConfig } from '../config/index.js'
import { parseS3Conf, UsageError, type Scope } from './job-request.js'

/** Longest a challenge file or body we read may be: a JWT is a few hundred bytes. */
const MAX_CHALLENGE_BYTES = 64 * 1024

export interface OwnershipOptions {
  readonly client: Cloudflare
  readonly scope: Scope
  readonly conf: string
  readonly sources: readonly BucketSourceConfig[]
  /** Where the CLI reaches the service (PUBLIC_URL or --service-url), and a token it accepts. */
  readonly serviceUrl: string
  readonly serviceToken: string | undefined
  readonly env: NodeJS.ProcessEnv
  /** How long to wait for the token to show up, ms. */
  readonly timeoutMs: number
  readonly pollMs?: number
}

/** The bucket source of this service that reads the bucket an s3:// conf writes to, if any. */
export function sourceFor(conf: string, sources: readonly BucketSourceConfig[]): BucketSourceConfig | undefined {
  const { bucket, params } = parseS3Conf(conf)
  const endpoint = params.get('endpoint')
  const norm = (u: string): string => u.replace(/^https?:\/\//, '').replace(/\/+$/, '')
  return sources.find((s) => s.bucket === bucket && (endpoint === null || (s.endpoint !== undefined && norm(s.endpoint) === norm(endpoint))))
}

function idOf(scope: Scope): { zone_id: string } | { account_id: string } {
  return scope.kind === 'zones' ? { zone_id: scope.id } : { account_id: scope.id }
}

/** Where the token will be read, before anything is asked of Cloudflare (so a hopeless case costs no API call). */
export function challengeReader(conf: string, o: Pick<OwnershipOptions, 'sources' | 'serviceUrl'>): { kind: 's3', source: BucketSourceConfig } | { kind: 'service' } {
  const scheme = conf.slice(0, Math.max(0, conf.indexOf(':'))).toLowerCase()
  if (scheme === 's3') {
    const source = sourceFor(conf, o.sources)
    if (!source) {
      throw new UsageError(`${parseS3Conf(conf).bucket}: no bucket source in CONFIG_FILE reads this bucket, so the ownership-challenge file cannot be read for you; ` +
        'add the source (the same bucket, endpoint and keys), or read the file yourself and pass --ownership-challenge <token>')
    }
    return { kind: 's3', source }
  }
  if (scheme === 'https' || scheme === 'http') return { kind: 'service' }
  throw new UsageError(`${scheme}:// destinations need an ownership challenge this tool cannot read: request it (POST …/logpush/ownership), read the token from the destination, and pass --ownership-challenge <token>`)
}

async function readSmall(body: Readable): Promise<string> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const c of body) {
    size += (c as Buffer).length
    if (size > MAX_CHALLENGE_BYTES) { body.destroy(); throw new Error(`the challenge file is larger than ${MAX_CHALLENGE_BYTES} bytes`) }
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8').trim()
}

/** Requests the challenge and returns its token, read where Cloudflare delivered it. */
export async function obtainChallenge(o: OwnershipOptions): Promise<string> {
  const reader = challengeReader(o.conf, o)
  const pollMs = o.pollMs ?? 500
  const deadline = Date.now() + o.timeoutMs
  const before = reader.kind === 'service' ? new Set((await serviceChallenges(o)).map((c) => c.token)) : new Set<string>()
  const answer = await o.client.logpush.ownership.create({ destination_conf: o.conf, ...idOf(o.scope) })
  if (answer?.valid === false) throw new Error(`Cloudflare could not write the ownership challenge: ${answer.message ?? '(no message)'}`)
  const filename = answer?.filename ?? ''

  if (reader.kind === 's3') {
    const { bucket } = parseS3Conf(o.conf)
    // The name may carry the bucket in front of the key (example-logpush-curl.mdx: "burritobot/logs/ownership-challenge.txt").
    // Loaded here: the S3 client is heavy, and only this path needs it.
    const { createBucketClient, isChallenge } = await import('../sources/bucket/index.js')
    const keys = [filename, ...(filename.startsWith(bucket + '/') ? [filename.slice(bucket.length + 1)] : [])]
    if (!keys.every(isChallenge)) throw new Error(`Cloudflare named "${filename}" as the challenge file, which is not an ownership-challenge*.txt name; not reading it`)
    const bucketClient = createBucketClient(reader.source, o.env)
    try {
      for (;;) {
        for (const key of keys) {
          try {
            const text = await readSmall(await bucketClient.get(key, AbortSignal.timeout(30_000)))
            if (text !== '') return text
          } catch (err) {
            if (!/NoSuchKey|NotFound/.test((err as Error).name)) throw new Error(`reading s3://${bucket}/${key}: ${(err as Error).message}`)
          }
        }
        if (Date.now() > deadline) throw new Error(`s3://${bucket}/${filename} did not appear within ${o.timeoutMs / 1000} s`)
        await sleep(pollMs)
      }
    } finally {
      bucketClient.destroy()
    }
  }

  for (;;) {
    const fresh = (await serviceChallenges(o)).find((c) => !before.has(c.token))
    if (fresh) return fresh.token
    if (Date.now() > deadline) throw new Error(`no ownership-challenge token reached ${o.serviceUrl}/logpush/challenges within ${o.timeoutMs / 1000} s`)
    await sleep(pollMs)
  }
}

async function serviceChallenges(o: Pick<OwnershipOptions, 'serviceUrl' | 'serviceToken'>): Promise<Array<{ token: string }>> {
  if (o.serviceToken === undefined) throw new UsageError('reading GET /logpush/challenges needs a token the service accepts: set LOGPUSH_TOKENS or pass --token')
  const url = `${o.serviceUrl.replace(/\/+$/, '')}/logpush/challenges`
  const res = await fetch(url, { headers: { authorization: `Bearer ${o.serviceToken}` }, signal: AbortSignal.timeout(10_000) })
  if (!res.ok) throw new Error(`GET ${url} answered HTTP ${res.status}`)
  const body = await res.json() as { challenges?: Array<{ token?: unknown }> }
  return (body.challenges ?? []).filter((c): c is { token: string } => typeof c.token === 'string')
}
