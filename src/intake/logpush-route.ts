// POST /logpush/:dataset — what a Logpush https:// job calls. The body is streamed through
// decode -> pipeline -> staged batch; the answer comes only when the batch is committed.
import { Readable } from 'node:stream'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { IntakeBodyTooLarge, IntakeNotReady, IntakeUnknownDataset, PipelineNotNdjson } from '../errors.js'
import { ingest, type Dataset } from '../pipeline/index.js'
import type { SealedBatch, Staging } from '../spool/index.js'
import { DatasetStats, type Stats } from '../observability/stats.js'
import { redactSecret } from '../observability/logger.js'
import { asDecodeError, decodeBody, type DecodeLimits } from './decode.js'
import { classifySmallBody, type ChallengeLog } from './small-bodies.js'

export interface CommitResult {
  readonly delivered: number
  readonly deadLettered: number
  /** Valid lines a destination refused for good (e.g. an Elasticsearch mapping error), now dead letters. */
  readonly deliveryRejected: number
}

export interface LogpushRouteOptions {
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly staging: Staging
  readonly stats: Stats
  readonly challenges: ChallengeLog
  readonly limits: DecodeLimits & { readonly maxLineBytes: number }
  /** Makes a sealed batch durable where it belongs (sinks, dead letters); throws a coded error if it cannot. */
  readonly driftFieldsMax: number
  readonly commit: (batch: SealedBatch) => Promise<CommitResult>
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
      batch = await opts.staging.open(dataset.name, request.id)
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
      await batch.abort()
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
        await batch.abort()
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
      await batch.abort()
      throw new PipelineNotNdjson(result.notNdjson)
    }

    let sealed: SealedBatch
    try {
      sealed = await batch.seal()
    } catch (err) {
      await batch.abort()
      throw diskError(err, reply)
    }
    const committed = await opts.commit(sealed).catch(async (err: unknown) => {
      await sealed.release()
      if ((err as { statusCode?: number }).statusCode === 503) reply.header('retry-after', '30')
      throw err
    })
    await sealed.release()
    dstats.batches++
    dstats.add(tally)
    request.log.info({
      dataset: dataset.name,
      lines: result.lines,
      accepted: result.accepted,
      rejected: result.rejected,
      wireBytes: meter.wireBytes,
      inflatedBytes: meter.inflatedBytes,
      gzip: meter.gzip,
      deadLettered: committed.deadLettered
    }, 'Batch accepted.')
    return {
      dataset: dataset.name,
      accepted: result.accepted,
      rejected: result.rejected,
      ...(committed.deliveryRejected > 0 ? { deliveryRejected: committed.deliveryRejected } : {})
    }
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
