// Delivers a staged batch to OpenSearch data streams with _bulk `create` and deterministic ids,
// like the Elasticsearch destination: what is retried or re-sent lands once (409 = already
// stored). The verdicts on item and request failures are the Elasticsearch destination's
// (classify.ts there): OpenSearch answers with the same statuses and error types. Up to
// OPENSEARCH_BULK_CONCURRENCY bulks are in flight; the batch is checkpointed after each bulk once
// every bulk before it is done too, its refused lines dead-lettered first.
//
// Amazon OpenSearch Serverless (OPENSEARCH_AWS_SERVICE=aoss) refuses a custom _id on time-series
// collections and has no ISM: there documents are indexed without _id (a re-sent batch is
// stored again: at least once), and no ISM policy is installed (retention is the collection's
// data lifecycle policy).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, errors } from '@opensearch-project/opensearch'
import type { Logger } from 'pino'
import type { DatasetSchema } from '../../dataset-schema.js'
import { LineRejectCode, SinkStopCode } from '../../errors.js'
import { DeliveryStopped, type DeliveryBatch, type DeliveryResult, type Progress, type Rejection, type Sink, type StoppedState } from '../sink.js'
import { nextStopped, readItems, reasonOf, requestRefusal, type BulkResponse } from '../bulk/answers.js'
import { deliverInBulks, type Counts, type Item } from '../bulk/window.js'
import { backoffMs, classifyRequest, oneTooLarge, stopCause } from '../elasticsearch/classify.js'
import { documentId, documentText } from '../elasticsearch/document.js'
import { compileEcs, type EcsBuilder, type EcsSet } from '../elasticsearch/ecs.js'
import { awsSigv4, type AwsService } from './sigv4.js'
import { dataStreamName, ismPolicy, ISM_POLICY_ID, openSearchTemplate, templateName } from './mapping.js'

export interface OpenSearchSinkOptions {
  readonly url: string
  readonly auth: 'none' | 'basic' | 'aws-sigv4'
  readonly username: string
  readonly password: string
  readonly caFile: string
  readonly tlsVerify: boolean
  /** With aws-sigv4: es (Amazon OpenSearch Service) or aoss (Serverless). */
  readonly awsService: AwsService
  readonly awsRegion: string
  readonly namespace: string
  readonly bulkBytes: number
  /** _bulk requests in flight per batch (OPENSEARCH_BULK_CONCURRENCY). */
  readonly concurrency: number
  readonly retryMs: number
  readonly requestTimeoutMs: number
  /** Deletes a backing index this long after its rollover ("30d"); empty: never. */
  readonly dataRetention: string
  readonly datasets: ReadonlyMap<string, DatasetSchema>
  readonly ecs?: EcsSet
  readonly log: Logger
  /** Tests: the AWS credentials instead of the standard chain. */
  readonly awsCredentials?: () => Promise<{ accessKeyId: string, secretAccessKey: string, sessionToken?: string }>
}

export class OpenSearchSink implements Sink {
  readonly name = 'opensearch'
  readonly client: Client
  private readonly serverless: boolean
  /**
   * Every line has a deterministic _id: a replay from an older checkpoint writes nothing twice;
   * but not on Serverless (no _id there), whose checkpoints are written per batch.
   */
  get replaysWithoutDuplicates(): boolean { return !this.serverless }
  private templates: Promise<void> | null = null
  private readonly builders = new Map<string, EcsBuilder>()
  private largestAccepted = 0
  private stopped: StoppedState | null = null
  private unreachable = false

