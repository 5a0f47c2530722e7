// The one place a request body is inflated. Wire and inflated bytes are both counted here,
// because the body goes to our own stream consumer and never through fastify's bodyLimit.
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { createHash } from 'node:crypto'
import {
  IntakeBadGzip, IntakeBodyTooLarge, IntakeInflatedTooLarge, IntakeUnsupportedEncoding
} from '../errors.js'

export interface DecodeLimits {
  readonly maxBodyBytes: number
  readonly maxInflatedBytes: number
  /** How much of the inflated head to keep for recognising validation uploads and challenges. */
  readonly headBytes: number
}

export interface BodyMeter {
  readonly wireBytes: number
  readonly inflatedBytes: number
  readonly gzip: boolean
  /** The first headBytes + 1 inflated bytes: one more than a small body may have, so "small" is decidable. */
  readonly head: Buffer
  /** SHA-256 of the body as received (base64url): a byte-identical re-send has the same. */
  digest(): string
}

class Meter extends Transform {
  count = 0
  constructor (private readonly limit: number, private readonly tooLarge: () => Error, private readonly keep: (chunk: Buffer) => void) {
    super()
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length
    if (this.count > this.limit) return cb(this.tooLarge())
    this.keep(chunk)
    cb(null, chunk)
  }
}

const GZIP_MAGIC_0 = 0x1f
const GZIP_MAGIC_1 = 0x8b

export function parseEncoding(header: string | undefined): 'gzip' | 'identity' {
  const value = (header ?? '').trim().toLowerCase()
  if (value === 'gzip' || value === 'x-gzip') return 'gzip'
  if (value === '' || value === 'identity') return 'identity'
  // The header is the sender's: echoed only cut short.
  throw new IntakeUnsupportedEncoding(value.length > 64 ? `${value.slice(0, 64)}…` : value)
}

/** Reads until two bytes are known (or the body ends) and puts them back. */
async function peekTwo(raw: Readable): Promise<Buffer> {
  const seen: Buffer[] = []
  let length = 0
  for await (const chunk of raw.iterator({ destroyOnReturn: false })) {
    seen.push(chunk as Buffer)
    length += (chunk as Buffer).length
    if (length >= 2) break
  }
  const head = Buffer.concat(seen)
  if (head.length > 0) raw.unshift(head)
  return head
}

/**
 * Turns the raw request body into inflated bytes. Logpush always gzips, but a Cloudflare proxy in
 * front of us may already have inflated the body while leaving the header, or dropped the header
 * while leaving gzip: the magic bytes decide, the header only adds.
 */
export async function decodeBody(
  raw: Readable,
  contentEncoding: string | undefined,
  limits: DecodeLimits
): Promise<{ streams: Transform[], meter: BodyMeter }> {
  const declared = parseEncoding(contentEncoding)
  const head = await peekTwo(raw)
  const gzip = head.length >= 2 && head[0] === GZIP_MAGIC_0 && head[1] === GZIP_MAGIC_1
  void declared // declared gzip without the magic bytes was inflated on the way: read it as it is

  const headParts: Buffer[] = []
  let headLength = 0
  // The re-send digest is taken over the body as it came, not inflated: a re-send is the same
  // upload byte for byte, and hashing the compressed bytes costs a tenth (SHA-256 of the inflated
  // body was ~15% of the CPU per line in the benchmark).
  const hash = createHash('sha256')
  const wire = new Meter(limits.maxBodyBytes, () => new IntakeBodyTooLarge(limits.maxBodyBytes), (chunk) => { hash.update(chunk) })
  const inflated = new Meter(limits.maxInflatedBytes, () => new IntakeInflatedTooLarge(limits.maxInflatedBytes), (chunk) => {
    if (headLength <= limits.headBytes) {
      const part = chunk.subarray(0, limits.headBytes + 1 - headLength)
      headParts.push(Buffer.from(part))
      headLength += part.length
    }
  })
  const meter: BodyMeter = {
    get wireBytes () { return wire.count },
    get inflatedBytes () { return inflated.count },
    gzip,
    get head () { return Buffer.concat(headParts) },
    digest: () => hash.digest('base64url')
  }
  const streams: Transform[] = gzip ? [wire, createGunzip({ chunkSize: 64 * 1024 }), inflated] : [wire, inflated]
  return { streams, meter }
}

/** zlib's own failures (Z_DATA_ERROR, Z_BUF_ERROR on a truncated body) mean the body is damaged. */
export function asDecodeError(err: unknown): unknown {
  const code = (err as { code?: unknown })?.code
  if (typeof code === 'string' && code.startsWith('Z_')) return new IntakeBadGzip((err as Error).message)
  return err
}
