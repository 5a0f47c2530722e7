// POST /logpush/:dataset — what a Logpush https:// job calls. The body is streamed through
// decode -> pipeline -> staged batch; the answer comes only when the batch is committed.
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { IntakeBodyTooLarge, IntakeNotReady, IntakeUnknownDataset, PipelineNotNdjson } from '../errors.js'
import { ingest, type Dataset } from '../pipeline/index.js'
import type { Spool, SpoolBatch } from '../spool/index.js'
import { DatasetStats, type Stats } from '../observability/stats.js'
import { redactSecret } from '../observability/logger.js'
import { asDecodeError, decodeBody, type DecodeLimits } from './decode.js'
import { classifySmallBody, type ChallengeLog } from './small-bodies.js'

export interface CommitResult {
  /** False when the same body was accepted before (a re-send): nothing new was stored. */
  readonly stored: boolean
}

export interface LogpushRouteOptions {
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly spool: Spool
  readonly stats: Stats
  readonly challenges: ChallengeLog
  readonly limits: DecodeLimits & { readonly maxLineBytes: number }
  readonly driftFieldsMax: number
  /** Makes a batch durable (dead letters, then the spool segment); throws a coded error if it cannot. */
  readonly commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult>
}

// Disk failures while staging mean "try again later", not "your batch is bad".
const DISK_ERRORS = new Set(['ENOSPC', 'EACCES', 'EROFS', 'EDQUOT', 'EIO', 'EPERM'])

export function logpushRoute(app: FastifyInstance, opts: LogpushRouteOptions): void {
  const { datasets, stats, challenges, limits } = opts
  const known = [...datasets.keys()].join(', ')
  const drift = opts.driftFieldsMax

  app.post<{ Params: { dataset: string } }>('/logpush/:dataset', async function receiveBatch(request: FastifyRequest<{ Params: { dataset: string } }>, reply: FastifyReply) {
    const dataset = datasets.get(request.params.dataset)
    if (!dataset) throw new IntakeUnknownDataset(request.params.dataset, known)
    // A declared length over the limit is refused before a byte is read.
    const declaredLength = Number(request.headers['content-length'])
    if (declaredLength > limits.maxBodyBytes) {
      reply.header('connection', 'close')
      throw new IntakeBodyTooLarge(limits.maxBodyBytes)
    }
    const refusal = opts.spool.refusal()
    if (refusal) {
      reply.header('retry-after', '30').header('connection', 'close')
      throw new IntakeNotReady(refusal)
    }
    const raw = (request.body as Readable | undefined) ?? Readable.from([])
    const dstats = stats.dataset(dataset.name)
    const tally = new DatasetStats(drift)

    const { streams, meter } = await decodeBody(raw, request.headers['content-encoding'], limits)
    // The request stream is piped by hand, not put into the pipeline: a pipeline error would
    // destroy it, and with it the socket the error answer has to travel on.
    const first = streams[0]!
    raw.pipe(first)
    const onClientGone = (): void => { first.destroy(new Error('the client closed the connection')) }
    raw.once('aborted', onClientGone)
    raw.once('error', onClientGone)

    let batch
    try {
      batch = await opts.spool.open(dataset.name, request.id)
    } catch (err) {
      raw.unpipe(first)
      throw diskError(err, reply)
    }
    let result
    try {
      result = await ingest({
        dataset,
        source: first,
        through: streams.slice(1),
        batch,
        tally,
        maxLineBytes: limits.maxLineBytes,
        requestId: request.id
      })
    } catch (err) {
      raw.unpipe(first)
      await batch.discard()
      // The sender may still be sending: close the connection after the answer.
      reply.header('connection', 'close')
      throw diskError(asDecodeError(err), reply)
    } finally {
      raw.off('aborted', onClientGone)
      raw.off('error', onClientGone)
    }

    if (meter.inflatedBytes <= limits.headBytes) {
      const small = classifySmallBody(meter.head)
      if (small) {
        await batch.discard()
        if (small.kind === 'validation') {
          dstats.pings++
          request.log.info({ dataset: dataset.name, bytes: meter.inflatedBytes }, 'Logpush validation upload answered; nothing stored.')
          return { dataset: dataset.name, accepted: 0, rejected: 0, validation: true }
        }
        dstats.challenges++
        challenges.add({ dataset: dataset.name, receivedAt: new Date().toISOString(), requestId: request.id, token: small.token })
        request.log.warn({ dataset: dataset.name, token: redactSecret(small.token) }, 'Ownership-challenge token received; not ingested. Read it at GET /logpush/challenges.')
        return { dataset: dataset.name, accepted: 0, rejected: 0, challenge: true }
      }
    }
    if (result.notNdjson) {
      await batch.discard()
      throw new PipelineNotNdjson(result.notNdjson)
    }

    const digest = meter.digest()
    // Logpush re-sends a batch whose answer it did not see: take it once.
    if (opts.spool.isDuplicate(dataset.name, digest)) {
      await batch.discard()
      request.log.info({ dataset: dataset.name, lines: result.lines }, 'Re-sent batch already accepted; not stored again.')
      return { dataset: dataset.name, accepted: result.accepted, rejected: result.rejected, duplicate: true }
    }
    let committed: CommitResult
    try {
      committed = await opts.commit(batch, digest)
    } catch (err) {
      await batch.discard()
      throw diskError(err, reply)
    }
    if (!committed.stored) return { dataset: dataset.name, accepted: result.accepted, rejected: result.rejected, duplicate: true }
    dstats.batches++
    dstats.add(tally)
    request.log.info({
      dataset: dataset.name,
      lines: result.lines,
      accepted: result.accepted,
      rejected: result.rejected,
      wireBytes: meter.wireBytes,
      inflatedBytes: meter.inflatedBytes,
      gzip: meter.gzip
    }, 'Batch accepted.')
    return { dataset: dataset.name, accepted: result.accepted, rejected: result.rejected }
  })
}

function diskError(err: unknown, reply: FastifyReply): unknown {
  const code = (err as NodeJS.ErrnoException)?.code
  if (typeof code === 'string' && DISK_ERRORS.has(code)) {
    reply.header('retry-after', '30')
    return new IntakeNotReady(`the data directory cannot be written (${code})`)
  }
  return err
}