  constructor (private readonly opts: OpenSearchSinkOptions) {
    this.serverless = opts.auth === 'aws-sigv4' && opts.awsService === 'aoss'
    this.client = new Client({
      node: opts.url,
      ...(opts.auth === 'basic' ? { auth: { username: opts.username, password: opts.password } } : {}),
      ...(opts.auth === 'aws-sigv4' ? awsSigv4(opts.awsRegion, opts.awsService, opts.awsCredentials) : {}),
      ssl: { ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}), rejectUnauthorized: opts.tlsVerify },
      // Retries are ours (backoff within a budget, 413 halving), as for Elasticsearch.
      maxRetries: 0,
      requestTimeout: opts.requestTimeoutMs,
      compression: undefined
    })
    for (const [dataset, mapping] of opts.ecs?.mappings ?? []) this.builders.set(dataset, compileEcs(mapping, opts.ecs!.types))
  }

  async init (): Promise<void> {
    await this.ensureTemplates().catch((err: unknown) => {
      this.opts.log.error({ err: describe(err) }, 'Could not install the OpenSearch index templates yet; will retry before the next delivery.')
    })
  }

  private ensureTemplates (): Promise<void> {
    this.templates ??= (async () => {
      // One read of what is installed; a put only for a template whose content changed.
      const installed = new Map<string, unknown>()
      const found = await this.request<{ index_templates?: Array<{ name: string, index_template: { _meta?: { hash?: unknown } } }> }>(
        { method: 'GET', path: `/_index_template/${templateName('*')}` }, [404])
      for (const t of found.index_templates ?? []) installed.set(t.name, t.index_template._meta?.hash)
      for (const [dataset, schema] of this.opts.datasets) {
        const ecs = this.opts.ecs ? { mapping: this.opts.ecs.mappings.get(dataset), types: this.opts.ecs.types } : undefined
        const template = openSearchTemplate(dataset, schema, ecs ? { ecs } : {})
        const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex')
        if (installed.get(templateName(dataset)) === hash) continue
        const body = { ...template, _meta: { ...(template._meta as Record<string, unknown>), hash } }
        await this.request({ method: 'PUT', path: `/_index_template/${templateName(dataset)}`, body })
      }
      if (!this.serverless) await this.ensureIsmPolicy()
    })().catch((err: unknown) => {
      this.templates = null
      throw err
    })
    return this.templates
  }

  /** Installs or updates the ISM policy; a cluster without the ISM plugin gets a warning, not a stop. */
  private async ensureIsmPolicy (): Promise<void> {
    const path = `/_plugins/_ism/policies/${ISM_POLICY_ID}`
    const policy = ismPolicy(this.opts.dataRetention)
    let current: { _seq_no?: number, _primary_term?: number, policy?: { description?: string, states?: unknown, ism_template?: unknown } } | undefined
    try {
      current = await this.request({ method: 'GET', path }, [404])
    } catch (err) {
      // No handler for the path: the distribution has no index-management plugin.
      if (err instanceof errors.ResponseError && err.statusCode === 400) {
        this.opts.log.warn('OpenSearch has no ISM plugin (index management): the data streams are not rolled over or deleted by this service.')
        return
      }
      throw err
    }
    const wanted = policy.policy as { description: string, states: unknown, ism_template: unknown }
    if (current?.policy && JSON.stringify([current.policy.description, current.policy.states]) === JSON.stringify([wanted.description, wanted.states])) return
    const query = current?._seq_no !== undefined ? `?if_seq_no=${current._seq_no}&if_primary_term=${current._primary_term}` : ''
    await this.request({ method: 'PUT', path: `${path}${query}`, body: policy })
  }

  async deliver (batch: DeliveryBatch, progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const deadline = Date.now() + this.opts.retryMs
    await this.retrying(deadline, signal, () => this.ensureTemplates())
    if (this.unreachable) await this.retrying(deadline, signal, () => this.reachable())
    const schema = this.opts.datasets.get(batch.dataset)
    if (!schema) throw new Error(`no schema for dataset ${batch.dataset}`)
    const ecs = this.builders.get(batch.dataset)
    // A tenant's batch (src/shaping/route.ts) goes to the tenant's namespace, as for Elasticsearch.
    const namespace = batch.route?.namespace ?? this.opts.namespace
    const ctx = { dataset: batch.dataset, namespace, eventTimeField: schema['x-event-time'], ingested: new Date().toISOString(), ...(ecs ? { ecs } : {}) }
    const index = dataStreamName(batch.dataset, namespace)
    const report: Counts = { delivered: 0, duplicates: 0 }
    // As for Elasticsearch: up to `concurrency` bulks in flight, checkpointed in order (src/sinks/bulk/window.ts).
    await deliverInBulks(batch, progress, {
      bulkBytes: this.opts.bulkBytes,
      concurrency: this.opts.concurrency,
      toDocument: (line, record) => documentText(line, record, ctx),
      idOf: (stored) => documentId(batch.dataset, stored),
      send: async (items) => {
        const rejected: Rejection[] = []
        await this.sendChunk(index, batch.dataset, items, rejected, report, deadline, signal)
        return rejected
      }
    })
    return { ...report, rejected: [] }
  }

  private async sendChunk (index: string, dataset: string, items: Item[], rejected: Rejection[], report: Counts, deadline: number, signal?: AbortSignal): Promise<void> {
    const oversized: Array<{ item: Item, bytes: number }> = []
    await this.sendWithRetries(index, dataset, items, rejected, oversized, report, deadline, signal)
    for (const { item, bytes } of oversized) {
      if (oneTooLarge(bytes, this.largestAccepted, items.length === 1) === 'stop') {
        throw this.stop(SinkStopCode.opensearchCluster, `OpenSearch answered 413 to a request of one ${bytes}-byte document, though ${this.largestAccepted > 0 ? `it took a ${this.largestAccepted}-byte request before` : 'it took none of the other documents of the bulk'}: check http.max_content_length and any proxy's body limit`)
      }
      rejected.push({ dataset, sink: this.name, code: LineRejectCode.opensearchTooLarge, reason: `HTTP 413: the document makes a ${bytes}-byte _bulk request, over OpenSearch's request size limit; the largest request it took was ${this.largestAccepted} bytes`, raw: item.raw })
    }
  }

  private async sendWithRetries (index: string, dataset: string, items: Item[], rejected: Rejection[], oversized: Array<{ item: Item, bytes: number }>, report: Counts, deadline: number, signal?: AbortSignal): Promise<void> {
    let pending = items
    for (let attempt = 0; pending.length > 0; attempt++) {
      const body = this.bulkBody(index, pending)
      let res: BulkResponse
      try {
        res = await this.request<BulkResponse>({ method: 'POST', path: '/_bulk', bulkBody: body, querystring: { filter_path: 'errors,items.*.status,items.*.error' } }, [], signal)
      } catch (err) {
        const status = err instanceof errors.ResponseError ? err.statusCode : undefined
        if (status === undefined) this.unreachable = true
        const verdict = classifyRequest(status)
        if (verdict === 'split') {
          if (pending.length === 1) { oversized.push({ item: pending[0]!, bytes: Buffer.byteLength(body) }); return }
          const half = Math.ceil(pending.length / 2)
          await this.sendWithRetries(index, dataset, pending.slice(0, half), rejected, oversized, report, deadline, signal)
          await this.sendWithRetries(index, dataset, pending.slice(half), rejected, oversized, report, deadline, signal)
          return
        }
        if (verdict === 'stop' && err instanceof errors.ResponseError) throw this.requestStopped(err)
        if (!transient(err)) throw err
        await this.pause(attempt, deadline, signal, err)
        continue
      }
      this.largestAccepted = Math.max(this.largestAccepted, Buffer.byteLength(body))
      const { again, stopped } = readItems(res, pending, report, {
        stop: (status, e) => {
          const credentials = stopCause(status, e?.type) === 'credentials'
          return this.stop(credentials ? SinkStopCode.opensearchCredentials : SinkStopCode.opensearchCluster,
            `OpenSearch refused a document for a reason that is not the document's (HTTP ${status} ${reasonOf(e)}): ${credentials ? 'check the credentials and their permissions (indices:data/write/bulk* and indices:admin/create on logs-cloudflare.*)' : 'check the data stream, its index template and the cluster (blocks, disk watermarks)'}`)
        },
        reject: (item, e) => { rejected.push({ dataset, sink: this.name, code: LineRejectCode.opensearchMapping, reason: reasonOf(e), raw: item.raw }) }
      })
      if (stopped) throw stopped
      this.stopped = null
      pending = again
      if (pending.length > 0) await this.pause(attempt, deadline, signal, new Error(`${pending.length} items answered 429/5xx`))
    }
  }

  private bulkBody (index: string, items: readonly Item[]): string {
    let body = ''
    for (const item of items) {
      body += this.serverless ? `{"create":{"_index":"${index}"}}\n${item.doc}\n` : `{"create":{"_index":"${index}","_id":"${item.id}"}}\n${item.doc}\n`
    }
    return body
  }

  /** One request, the client's retries off; the answer's body. */
  private async request<T = unknown> (params: { method: string, path: string, body?: unknown, bulkBody?: string, querystring?: Record<string, string> }, ignore: number[] = [], signal?: AbortSignal): Promise<T> {
    const pending = this.client.transport.request(params as never, { maxRetries: 0, ignore })
    const abort = (): void => pending.abort()
    signal?.addEventListener('abort', abort, { once: true })
    try {
      const res = await pending
      return res.body as T
    } finally {
      signal?.removeEventListener('abort', abort)
    }
  }

  /** Any HTTP answer means the node is there; only a failed connection does not. */
  private async reachable (): Promise<void> {
    try {
      await this.request({ method: 'HEAD', path: '/' })
    } catch (err) {
      if (!(err instanceof errors.ResponseError)) throw err
    }
    this.unreachable = false
  }

  private stop (code: string, message: string): DeliveryStopped {
    this.stopped = nextStopped(this.stopped, code, message)
    return new DeliveryStopped(code, message)
  }

  private requestStopped (err: errors.ResponseError): DeliveryStopped {
    const credentials = requestRefusal(err.statusCode, err.body) === 'credentials'
    return this.stop(credentials ? SinkStopCode.opensearchCredentials : SinkStopCode.opensearchCluster,
      `OpenSearch refused the request (${describe(err)}): ${credentials ? 'check the credentials (user and password, or the IAM role and its access policy / data access policy) and their permissions' : 'check the cluster (blocks, disk watermarks) and the URL'}`)
  }

  health (): Record<string, unknown> {
    return { stopped: this.stopped }
  }

  private async pause (attempt: number, deadline: number, signal: AbortSignal | undefined, cause: unknown): Promise<void> {
    const wait = backoffMs(attempt)
    if (Date.now() + wait > deadline) throw new Error(`OpenSearch did not take the batch within the retry budget: ${describe(cause)}`)
    this.opts.log.warn({ attempt, waitMs: wait, err: describe(cause) }, 'OpenSearch is not taking the batch; retrying.')
    await sleep(wait, undefined, { signal })
  }

  private async retrying<T> (deadline: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        const status = err instanceof errors.ResponseError ? err.statusCode : undefined
        if (status === undefined) this.unreachable = true
        const verdict = classifyRequest(status)
        if (verdict === 'stop' && err instanceof errors.ResponseError) throw this.requestStopped(err)
        if (verdict !== 'retry' || !transient(err)) throw err
        await this.pause(attempt, deadline, signal, err)
      }
    }
  }

  async close (): Promise<void> {
    await this.client.close()
  }
}

function transient (err: unknown): boolean {
  return err instanceof errors.ResponseError || err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError
}

function describe (err: unknown): string {
  if (err instanceof errors.ResponseError) return `HTTP ${err.statusCode}: ${JSON.stringify(err.body)?.slice(0, 300)}`
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
