// One bucket object into the spool through the same path as a pushed batch: gunzip → split →
// validate → spool batch (pipeline's ingest, on the parse workers when there are some), then the
// same commit the HTTP intake uses. The body is a stream from the bucket: read as fast as the
// batch file takes it, never whole in memory.
import { createHash } from 'node:crypto'
import { Transform, type Readable, type TransformCallback } from 'node:stream'
import { createGunzip } from 'node:zlib'
import { PipelineNotNdjson, SourceBadGzip, SourceInflatedTooLarge } from '../../errors.js'
import { ingest, type Dataset, type LineBudget, type ParsePool } from '../../pipeline/index.js'
import type { Spool, SpoolBatch } from '../../spool/index.js'
import { DatasetStats, type Stats } from '../../observability/index.js'

export interface ObjectIngestOptions {
  readonly spool: Spool
  readonly stats: Stats
  readonly pool: ParsePool | null
  readonly maxLineBytes: number
  readonly maxInflatedBytes: number
  readonly driftFieldsMax: number
  readonly driftFieldNameMaxChars: number
  /** MAX_LINE_DEPTH, as for pushed batches. */
  readonly maxLineDepth: number
  /** The budget for unfinished lines that the HTTP intake shares: a bucket read is no exception. */
  readonly lineBudget: LineBudget | null
  /** Makes a batch durable (dead letters, then the spool segment), as for an HTTP batch. */
  readonly commit: (batch: SpoolBatch, digest: string) => Promise<{ stored: boolean }>
}

export type ObjectOutcome =
  | { readonly kind: 'stored', readonly lines: number, readonly accepted: number, readonly rejected: number, readonly inflatedBytes: number }
  /** Stored before (a crash after the spool commit, before the progress mark): nothing stored again. */
  | { readonly kind: 'duplicate' }
  | { readonly kind: 'empty' }

/**
 * The spool's re-send digest of an object: its identity, not its bytes, so the object is known
 * before a byte is read, and the same object listed again after a crash is recognised.
 */
export function objectDigest(bucket: string, key: string, etag: string): string {
  return 's3' + createHash('sha256').update(bucket).update('\0').update(key).update('\0').update(etag).digest('base64url')
}

class InflatedMeter extends Transform {
  count = 0
  constructor (private readonly limit: number) { super() }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.count += chunk.length
    if (this.count > this.limit) return cb(new SourceInflatedTooLarge(this.limit))
    cb(null, chunk)
  }
}

export async function ingestObject(
  opts: ObjectIngestOptions,
  dataset: Dataset,
  body: Readable,
  digest: string,
  label: string
): Promise<ObjectOutcome> {
  if (opts.spool.isDuplicate(dataset.name, digest)) {
    body.destroy()
    return { kind: 'duplicate' }
  }
  const tally = new DatasetStats(opts.driftFieldsMax, opts.driftFieldNameMaxChars)
  const meter = new InflatedMeter(opts.maxInflatedBytes)
  let result
  try {
    result = await ingest({
      dataset,
      open: (d) => opts.spool.open(d.name, label),
      source: body,
      through: [createGunzip({ chunkSize: 64 * 1024 }), meter],
      tally,
      maxLineBytes: opts.maxLineBytes,
      maxDepth: opts.maxLineDepth,
      budget: opts.lineBudget,
      requestId: label,
      pool: opts.pool
    })
  } catch (err) {
    body.destroy()
    const code = (err as { code?: unknown })?.code
    // zlib's own failures (Z_DATA_ERROR, Z_BUF_ERROR for a truncated stream) mean a damaged object.
    if (typeof code === 'string' && code.startsWith('Z_')) throw new SourceBadGzip((err as Error).message)
    throw err
  }
  const { batch } = result
  if (result.notNdjson) {
    await batch?.discard()
    throw new PipelineNotNdjson(result.notNdjson)
  }
  if (!batch) return { kind: 'empty' }
  let stored: boolean
  try {
    stored = (await opts.commit(batch, digest)).stored
  } catch (err) {
    await batch.discard()
    throw err
  }
  const dstats = opts.stats.dataset(dataset.name)
  if (!stored) {
    dstats.duplicates++
    return { kind: 'duplicate' }
  }
  dstats.batches++
  dstats.add(tally)
  return { kind: 'stored', lines: result.lines, accepted: result.accepted, rejected: result.rejected, inflatedBytes: meter.count }
}
