/**
 * What the Cloudflare API double does TO a destination: the validation upload and the ownership
 * challenge, really delivered, so a test sees what Cloudflare would send its receiver or bucket.
 *
 *   [VALIDATE] Job create, every PUT and `POST …/logpush/validate/destination` upload a gzipped
 *              `{"content":"tests"}` (a `test.txt.gz`) to an HTTP destination, with every
 *              `header_<Name>=<value>` of destination_conf sent as a header; a non-2xx answer makes
 *              the job call fail with "error validating destination: error writing object: error
 *              uploading". Sources: CF docs src/content/docs/logs/logpush/logpush-job/enable-destinations/http.mdx
 *              (and cloudflare/cloudflare-docs#8865 that added it); re-validation on every PUT:
 *              cloudflare/terraform-provider-cloudflare#7044 (`400 … {"code":1002,"message":"error
 *              validating destination: error writing object: DNSError"}`).
 *   [OWNER]    `POST …/logpush/ownership` writes a challenge file to the destination and answers
 *              `{filename, message, valid}`; the token is a JWT whose claims are the object type and
 *              id, the full destination_conf, a fingerprint of bucket and path, and a 7-day expiry,
 *              all checked against the job request. Sources: CF docs
 *              src/content/docs/logs/logpush/logpush-job/logpush-ownership-challenge.mdx,
 *              src/content/docs/logs/logpush/examples/example-logpush-curl.mdx, api-configuration.mdx;
 *              file names `ownership-challenge-<32 hex>.txt`: cloudflare/cloudflare-typescript
 *              tests/api-resources/pcaps/ownership.test.ts. A wrong token: HTTP 400, 1002 "incorrect
 *              ownership challenge" (cloudflare/terraform-provider-cloudflare#1019).
 *   [HTTPS]    For an https:// destination what `…/ownership` does is undocumented; by analogy with
 *              Sumo Logic (an HTTP POST destination whose challenge "arrives as a log event") the
 *              double POSTs the token, gzipped, with the header_* headers.
 *
 * Test-only deviations, each needed to stay on loopback:
 *   - `http://` destinations on 127.0.0.1/localhost are accepted (Cloudflare requires https with a
 *     publicly trusted certificate); for https the double trusts `double.destinationCa` too.
 *   - An `s3://` destination without `endpoint=` (AWS) is written to `double.awsS3` (S3Mock stands
 *     in for AWS S3); with `endpoint=` to that endpoint, with the conf's keys or awsS3's.
 */
import { createHmac, randomBytes, createHash } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { gzipSync } from 'node:zlib'
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3'
import type { CloudflareDouble } from './server.js'

/** Where the double writes s3:// challenge files when the conf names no endpoint (tests: S3Mock). */
export interface DoubleS3 { readonly endpoint: string, readonly accessKeyId: string, readonly secretAccessKey: string }

export interface DestinationSettings {
  /** PEM of a CA the double trusts for https destinations (a test's self-signed certificate). */
  destinationCa: string | undefined
  awsS3: DoubleS3 | undefined
  /** Secret the double signs ownership tokens with. */
  readonly signingKey: Buffer
  /** What the double delivered, in order (tests read it). */
  readonly deliveries: Array<{ kind: 'validation' | 'challenge', destination: string, status: number | string }>
}

export function destinationSettings(double: CloudflareDouble): DestinationSettings {
  return double.area<DestinationSettings>('destinations', () => ({ destinationCa: undefined, awsS3: undefined, signingKey: randomBytes(32), deliveries: [] }))
}

const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]'])

/** The URL to POST to and the headers destination_conf asks for (header_* params become headers and leave the query). */
function httpTarget(conf: string): { url: URL, headers: Record<string, string> } | null {
  let url: URL
  try { url = new URL(conf) } catch { return null }
  if (url.protocol !== 'https:' && !(url.protocol === 'http:' && LOOPBACK.has(url.hostname))) return null
  const headers: Record<string, string> = {}
  for (const [k, v] of [...url.searchParams]) {
    if (k.startsWith('header_')) {
      headers[k.slice('header_'.length)] = v
      url.searchParams.delete(k)
    }
  }
  return { url, headers }
}

