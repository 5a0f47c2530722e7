// Receiving one batch, whatever the route: limits, decoding, the pipeline into a spool batch,
// validation uploads and challenges, re-sends, and the commit. Routes only shape the answer.
import type { Readable, Transform } from 'node:stream'
import type { FastifyReply, FastifyRequest } from 'fastify'
import { IntakeBodyTooLarge, IntakeClientGone, IntakeNotReady, PipelineNotNdjson } from '../errors.js'
import { ingest, type Dataset, type LineBudget, type ParsePool } from '../pipeline/index.js'
import { UNRECOGNISED_DATASET, type Spool, type SpoolBatch } from '../spool/index.js'
import { DatasetStats, type Stats } from '../observability/stats.js'
import { redactSecret } from '../observability/logger.js'
import { asDecodeError, decodeBody, type DecodeLimits } from './decode.js'
import { classifySmallBody, type ChallengeLog } from './small-bodies.js'

export interface CommitResult {
  /** False when the same body was accepted before (a re-send): nothing new was stored. */
  readonly stored: boolean
}

export interface ReceiveOptions {
  readonly spool: Spool
  readonly stats: Stats
  readonly challenges: ChallengeLog
  readonly limits: DecodeLimits & { readonly maxLineBytes: number, readonly maxLineDepth?: number }
  /** What the unfinished lines of all requests may hold together (LINE_BUFFER_BUDGET_BYTES). */
  readonly lineBudget?: LineBudget | null
  readonly driftFieldsMax: number
  readonly driftFieldNameMaxChars?: number
  /** Worker threads for split + parse + validate, or null to do it on the main thread. */
  readonly pool: ParsePool | null
  /** Makes a batch durable (dead letters, then the spool segment); throws a coded error if it cannot. */
  readonly commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult>
  /** The tenant the request's token names (CONFIG_FILE tokens), if any: kept with the batch for routing. */
  readonly tenantOf?: (headers: FastifyRequest['headers']) => string | undefined
}

export type Received =
  | { readonly kind: 'stored' | 'duplicate', readonly dataset: string, readonly accepted: number, readonly rejected: number }
  | { readonly kind: 'validation' | 'challenge' | 'empty', readonly dataset: string | null }

/**
 * Asks for the connection to close after the answer when the sender may still be sending the
 * body we stopped reading. HTTP/1 only: HTTP/2 forbids the header and ends just the stream.
 */
export function closeAfterAnswer(request: FastifyRequest, reply: FastifyReply): void {
  if (request.raw.httpVersionMajor < 2) reply.header('connection', 'close')
}

// Disk failures while staging or committing mean "try again later", not "your batch is bad".
const DISK_ERRORS = new Set(['ENOSPC', 'EACCES', 'EROFS', 'EDQUOT', 'EIO', 'EPERM'])

/**
 * Every storage failure is a 503 with Retry-After and a coded message naming the errno only:
 * the errno's own message names a path under DATA_DIR, which the sender must never see. Any
 * system error of a file-system call counts (an errno with a syscall), not only the usual five.
 */
function diskError(err: unknown, reply: FastifyReply, request: FastifyRequest): unknown {
  const e = err as NodeJS.ErrnoException | null
  const code = e?.code
  if (typeof code === 'string' && (DISK_ERRORS.has(code) || (/^E[A-Z]+$/.test(code) && typeof e?.syscall === 'string'))) {
    request.log.error({ err }, 'Storing a batch failed on the data directory.')
    reply.header('retry-after', '30')
    return new IntakeNotReady(`the data directory cannot be written (${code})`)
  }
  return err
}

