// Delivers a staged batch to a Splunk HTTP Event Collector (/services/collector/event).
//
// HEC has no dedupe, so the guarantees come from order and checkpoints, not from ids:
//   - one request at a time, in line order; after a request is fully in (a 200 code 0, or with
//     indexer acknowledgement its ackId read true) the sink calls progress(), and the spool
//     checkpoints there. After a crash only the request in flight can reach Splunk twice.
//   - HEC takes events in order and stops at the first bad one; the answer's invalid-event-number
//     says how far it got (on a 400, and on a busy 503 too). Those events are never sent again: a
//     400's bad event is dead-lettered and the rest goes at once, a 503's rest after a backoff.
//   - an ackId that does not read true within ackTimeoutMs means the events may be lost: they are
//     sent again, and if Splunk did index them after all they are in twice. Splunk's client
//     guidance expects exactly that; there is no way to ask whether a lost ackId was indexed.
// Waiting for each ack before the next request keeps the checkpoint a single number but caps
// throughput at one request per poll interval; pipelining requests and tracking several ackIds
// would be faster, at the price of checkpointing only the longest acknowledged prefix.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import { LineRejectCode, SinkStopCode } from '../../errors.js'
import { eachLine } from '../../delivery.js'
import { DeliveryStopped, type DeliveryBatch, type DeliveryResult, type Progress, type Rejection, type Sink, type StoppedState } from '../sink.js'
import { backoffMs, classify, failureHint, oneTooLarge, type HecAnswer } from './classify.js'
import { envelope, envelopeMeta, requestBody } from './request.js'

export interface SplunkHecSinkOptions {
  /** Base URL, e.g. https://splunk:8088; /services/collector/event and /ack are appended. */
  readonly url: string
  readonly token: string
  /** PEM file of the CA that signed HEC's certificate; '' = the system CAs. */
  readonly caFile: string
  readonly tlsVerify: boolean
  readonly sourcetype: string
  /** '' → 'cloudflare:<dataset>'. */
  readonly source: string
  /** Per-dataset sourcetypes and sources (CONFIG_FILE datasets.<name>.splunk); the above for the others. */
  readonly sourcetypes?: ReadonlyMap<string, string>
  readonly sources?: ReadonlyMap<string, string>
  /** '' → left out. */
  readonly host: string
  /** Dataset → index; a dataset not in it gets `defaultIndex`. */
  readonly indexes: ReadonlyMap<string, string>
  /** '' → left out (the token's default index). */
  readonly defaultIndex: string
  /** Size of one request body before compression, bytes (one event alone may exceed it). */
  readonly batchBytes: number
  readonly gzip: boolean
  /** How long deliver() keeps retrying without progress before it throws, ms. */
  readonly retryMs: number
  readonly requestTimeoutMs: number
  /** Indexer acknowledgement (Splunk Enterprise; the token must have it on too). */
  readonly ack: boolean
  readonly ackPollMs: number
  /** An ackId not true after this long is taken as lost and its events are sent again, ms. */
  readonly ackTimeoutMs: number
  /** Dataset → the field holding its event time. */
  readonly eventTimeFields: ReadonlyMap<string, string>
  readonly log: Logger
}

const EVENT_PATH = '/services/collector/event'
const ACK_PATH = '/services/collector/ack'
/** HEC answers are a few dozen bytes; more is a proxy's page, kept only for the error message. */
const MAX_ANSWER_BYTES = 64 * 1024

interface Item {
  /** Line number in the segment. */
  readonly pos: number
  readonly raw: string
  readonly envelope: string
}

type Answer =
  | { readonly status: number, readonly answer: HecAnswer | undefined, readonly text: string }
  | { readonly status: undefined, readonly error: Error }

/** One deliver() call. */
interface Run {
  readonly dataset: string
  readonly progress: Progress
  readonly signal: AbortSignal | undefined
  /** Lines passed to progress() so far (from the start of the segment). */
  reported: number
  /** Refused lines not yet passed to progress(), with their line numbers. */
  rejections: Array<{ pos: number, rejection: Rejection }>
  delivered: number
  /** When retrying must stop; moved on by every progress. */
  deadline: number
  /** Events HEC answered 413 to alone, decided once the rest of their request is in. */
  oversized: Array<{ item: Item, bytes: number, reply: Answer }>
}

export class SplunkHecSink implements Sink {
  // The name CONFIG_FILE's datasets.<name>.sinks and SINKS use.
  readonly name = 'splunk'
  /** One GUID channel per sink, sent on every request: ackIds are per channel. */
  readonly channel = randomUUID()
  private readonly base: URL
  private readonly agent: HttpAgent
  private readonly send: typeof httpRequest
  private lastStatus: number | string | null = null
  private acksPending = 0
  private warnedAckOff = false

