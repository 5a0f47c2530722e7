// One bulk's worth of documents sent to Elasticsearch's _bulk, and what to do when it is refused
// whole: halved on 413 (the body is over the request size limit) or on a 400 that carries
// Elasticsearch's own error object (it parsed the body and refused what it holds), as often as
// needed to find the documents responsible; the others are delivered. A document refused alone
// is dead-lettered only if the refusal is the document's: for a 413, unless the node took as
// large a body before; for a 400, if the node took a request while the bulk was halved, or takes
// a request holding no document (the probe). Items answered 429/5xx are sent again with backoff.
// The sink (sink.ts) owns the client, the retry budget and the stop shown in health(): it is the
// BulkPeer this sender works through.
import { errors } from '@elastic/elasticsearch'
import { LineRejectCode, SinkStopCode } from '../../errors.js'
import type { DeliveryStopped, Rejection } from '../sink.js'
import { readItems, type BulkResponse } from '../bulk/answers.js'
import type { Counts, Item } from '../bulk/window.js'
import { describe, errorType, reasonOf, type ItemError } from './answers.js'
import { classifyRequest, oneTooLarge, stopCause } from './classify.js'

export type { BulkResponse, Counts, Item }

/** What the sender needs of the sink: the request, the wait between tries, the stop it shows. */
export interface BulkPeer {
  /** POST /_bulk with this body; a refusal throws errors.ResponseError. */
  bulk(body: string, signal?: AbortSignal): Promise<BulkResponse>
  /** Waits before the next try, or throws once that would pass the deadline. */
  pause(attempt: number, deadline: number, signal: AbortSignal | undefined, cause: unknown): Promise<void>
  /** Records why delivery stopped (for /health) and returns the error to throw. */
  stop(code: string, message: string): DeliveryStopped
  /** The same for a whole request refused for a reason that needs an operator. */
  requestStopped(err: errors.ResponseError): DeliveryStopped
  /** A request got no HTTP answer: the node may be down. */
  unreachable(): void
  /** Elasticsearch took a request: a stop shown before is over. */
  taking(): void
}

/** Documents a bulk's halving found: alone over the size limit (413), or alone refused for their content (400). */
interface Found {
  readonly oversized: Array<{ item: Item, bytes: number }>
  readonly unparsable: Array<{ item: Item, reason: string }>
}

/** A _bulk request that stores and creates nothing: Elasticsearch creates no index for a delete. */
const PROBE_BODY = '{"delete":{"_index":"logs-cloudflare.lpr-probe-none","_id":"lpr-probe"}}\n'

export class BulkSender {
  /** The largest _bulk body Elasticsearch took since start, bytes (see oneTooLarge). */
  private largestAccepted = 0
  /** _bulk requests Elasticsearch took since start: whether it took one while a bulk was halved. */
  private accepted = 0

  constructor (private readonly peer: BulkPeer, private readonly sinkName: string) {}

  /**
   * One bulk's worth of lines, halved on 413 or on a 400 for its content as often as needed;
   * answers the lines refused for good (dead letters), counting what was stored in `report`.
   */
  async send(index: string, dataset: string, items: Item[], report: Counts, deadline: number, signal?: AbortSignal): Promise<Rejection[]> {
    const rejected: Rejection[] = []
    const found: Found = { oversized: [], unparsable: [] }
    const acceptedBefore = this.accepted
    await this.sendWithRetries(index, dataset, items, rejected, found, report, deadline, signal)
    const { oversized, unparsable } = found
    // Decided once the rest of the bulk is in: its other halves say whether the node takes bodies this large.
    for (const { item, bytes } of oversized) {
      if (oneTooLarge(bytes, this.largestAccepted, items.length === 1) === 'stop') {
        throw this.peer.stop(SinkStopCode.elasticsearchCluster, `Elasticsearch answered 413 to a request of one ${bytes}-byte document, though ${this.largestAccepted > 0 ? `it took a ${this.largestAccepted}-byte request before` : 'it took none of the other documents of the bulk'}: check http.max_content_length and any proxy's body limit`)
      }
      rejected.push({
        dataset,
        sink: this.sinkName,
        code: LineRejectCode.elasticsearchTooLarge,
        reason: `HTTP 413: the document makes a ${bytes}-byte _bulk request, over Elasticsearch's request size limit (http.max_content_length, or a proxy's); the largest request it took was ${this.largestAccepted} bytes`,
        raw: item.raw
      })
    }
    if (unparsable.length === 0) return rejected
    // Each of these documents, alone in a request, made Elasticsearch refuse it (400) for what it
    // held. It is the document's fault only if Elasticsearch takes our requests otherwise: it
    // took one while this bulk was halved (a half of this very bulk, often), or it takes one
    // that holds no document at all. One taken earlier proves nothing about now (a node or proxy
    // may have begun refusing every request). If it does not, no document is to blame: stop,
    // dead-letter nothing.
    if (this.accepted === acceptedBefore) {
      const probe = await this.probe(signal)
      if (probe !== null) {
        throw this.peer.stop(SinkStopCode.elasticsearchCluster, `Elasticsearch refused a _bulk request holding no document (${probe}), as it refused ${unparsable.length} document(s) one by one (${unparsable[0]!.reason}): the requests, not the documents, are refused; check the URL, any proxy in front of Elasticsearch and the cluster`)
      }
    }
    for (const { item, reason } of unparsable) {
      rejected.push({
        dataset,
        sink: this.sinkName,
        code: LineRejectCode.elasticsearchUnparsable,
        reason: `HTTP 400 ${reason}: Elasticsearch refused the whole _bulk request for this document; sent alone, it was refused again, while Elasticsearch takes other requests`,
        raw: item.raw
      })
    }
    return rejected
  }