export async function receive(
  request: FastifyRequest,
  reply: FastifyReply,
  opts: ReceiveOptions,
  dataset: Dataset | ((record: Record<string, unknown>) => Dataset | null),
  framing?: Transform,
  /** Why a batch whose dataset the function cannot tell is kept whole as dead letters; refused (400) when absent. */
  unrecognisedReason?: string
): Promise<Received> {
  const { limits } = opts
  const tenant = opts.tenantOf?.(request.headers)
  // A declared length over the limit is refused before a byte is read.
  if (Number(request.headers['content-length']) > limits.maxBodyBytes) {
    closeAfterAnswer(request, reply)
    throw new IntakeBodyTooLarge(limits.maxBodyBytes)
  }
  const refusal = opts.spool.refusal()
  if (refusal) {
    reply.header('retry-after', '30')
    closeAfterAnswer(request, reply)
    throw new IntakeNotReady(refusal)
  }
  // fastify hands no body to a request without Content-Length or Transfer-Encoding, which an
  // HTTP/2 upload may well be: then the raw request is the body, untouched.
  const raw = (request.body as Readable | undefined) ?? (request.raw as unknown as Readable)
  const tally = new DatasetStats(opts.driftFieldsMax, opts.driftFieldNameMaxChars)
  // The client may go away (or send a broken chunked body) at any moment of the request, also
  // after the body was read: this listener stays for the request's whole life, so that no such
  // error is ever without one. While the pipeline runs it ends the pipeline.
  let clientGone = false
  let first: Transform | null = null
  const onClientGone = (): void => {
    clientGone = true
    if (first && !first.destroyed) first.destroy(new IntakeClientGone())
  }
  raw.on('error', onClientGone)
  raw.on('aborted', onClientGone)

  let decoded
  try {
    decoded = await decodeBody(raw, request.headers['content-encoding'], limits)
  } catch (err) {
    if (clientGone || raw.destroyed) throw new IntakeClientGone()
    throw err
  }
  const { streams, meter } = decoded
  // The request stream is piped by hand, not put into the pipeline: a pipeline error would
  // destroy it, and with it the socket the error answer has to travel on.
  first = streams[0]!
  if (clientGone) first.destroy(new IntakeClientGone())
  raw.pipe(first)

  let result
  try {
    result = await ingest({
      dataset,
      open: (d) => opts.spool.open(d.name, request.id, tenant),
      ...(framing ? { framing } : {}),
      source: first,
      through: streams.slice(1),
      tally,
      maxLineBytes: limits.maxLineBytes,
      ...(limits.maxLineDepth ? { maxDepth: limits.maxLineDepth } : {}),
      budget: opts.lineBudget ?? null,
      requestId: request.id,
      pool: opts.pool,
      ...(unrecognisedReason !== undefined ? { unrecognised: { open: () => opts.spool.open(UNRECOGNISED_DATASET, request.id, tenant), reason: unrecognisedReason } } : {})
    })
  } catch (err) {
    raw.unpipe(first)
    if (clientGone) throw new IntakeClientGone()
    const small = meter.inflatedBytes <= limits.headBytes ? classifySmallBody(meter.head) : null
    if (small) return answerSmall(request, opts, small, null)
    closeAfterAnswer(request, reply)
    // A refusal for now (memory for long lines): Logpush retries.
    if ((err as { statusCode?: number }).statusCode === 503) reply.header('retry-after', '30')
    throw diskError(asDecodeError(err), reply, request)
  }
  first = null

  const { batch } = result
  const name = result.dataset?.name ?? (result.unrecognised ? UNRECOGNISED_DATASET : null)
  if (meter.inflatedBytes <= limits.headBytes) {
    const small = classifySmallBody(meter.head)
    if (small) {
      await batch?.discard()
      return answerSmall(request, opts, small, name)
    }
  }
  if (result.notNdjson) {
    await batch?.discard()
    throw new PipelineNotNdjson(result.notNdjson)
  }
  if (!batch || !name || result.accepted + result.rejected === 0) {
    await batch?.discard()
    return { kind: 'empty', dataset: name }
  }

  // Two tenants may send the same bytes: each is its own batch, never the other's re-send.
  const digest = tenant === undefined ? meter.digest() : `${tenant}-${meter.digest()}`
  // Logpush re-sends a batch whose answer it did not see: take it once.
  let stored = false
  if (!opts.spool.isDuplicate(name, digest)) {
    try {
      stored = (await opts.commit(batch, digest)).stored
    } catch (err) {
      await batch.discard() // never throws: the commit's error is the answer
      throw diskError(err, reply, request)
    }
  } else {
    await batch.discard()
  }
  if (!stored) {
    opts.stats.dataset(name).duplicates++
    request.log.info({ dataset: name, lines: result.lines }, 'Re-sent batch already accepted; not stored again.')
    return { kind: 'duplicate', dataset: name, accepted: result.accepted, rejected: result.rejected }
  }
  if (result.unrecognised) request.log.warn({ lines: result.rejected, reason: unrecognisedReason }, 'Batch of an unrecognised dataset kept whole in the dead-letter store.')
  const dstats = opts.stats.dataset(name)
  dstats.batches++
  dstats.add(tally)
  request.log.info({
    dataset: name,
    lines: result.lines,
    accepted: result.accepted,
    rejected: result.rejected,
    wireBytes: meter.wireBytes,
    inflatedBytes: meter.inflatedBytes,
    gzip: meter.gzip
  }, 'Batch accepted.')
  return { kind: 'stored', dataset: name, accepted: result.accepted, rejected: result.rejected }
}

function answerSmall(request: FastifyRequest, opts: ReceiveOptions, small: NonNullable<ReturnType<typeof classifySmallBody>>, dataset: string | null): Received {
  const label = dataset ?? '(unknown)'
  if (small.kind === 'validation') {
    if (dataset) opts.stats.dataset(dataset).pings++
    request.log.info({ dataset: label }, 'Validation upload answered; nothing stored.')
    return { kind: 'validation', dataset }
  }
  if (dataset) opts.stats.dataset(dataset).challenges++
  opts.challenges.add({ dataset: label, receivedAt: new Date().toISOString(), requestId: request.id, token: small.token })
  request.log.warn({ dataset: label, token: redactSecret(small.token) }, 'Ownership-challenge token received; not ingested. Read it at GET /logpush/challenges.')
  return { kind: 'challenge', dataset }
}