  constructor (private readonly opts: SplunkHecSinkOptions) {
    this.base = new URL(opts.url)
    if (this.base.protocol === 'https:') {
      this.agent = new HttpsAgent({ keepAlive: true, rejectUnauthorized: opts.tlsVerify, ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}) })
      this.send = httpsRequest
    } else if (this.base.protocol === 'http:') {
      this.agent = new HttpAgent({ keepAlive: true })
      this.send = httpRequest
    } else {
      throw new Error(`Splunk HEC URL must be http:// or https://, not ${this.base.protocol}`)
    }
  }

  /** Nothing to recover: progress checkpoints every request, so a replay resends only the one in flight. */
  async init(): Promise<void> {}

  async deliver(batch: DeliveryBatch, progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const { opts } = this
    const meta = envelopeMeta({
      host: opts.host,
      source: opts.sources?.get(batch.dataset) ?? (opts.source || `cloudflare:${batch.dataset}`),
      sourcetype: opts.sourcetypes?.get(batch.dataset) ?? opts.sourcetype,
      index: batch.route?.index ?? opts.indexes.get(batch.dataset) ?? opts.defaultIndex
    })
    const timeField = opts.eventTimeFields.get(batch.dataset)
    const run: Run = { dataset: batch.dataset, progress, signal, reported: batch.from, rejections: [], delivered: 0, deadline: Date.now() + opts.retryMs, oversized: [] }
    let chunk: Item[] = []
    let chunkBytes = 0
    let pos = batch.from
    // Lines are read only as fast as requests go out: the batch never sits in memory whole. A
    // block at a time (eachLine): a promise only where a request is sent.
    const send = async (first: Item): Promise<void> => {
      await this.sendRequest(run, chunk)
      chunk = [first]
      chunkBytes = Buffer.byteLength(first.envelope) + 1
    }
    await eachLine(batch, (raw) => {
      const at = pos++
      if (raw.length === 0) return undefined
      // A refusal dead-letters the line as stored, not as shaped: a replay shapes it once, not twice.
      const item = { pos: at, raw: batch.originalOf?.(raw) ?? raw, envelope: envelope(raw, meta, timeField) }
      const bytes = Buffer.byteLength(item.envelope) + 1
      if (chunk.length > 0 && chunkBytes + bytes > opts.batchBytes) return send(item)
      chunk.push(item)
      chunkBytes += bytes
      return undefined
    })
    if (chunk.length > 0) await this.sendRequest(run, chunk)
    return { delivered: run.delivered, duplicates: 0, rejected: run.rejections.map((r) => r.rejection) }
  }

  /**
   * Sends `items` until every one is in or refused, reporting progress as the front of it gets in.
   * A 413 is answered by halving; an event alone over the limit waits (progress stops before it)
   * until the rest of the request is in, which tells whether the limit is about its size.
   */
  private async sendRequest(run: Run, items: readonly Item[], top = true): Promise<void> {
    const end = items[items.length - 1]!.pos + 1
    let pending = items
    let attempt = 0
    while (pending.length > 0) {
      const text = pending.map((i) => i.envelope)
      const bytes = text.reduce((n, e) => n + Buffer.byteLength(e), 0) + text.length - 1
      const body = await requestBody(text, this.opts.gzip)
      const reply = await this.post(EVENT_PATH, body, this.opts.gzip, run.signal)
      const { verdict, indexed } = classify(reply.status, reply.status === undefined ? undefined : reply.answer, pending.length)

      if (verdict === 'split') {
        if (pending.length === 1) {
          run.oversized.push({ item: pending[0]!, bytes, reply })
        } else {
          this.opts.log.warn({ events: pending.length, bytes: body.length }, 'Splunk HEC says the request is too large; sending it in halves.')
          const half = Math.ceil(pending.length / 2)
          await this.sendRequest(run, pending.slice(0, half), false)
          await this.sendRequest(run, pending.slice(half), false)
        }
        if (top) await this.decideOversized(run, items.length === 1, end)
        return
      }
      if (verdict === 'ok') {
        this.largestAccepted = Math.max(this.largestAccepted, bytes)
        this.stopped = null
      }

      // The first `indexed` events are in; with ack on, only once their ackId reads true.
      let confirmed = indexed
      const ackId = reply.status === undefined ? undefined : reply.answer?.ackId
      if (indexed > 0 && typeof ackId === 'number') {
        if (!this.opts.ack) this.warnAckOn()
        else if (!await this.acknowledged(ackId, run.signal)) confirmed = 0
      }
      run.delivered += confirmed
      let rest = pending.slice(indexed)
      if (verdict === 'partial') {
        const bad = rest[0]!
        rest = rest.slice(1)
        run.rejections.push({ pos: bad.pos, rejection: this.rejection(run.dataset, bad, reply) })
      }
      pending = confirmed === indexed ? rest : [...pending.slice(0, indexed), ...rest]
      if (confirmed > 0 || verdict === 'partial') attempt = 0
      await this.report(run, pending.length > 0 ? pending[0]!.pos : end)

      if (verdict === 'fail') throw this.stop(`Splunk HEC refused the request: ${describe(reply)}; ${failureHint(reply.status ?? 0, reply.status === undefined ? undefined : reply.answer?.code)}`)
      if (pending.length === 0) break
      if (verdict === 'retry') await this.pause(run, attempt++, describe(reply))
      else if (confirmed < indexed) await this.pause(run, attempt++, `ackId ${String(ackId)} not acknowledged within ${this.opts.ackTimeoutMs} ms; sending its events again (duplicates possible)`)
    }
  }

  /** Dead-letters the events that were alone over HEC's size limit, or stops if the limit is not about them. */
  private async decideOversized(run: Run, alone: boolean, end: number): Promise<void> {
    const oversized = run.oversized
    run.oversized = []
    for (const { item, bytes, reply } of oversized) {
      if (oneTooLarge(bytes, this.largestAccepted, alone) === 'stop') {
        throw this.stop(`Splunk HEC answered 413 to a request of one ${bytes}-byte event, though ${this.largestAccepted > 0 ? `it took a ${this.largestAccepted}-byte request before` : 'it took none of the other events of the request'}: raise max_content_length in limits.conf [http_input] or the proxy's body limit`)
      }
      const answer = reply.status === undefined ? undefined : reply.answer
      run.rejections.push({
        pos: item.pos,
        rejection: {
          dataset: run.dataset,
          sink: this.name,
          code: LineRejectCode.splunkTooLarge,
          reason: `HTTP 413${typeof answer?.text === 'string' ? ` "${answer.text}"` : ''}: the event alone makes a ${bytes}-byte request, over HEC's max_content_length (or a proxy's limit); the largest request it took was ${this.largestAccepted} bytes`,
          raw: item.raw
        }
      })
    }
    await this.report(run, end)
  }

  private async report(run: Run, upTo: number): Promise<void> {
    // Never past an event whose 413 is not decided yet: it is dead-lettered or stops delivery.
    const lines = run.oversized.length > 0 ? Math.min(upTo, run.oversized[0]!.item.pos) : upTo
    if (lines <= run.reported) return
    const due = run.rejections.filter((r) => r.pos < lines)
    run.rejections = run.rejections.filter((r) => r.pos >= lines)
    run.reported = lines
    run.deadline = Date.now() + this.opts.retryMs
    await run.progress(lines, due.map((r) => r.rejection))
  }

  private rejection(dataset: string, item: Item, reply: Answer): Rejection {
    const answer = reply.status === undefined ? undefined : reply.answer
    const text = typeof answer?.text === 'string' ? answer.text : 'refused'
    return {
      dataset,
      sink: this.name,
      code: LineRejectCode.splunk,
      reason: `${text} (HEC code ${String(answer?.code)}, HTTP ${String(reply.status)})`,
      raw: item.raw
    }
  }

  /** Polls /ack until `ackId` reads true (then Splunk forgets it) or ackTimeoutMs runs out. */
  private async acknowledged(ackId: number, signal: AbortSignal | undefined): Promise<boolean> {
    const until = Date.now() + this.opts.ackTimeoutMs
    const body = Buffer.from(JSON.stringify({ acks: [ackId] }))
    this.acksPending++
    try {
      for (;;) {
        const left = until - Date.now()
        if (left <= 0) return false
        await sleep(Math.min(this.opts.ackPollMs, left), undefined, { signal })
        const reply = await this.post(ACK_PATH, body, false, signal)
        if (reply.status === 200) {
          const acks = reply.answer?.acks as Record<string, unknown> | undefined
          if (acks?.[String(ackId)] === true) return true
        } else {
          // Keep polling: a failing ack endpoint says nothing about the events; the timeout decides.
          this.opts.log.warn({ ackId, err: describe(reply) }, 'Splunk HEC did not answer an acknowledgement poll; polling again.')
        }
      }
    } finally {
      this.acksPending--
    }
  }

  private async pause(run: Run, attempt: number, cause: string): Promise<void> {
    const wait = backoffMs(attempt)
    if (Date.now() + wait > run.deadline) {
      throw new Error(`Splunk HEC made no progress within the retry budget (${this.opts.retryMs} ms): ${cause}`)
    }
    this.opts.log.warn({ attempt, waitMs: wait, err: cause }, 'Splunk HEC is not taking the request; retrying.')
    await sleep(wait, undefined, { signal: run.signal })
  }

  private warnAckOn(): void {
    if (this.warnedAckOff) return
    this.warnedAckOff = true
    // Splunk keeps each ackId in memory until polled: unpolled ones pile up against its per-channel limit.
    this.opts.log.warn('The Splunk HEC token has indexer acknowledgement on but the sink does not poll acks; turn ack on in the sink or off on the token.')
  }

  /** One POST; a missing answer (refused, reset, timeout) is a value, an abort throws. */
  private post(path: string, body: Buffer, gzipped: boolean, signal: AbortSignal | undefined): Promise<Answer> {
    signal?.throwIfAborted()
    const url = new URL(this.base.pathname.replace(/\/+$/, '') + path, this.base)
    return new Promise<Answer>((resolve, reject) => {
      let settled = false
      const settle = (fn: () => void): void => {
        if (settled) return
        settled = true
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        fn()
      }
      const req = this.send(url, {
        method: 'POST',
        agent: this.agent,
        headers: {
          Authorization: `Splunk ${this.opts.token}`,
          'X-Splunk-Request-Channel': this.channel,
          'Content-Type': 'application/json',
          'Content-Length': body.length,
          ...(gzipped ? { 'Content-Encoding': 'gzip' } : {})
        }
      }, (res: IncomingMessage) => {
        const chunks: Buffer[] = []
        let size = 0
        res.on('data', (chunk: Buffer) => {
          size += chunk.length
          if (size <= MAX_ANSWER_BYTES) chunks.push(chunk)
        })
        res.on('end', () => settle(() => {
          const status = res.statusCode ?? 0
          const text = Buffer.concat(chunks).toString('utf8')
          this.lastStatus = status
          resolve({ status, answer: parseAnswer(text), text })
        }))
        res.on('error', (err) => fail(err))
        // A socket closed mid-answer may end the response without an error; 'end' comes first otherwise.
        res.on('close', () => fail(new Error('connection closed before the answer ended')))
      })
      const fail = (err: Error): void => settle(() => {
        if (signal?.aborted) { reject(signal.reason); return }
        this.lastStatus = (err as NodeJS.ErrnoException).code ?? err.message
        resolve({ status: undefined, error: err })
      })
      const timer = setTimeout(() => {
        const err = Object.assign(new Error(`no answer within ${this.opts.requestTimeoutMs} ms`), { code: 'ETIMEDOUT' })
        req.destroy(err)
        fail(err)
      }, this.opts.requestTimeoutMs)
      const onAbort = (): void => { req.destroy(); fail(new Error('aborted')) }
      signal?.addEventListener('abort', onAbort, { once: true })
      req.on('error', fail)
      req.end(body)
    })
  }

  /** The largest request body (before gzip) HEC took since start, bytes (see oneTooLarge). */
  private largestAccepted = 0
  private stopped: StoppedState | null = null

  /** Records why delivery stopped (for /health) and returns the error to throw. */
  private stop(message: string): DeliveryStopped {
    this.stopped = { code: SinkStopCode.splunkConfig, reason: message, since: this.stopped?.since ?? new Date().toISOString() }
    return new DeliveryStopped(SinkStopCode.splunkConfig, message)
  }

  health(): Record<string, unknown> {
    const url = new URL(this.base)
    url.username = ''
    url.password = ''
    return { url: url.href, lastStatus: this.lastStatus, acksPending: this.acksPending, stopped: this.stopped }
  }

  async close(): Promise<void> {
    this.agent.destroy()
  }
}

function parseAnswer(text: string): HecAnswer | undefined {
  try {
    const v: unknown = JSON.parse(text)
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? v as HecAnswer : undefined
  } catch {
    return undefined
  }
}

function describe(reply: Answer): string {
  if (reply.status === undefined) return `no answer: ${(reply.error as NodeJS.ErrnoException).code ?? reply.error.message}`
  const a = reply.answer
  if (a === undefined) return `HTTP ${reply.status}: ${JSON.stringify(reply.text.slice(0, 200))}`
  const n = a['invalid-event-number']
  return `HTTP ${reply.status}, code ${String(a.code)} "${String(a.text)}"${n === undefined ? '' : `, invalid-event-number ${String(n)}`}`
}
