/**
 * An Amazon OpenSearch Service endpoint as far as signing goes: every request must carry an AWS
 * Signature Version 4 that the AWS SDK's own signer (@smithy/signature-v4) computes again, from
 * the secret of the access key named in it, over the headers it says it signed and a body whose
 * SHA-256 is the one it signed. A request that passes goes to a real OpenSearch node; any other
 * is refused 403 with the message Amazon's endpoint gives, and never forwarded.
 */
import { createHash, createHmac } from 'node:crypto'
import { createServer, request as httpRequest, type IncomingMessage, type Server } from 'node:http'
import { SignatureV4 } from '@smithy/signature-v4'

type SourceData = string | ArrayBuffer | ArrayBufferView

function bytes (d: SourceData): string | Buffer {
  if (typeof d === 'string') return d
  return ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d)
}

/** @smithy's hash interface over node:crypto (what @smithy/hash-node does). */
class Sha256 {
  private readonly h
  constructor (secret?: SourceData) {
    this.h = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret))
  }

  update (data: SourceData): void { this.h.update(bytes(data)) }
  async digest (): Promise<Uint8Array> { return new Uint8Array(this.h.digest()) }
}

export interface SigV4Proxy {
  readonly url: string
  /** Requests refused, and requests forwarded, so far. */
  readonly counts: { refused: number, forwarded: number }
  close(): Promise<void>
}

const AUTH = /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$/

export async function startSigV4Proxy (upstream: string, keys: ReadonlyMap<string, string>, region: string, service: string): Promise<SigV4Proxy> {
  const counts = { refused: 0, forwarded: 0 }
  const target = new URL(upstream)
  const refuse = (res: import('node:http').ServerResponse, message: string): void => {
    counts.refused++
    res.writeHead(403, { 'content-type': 'application/json' }).end(JSON.stringify({ message }))
  }
  const server: Server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req)
      const why = await verify(req, body, keys, region, service)
      if (why) { refuse(res, why); return }
      counts.forwarded++
      const headers = { ...req.headers, host: target.host }
      const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers)
        upRes.pipe(res)
      })
      up.on('error', () => { res.destroy() })
      up.end(body)
    })().catch(() => res.destroy())
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const address = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${address.port}`,
    counts,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()) })
  }
}

async function readBody (req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const c of req) chunks.push(c as Buffer)
  return Buffer.concat(chunks)
}

/** Why the request is refused, or undefined when its signature is right. */
async function verify (req: IncomingMessage, body: Buffer, keys: ReadonlyMap<string, string>, region: string, service: string): Promise<string | undefined> {
  const m = AUTH.exec(String(req.headers.authorization ?? ''))
  if (!m) return 'Authorization header requires \'Credential\', \'SignedHeaders\' and \'Signature\' (AWS Signature Version 4).'
  const [, accessKeyId, day, reqRegion, reqService, signedHeaders, signature] = m as unknown as string[]
  const secretAccessKey = keys.get(accessKeyId!)
  if (secretAccessKey === undefined) return 'The security token included in the request is invalid.'
  if (reqRegion !== region || reqService !== service) return `Credential should be scoped to a valid region and service: ${region}/${service}.`
  const amzDate = String(req.headers['x-amz-date'] ?? '')
  if (!amzDate.startsWith(day!)) return 'Date in Credential scope does not match X-Amz-Date.'
  const bodyHash = createHash('sha256').update(body).digest('hex')
  if (req.headers['x-amz-content-sha256'] !== undefined && req.headers['x-amz-content-sha256'] !== bodyHash) return 'The provided x-amz-content-sha256 header does not match what was computed.'
  const url = new URL(req.url ?? '/', 'http://localhost')
  const query: Record<string, string | string[]> = {}
  for (const [k, v] of url.searchParams) {
    const prev = query[k]
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v]
  }
  const headers: Record<string, string> = {}
  for (const name of signedHeaders!.split(';')) headers[name] = String(req.headers[name] ?? '')
  const signer = new SignatureV4({ credentials: { accessKeyId: accessKeyId!, secretAccessKey, ...(req.headers['x-amz-security-token'] ? { sessionToken: String(req.headers['x-amz-security-token']) } : {}) }, region, service, sha256: Sha256 })
  const [host, port] = String(req.headers.host ?? '').split(':')
  const signed = await signer.sign({
    method: req.method ?? 'GET', protocol: 'http:', hostname: host!, ...(port ? { port: Number(port) } : {}),
    path: decodeURIComponent(url.pathname), query, headers, body: bodyHash.length > 0 ? body : undefined
  }, { signingDate: parseAmzDate(amzDate), signableHeaders: new Set(signedHeaders!.split(';')) })
  const want = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization))?.[1]
  return want === signature ? undefined : 'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.'
}

function parseAmzDate (s: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s)
  if (!m) return new Date(NaN)
  return new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])))
}