function post(double: CloudflareDouble, target: { url: URL, headers: Record<string, string> }, body: Buffer): Promise<number | string> {
  const send = target.url.protocol === 'https:' ? httpsRequest : httpRequest
  const ca = destinationSettings(double).destinationCa
  return new Promise((resolve) => {
    const req = send(target.url, {
      method: 'POST',
      headers: { ...target.headers, 'content-encoding': 'gzip', 'content-type': 'text/plain; charset=utf-8', 'content-length': String(body.length) },
      ...(target.url.protocol === 'https:' && ca ? { ca } : {}),
      timeout: 10_000
    }, (res) => {
      res.resume()
      res.on('end', () => resolve(res.statusCode ?? 0))
    })
    // Cloudflare names transport failures by kind (DNSError, Timeout, ...): keep the kind.
    req.on('timeout', () => req.destroy(Object.assign(new Error('Timeout'), { code: 'Timeout' })))
    req.on('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message))
    req.end(body)
  })
}

export type Validation = { valid: true } | { valid: false, message: string }

/** [VALIDATE] The validation upload. Destinations other than HTTP(S) are not uploaded to by the double: valid. */
export async function validateDestination(double: CloudflareDouble, conf: string): Promise<Validation> {
  const scheme = conf.slice(0, conf.indexOf(':'))
  if (scheme !== 'https' && scheme !== 'http') return { valid: true }
  const target = httpTarget(conf)
  if (!target) return { valid: false, message: 'error validating destination: error writing object: error uploading' }
  const status = await post(double, target, gzipSync('{"content":"tests"}'))
  destinationSettings(double).deliveries.push({ kind: 'validation', destination: target.url.origin + target.url.pathname, status })
  if (typeof status === 'number' && status >= 200 && status < 300) return { valid: true }
  if (status === 'ENOTFOUND' || status === 'EAI_AGAIN') return { valid: false, message: 'error validating destination: error writing object: DNSError' }
  return { valid: false, message: 'error validating destination: error writing object: error uploading' }
}

/** [OWNER] Which destinations need an ownership challenge (the table of logpush-ownership-challenge.mdx). */
export function needsOwnership(conf: string): boolean {
  const scheme = conf.slice(0, conf.indexOf(':'))
  if (scheme === 's3') return !/[?&]endpoint=/.test(conf)
  return scheme === 'gs' || scheme === 'azure' || scheme === 'sumo'
}

const b64 = (v: unknown): string => Buffer.from(JSON.stringify(v)).toString('base64url')

/** Bucket and path of an object-store conf, for the fingerprint claim and where the file goes. */
function bucketPath(conf: string): { bucket: string, path: string } {
  const rest = conf.slice(conf.indexOf('://') + 3).split('?')[0]!
  const slash = rest.indexOf('/')
  return slash < 0 ? { bucket: rest, path: '' } : { bucket: rest.slice(0, slash), path: rest.slice(slash + 1) }
}

export function issueToken(double: CloudflareDouble, scope: { kind: 'zones' | 'accounts', id: string }, conf: string): string {
  const { bucket, path } = bucketPath(conf)
  const claims = {
    object_type: scope.kind === 'zones' ? 'zone' : 'account',
    object_id: scope.id,
    destination_conf: conf,
    fingerprint: createHash('sha256').update(`${bucket}/${path}`).digest('hex'),
    exp: Math.floor(double.now() / 1000) + 7 * 86_400
  }
  const unsigned = `${b64({ alg: 'HS256', typ: 'JWT' })}.${b64(claims)}`
  const sig = createHmac('sha256', destinationSettings(double).signingKey).update(unsigned).digest('base64url')
  return `${unsigned}.${sig}`
}

/** Every claim must match the request, the destination_conf byte for byte (terraform-provider-cloudflare#1019). */
export function tokenMatches(double: CloudflareDouble, token: string, scope: { kind: 'zones' | 'accounts', id: string }, conf: string): boolean {
  const parts = token.split('.')
  if (parts.length !== 3) return false
  const sig = createHmac('sha256', destinationSettings(double).signingKey).update(`${parts[0]}.${parts[1]}`).digest('base64url')
  if (sig !== parts[2]) return false
  let claims: Record<string, unknown>
  try { claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<string, unknown> } catch { return false }
  return claims.object_type === (scope.kind === 'zones' ? 'zone' : 'account') && claims.object_id === scope.id &&
    claims.destination_conf === conf && typeof claims.exp === 'number' && claims.exp * 1000 > double.now()
}

/** [OWNER] Writes the challenge to the destination; the file name, or why it could not be written. */
export async function deliverChallenge(double: CloudflareDouble, conf: string, token: string): Promise<{ filename: string } | { error: string }> {
  const name = `ownership-challenge-${randomBytes(16).toString('hex')}.txt`
  const scheme = conf.slice(0, conf.indexOf(':'))
  const settings = destinationSettings(double)
  if (scheme === 's3') {
    const { bucket, path } = bucketPath(conf)
    const params = new URLSearchParams(conf.includes('?') ? conf.slice(conf.indexOf('?') + 1) : '')
    const endpoint = params.get('endpoint') ?? settings.awsS3?.endpoint
    if (!endpoint) return { error: 's3 destination unreachable from the double (set double awsS3)' }
    // The file goes in the destination path (the folder before a {DATE} part, the way
    // src/sources/bucket/keys.ts challengePrefix reads it), e.g. logs/ownership-challenge-<hex>.txt.
    const dir = path.includes('{DATE}')
      ? path.slice(0, path.indexOf('{DATE}')).replace(/[^/]*$/, '')
      : (path === '' ? '' : path.replace(/\/?$/, '/'))
    const key = dir + name
    const client = new S3Client({
      endpoint: /^https?:\/\//.test(endpoint) ? endpoint : `https://${endpoint}`,
      region: params.get('region') ?? 'us-east-1',
      forcePathStyle: true,
      credentials: {
        accessKeyId: params.get('access-key-id') ?? settings.awsS3?.accessKeyId ?? '',
        secretAccessKey: params.get('secret-access-key') ?? settings.awsS3?.secretAccessKey ?? ''
      },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED'
    })
    try {
      // aws-s3.mdx: Logpush writes with ACL bucket-owner-full-control (S3Mock ignores ACLs).
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: token, ContentType: 'text/plain' }))
      settings.deliveries.push({ kind: 'challenge', destination: `s3://${bucket}/${key}`, status: 200 })
    } catch (err) {
      settings.deliveries.push({ kind: 'challenge', destination: `s3://${bucket}/${key}`, status: (err as Error).name })
      return { error: `error writing object: ${(err as Error).name}` }
    } finally {
      client.destroy()
    }
    return { filename: key }
  }
  const target = httpTarget(conf)
  if (target) {
    // [HTTPS] sent like a log upload: gzipped, with the job's headers.
    const status = await post(double, target, gzipSync(token))
    settings.deliveries.push({ kind: 'challenge', destination: target.url.origin + target.url.pathname, status })
    if (typeof status !== 'number' || status < 200 || status >= 300) return { error: 'error writing object: error uploading' }
    return { filename: name }
  }
  return { error: `the double cannot deliver to ${scheme}:// destinations` }
}
