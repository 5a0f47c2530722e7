// Splunk HEC-compatible intake, for Logpush jobs with a splunk:// destination and for other HEC
// senders: POST /services/collector/raw (what Logpush calls), /services/collector/event, and
// GET /services/collector/health, answering in HEC's shape ({"text","code"}) with its codes.
// Indexer acknowledgement is never required: Logpush does not poll /ack (its ack-enabled HEC
// tokens end up refused), and our answer already means "durable on disk".
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { IntakeTokenInvalid, IntakeTokenMalformed, IntakeTokenMissing, IntakeUnknownDataset } from '../errors.js'
import { clip, type Dataset } from '../pipeline/index.js'
import type { Spool } from '../spool/index.js'
import { presentedToken, type TokenSet } from './auth.js'
import { HecEnvelopeError, HecEnvelopeSplitter } from './hec-envelopes.js'
import { receive, type ReceiveOptions } from './receive.js'

export interface HecRouteOptions extends ReceiveOptions {
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly tokens: TokenSet
  readonly authHeader: string
  readonly spool: Spool
  /** sourcetype= of a splunk:// job -> dataset (schemas/splunk/sourcetypes.json, CONFIG_FILE hec.sourcetypes). */
  readonly sourcetypes: ReadonlyMap<string, string>
}

interface HecAnswer { status: number, text: string, code: number }

const SUCCESS = { text: 'Success', code: 0 }

/** Our error codes in HEC's terms (Splunk "Troubleshoot HTTP Event Collector", codes 2-9). */
function hecAnswer(err: Error & { code?: string, statusCode?: number }): HecAnswer {
  switch (err.code) {
    case 'LPR_ERR_INTAKE_TOKEN_MISSING': return { status: 401, text: 'Token is required', code: 2 }
    case 'LPR_ERR_INTAKE_TOKEN_MALFORMED': return { status: 401, text: 'Invalid authorization', code: 3 }
    case 'LPR_ERR_INTAKE_TOKEN_INVALID': return { status: 403, text: 'Invalid token', code: 4 }
    case 'LPR_ERR_INTAKE_NOT_READY':
    case 'LPR_ERR_PIPELINE_LINES_BUSY': return { status: 503, text: 'Server is busy', code: 9 }
  }
  if (err.statusCode === 413) return { status: 413, text: 'Content too large', code: 6 }
  if (err.statusCode === 404 || err.statusCode === 400 || err.statusCode === 415 || err instanceof HecEnvelopeError) return { status: 400, text: 'Invalid data format', code: 6 }
  return { status: 500, text: 'Internal server error', code: 8 }
}

/** Tells the dataset of an unlabelled batch by which schema knows most of the first record's fields. */
export function recogniseDataset(datasets: ReadonlyMap<string, Dataset>): (record: Record<string, unknown>) => Dataset | null {
  return (record) => {
    let best: Dataset | null = null
    let bestScore = 0
    let tie = false
    for (const d of datasets.values()) {
      let score = 0
      for (const key in record) if (d.knownFields.has(key)) score++
      if (score > bestScore) { best = d; bestScore = score; tie = false } else if (score === bestScore && score > 0) tie = true
    }
    return tie ? null : best
  }
}

export async function hecPlugin(app: FastifyInstance, opts: HecRouteOptions): Promise<void> {
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', function passThrough(_req, payload, done) { done(null, payload) })
  const recognise = recogniseDataset(opts.datasets)
  const known = [...opts.datasets.keys()].join(', ')

  app.setErrorHandler(function hecError(error: Error & { code?: string, statusCode?: number }, request, reply) {
    const a = hecAnswer(error)
    if (a.status >= 500 && a.code !== 9) request.log.error({ err: error }, error.message)
    else request.log.info({ code: error.code, statusCode: a.status }, error.message)
    if (a.code === 9) reply.header('retry-after', '30')
    return reply.code(a.status).send({ text: a.text, code: a.code, ...(a.code === 6 || a.status === 413 ? { detail: error.message } : {}) })
  })

  app.addHook('onRequest', async function authenticate(request) {
    if (request.method === 'GET') return
    const header = request.headers.authorization
    const token = presentedToken(request.headers, opts.authHeader)
    if (token === undefined) throw header ? new IntakeTokenMalformed() : new IntakeTokenMissing()
    if (!opts.tokens.has(token)) throw new IntakeTokenInvalid()
  })

  /**
   * The dataset: ?dataset=, else the one the job's sourcetype= names, else told from the first
   * record's fields; a batch none of these tells is kept whole as dead letters (the reason).
   */
  const target = (request: FastifyRequest): { dataset: Dataset | ((r: Record<string, unknown>) => Dataset | null), unrecognised?: string } => {
    const query = request.query as Record<string, string | undefined>
    const name = query.dataset
    if (name !== undefined && name !== '') {
      const d = opts.datasets.get(name)
      if (!d) throw new IntakeUnknownDataset(clip(name, 64), known)
      return { dataset: d }
    }
    const sourcetype = query.sourcetype
    const named = sourcetype ? opts.datasets.get(opts.sourcetypes.get(sourcetype) ?? '') : undefined
    if (named) return { dataset: named }
    const st = sourcetype ? `sourcetype=${clip(sourcetype, 100)} names no dataset` : 'no sourcetype='
    return { dataset: recognise, unrecognised: `the dataset cannot be told: no dataset=, ${st}, and the first record's fields match no schema better than all others` }
  }

  const answer = async (request: FastifyRequest, reply: FastifyReply, envelopes: boolean): Promise<typeof SUCCESS> => {
    const t = target(request)
    const r = await receive(request, reply, opts, t.dataset, envelopes ? new HecEnvelopeSplitter(opts.limits.maxLineBytes) : undefined, t.unrecognised)
    if (r.kind === 'stored' || r.kind === 'duplicate') reply.header('x-logpush-receiver', JSON.stringify({ dataset: r.dataset, accepted: r.accepted, rejected: r.rejected, duplicate: r.kind === 'duplicate' }))
    return SUCCESS
  }

  for (const path of ['/services/collector/raw', '/services/collector/raw/1.0']) {
    app.post(path, async function hecRaw(request, reply) { return await answer(request, reply, false) })
  }
  for (const path of ['/services/collector/event', '/services/collector', '/services/collector/event/1.0']) {
    app.post(path, async function hecEvent(request, reply) { return await answer(request, reply, true) })
  }
  for (const path of ['/services/collector/health', '/services/collector/health/1.0']) {
    app.get(path, async function hecHealth(_request, reply) {
      if (opts.spool.refusal()) return reply.code(503).send({ text: 'HEC is unhealthy, queues are full', code: 18 })
      return { text: 'HEC is healthy', code: 17 }
    })
  }
}