  /**
   * Null when Elasticsearch takes a _bulk request that stores and creates nothing (a delete in
   * an index that does not exist: its item fails, the request is taken), else why not.
   */
  private async probe(signal?: AbortSignal): Promise<string | null> {
    try {
      await this.peer.bulk(PROBE_BODY, signal)
      this.accepted++
      this.largestAccepted = Math.max(this.largestAccepted, PROBE_BODY.length)
      return null
    } catch (err) {
      if (!(err instanceof errors.ResponseError)) throw err
      const verdict = classifyRequest(err.statusCode, errorType(err.body))
      if (verdict === 'stop') throw this.peer.requestStopped(err)
      if (verdict === 'retry') throw err
      return describe(err)
    }
  }

  private async sendWithRetries(index: string, dataset: string, items: Item[], rejected: Rejection[], found: Found, report: Counts, deadline: number, signal?: AbortSignal): Promise<void> {
    let pending = items
    for (let attempt = 0; pending.length > 0; attempt++) {
      let res: BulkResponse
      const body = this.bulkBody(index, pending)
      try {
        res = await this.peer.bulk(body, signal)
      } catch (err) {
        if (!(err instanceof errors.ResponseError)) this.peer.unreachable()
        const verdict = err instanceof errors.ResponseError ? classifyRequest(err.statusCode, errorType(err.body)) : classifyRequest(undefined)
        if (verdict === 'split' || verdict === 'bisect') {
          if (pending.length === 1) {
            if (verdict === 'split') found.oversized.push({ item: pending[0]!, bytes: Buffer.byteLength(body) })
            else found.unparsable.push({ item: pending[0]!, reason: reasonOf((err as errors.ResponseError).body?.error as ItemError | undefined) })
            return
          }
          const half = Math.ceil(pending.length / 2)
          await this.sendWithRetries(index, dataset, pending.slice(0, half), rejected, found, report, deadline, signal)
          await this.sendWithRetries(index, dataset, pending.slice(half), rejected, found, report, deadline, signal)
          return
        }
        if (verdict === 'stop' && err instanceof errors.ResponseError) throw this.peer.requestStopped(err)
        if (verdict !== 'retry' || !(err instanceof errors.ResponseError || err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError)) throw err
        await this.peer.pause(attempt, deadline, signal, err)
        continue
      }
      this.accepted++
      this.largestAccepted = Math.max(this.largestAccepted, Buffer.byteLength(body))
      const { again, stopped } = readItems(res, pending, report, {
        stop: (status, e) => {
          const cause = stopCause(status, e?.type)
          return this.peer.stop(cause === 'credentials' ? SinkStopCode.elasticsearchCredentials : SinkStopCode.elasticsearchCluster,
            `Elasticsearch refused a document for a reason that is not the document's (HTTP ${status} ${reasonOf(e)}): ${cause === 'credentials' ? 'check the credentials and their privileges (create_doc and auto_configure on logs-cloudflare.*)' : 'check the data stream, its backing index and the cluster (blocks, disk watermarks, action.auto_create_index)'}`)
        },
        reject: (item, e) => { rejected.push({ dataset, sink: this.sinkName, code: LineRejectCode.mapping, reason: reasonOf(e), raw: item.raw }) }
      })
      if (stopped) throw stopped
      this.peer.taking()
      pending = again
      if (pending.length > 0) await this.peer.pause(attempt, deadline, signal, new Error(`${pending.length} items answered 429/5xx`))
    }
  }

  private bulkBody(index: string, items: readonly Item[]): string {
    let body = ''
    for (const item of items) body += `{"create":{"_index":"${index}","_id":"${item.id}"}}\n${item.doc}\n`
    return body
  }
}
