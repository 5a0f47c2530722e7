// Delivers a staged batch to Elasticsearch data streams with _bulk `create` and deterministic ids:
// whatever is retried or re-sent lands once. Item and request failures are classified by
// classify.ts; retries back off with jitter within a time budget, after which the batch fails
// as a whole (the spool retries it, and what was already stored comes back as 409s). Each bulk is
// sent by halving.ts, which halves a request refused whole to find the documents responsible. A
// document refused for good (mapping, alone over the request size limit, or alone making
// Elasticsearch refuse the whole request for its content) is dead-lettered as soon as the bulks
// before it are done; a refusal that is not the document's (credentials, privileges, the data
// stream, a cluster block) stops delivery with DeliveryStopped and shows in health().
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, errors } from '@elastic/elasticsearch'
import type { Logger } from 'pino'
import type { DatasetSchema } from '../../dataset-schema.js'
import { SinkStopCode } from '../../errors.js'
import { DeliveryStopped, type DeliveryBatch, type DeliveryResult, type Progress, type Sink, type StoppedState } from '../sink.js'
import { describe } from './answers.js'
import { nextStopped, requestRefusal } from '../bulk/answers.js'
import { backoffMs, classifyRequest } from './classify.js'
import { deliverInBulks } from '../bulk/window.js'
import { BulkSender, type BulkResponse, type Counts } from './halving.js'
import { documentId, documentText, integrationDocumentText } from './document.js'
import { compileEcs, type EcsBuilder, type EcsSet } from './ecs.js'
import { dataStreamName, indexTemplate, integrationDataStreamName, templateName, type StorageModes } from './mapping.js'

export interface ElasticsearchSinkOptions {
  readonly url: string
  readonly apiKey: string
  readonly username: string
  readonly password: string
  readonly caFile: string
  readonly tlsVerify: boolean
  readonly namespace: string
  /** Per-dataset namespaces (CONFIG_FILE); `namespace` for the others. */
  readonly namespaces?: ReadonlyMap<string, string>
  readonly bulkBytes: number
  readonly concurrency: number
  readonly retryMs: number
  readonly requestTimeoutMs: number
  /** index.mode and index.mapping.source.mode of our templates; standard and stored when absent. */
  readonly modes?: StorageModes
  /** Data stream lifecycle retention ("30d"); empty: none. */
  readonly dataRetention?: string
  readonly datasets: ReadonlyMap<string, DatasetSchema>
  /** ECS mappings from schemas/ecs; absent: documents carry only the fields every document gets. */
  readonly ecs?: EcsSet
  /** `ecs` (ours) or `elastic-integration` (Elastic's data streams and document shape where it covers the dataset). */
  readonly format?: 'ecs' | 'elastic-integration'
  readonly log: Logger
}

export class ElasticsearchSink implements Sink {
  readonly name = 'elasticsearch'
  /** Every line has a deterministic _id: a replay from an older checkpoint writes nothing twice. */
  readonly replaysWithoutDuplicates = true
  readonly client: Client
  private templates: Promise<void> | null = null
  private readonly builders = new Map<string, EcsBuilder>()
  private readonly sender: BulkSender

  constructor (private readonly opts: ElasticsearchSinkOptions) {
    const auth = opts.apiKey ? { apiKey: opts.apiKey } : opts.username ? { username: opts.username, password: opts.password } : undefined
    this.client = new Client({
      node: opts.url,
      ...(auth ? { auth } : {}),
      tls: { ...(opts.caFile ? { ca: readFileSync(opts.caFile) } : {}), rejectUnauthorized: opts.tlsVerify },
      // Retries are ours (with backoff, 429 included, and 413 splitting); the transport's own
      // would retry 502/503/504 at once and hide the attempts from our budget.
      maxRetries: 0,
      requestTimeout: opts.requestTimeoutMs,
      compression: false
    })
    for (const [dataset, mapping] of opts.ecs?.mappings ?? []) this.builders.set(dataset, compileEcs(mapping, opts.ecs!.types))
    this.sender = new BulkSender({
      bulk: (body, signal) => this.bulk(body, signal),
      pause: (attempt, deadline, signal, cause) => this.pause(attempt, deadline, signal, cause),
      stop: (code, message) => this.stop(code, message),
      requestStopped: (err) => this.requestStopped(err),
      unreachable: () => { this.unreachable = true },
      taking: () => { this.stopped = null }
    }, this.name)
  }

  /** Elastic's stream for the dataset when this sink writes for Elastic's integration and it covers the dataset. */
  private integrationStream(dataset: string): string | null {
    return this.opts.format === 'elastic-integration' ? this.opts.ecs?.mappings.get(dataset)?.elastic ?? null : null
  }

  /** Installs the index templates; if Elasticsearch is not up yet, delivery tries again later. */
  async init(_state?: unknown, signal?: AbortSignal): Promise<void> {
    // Nothing to recover: replaying a batch only meets 409s for what is already stored.
    // The forwarder runs this in the background and aborts it at shutdown (an Elasticsearch that
    // never answers must hold up neither the start nor the stop).
    await this.ensureTemplates(signal).catch((err: unknown) => {
      this.opts.log.error({ err: describe(err) }, 'Could not install the Elasticsearch index templates yet; will retry before the next delivery.')
    })
    if (this.opts.format === 'elastic-integration') await this.checkIntegrationAssets(signal).catch(() => {})
  }

  /** Says once, at start, which of Elastic's data streams lack the integration's templates (then nothing parses `message`). */
  private async checkIntegrationAssets(signal?: AbortSignal): Promise<void> {
    const streams = [...this.opts.datasets.keys()].map((d) => this.integrationStream(d)).filter((s): s is string => s !== null)
    if (streams.length === 0) return
    const res = await this.client.transport.request<{ index_templates?: Array<{ name: string }> }>(
      { method: 'GET', path: '/_index_template/logs-cloudflare_logpush.*' }, { ignore: [404], maxRetries: 0, ...(signal ? { signal } : {}) })
    const installed = new Set((res.index_templates ?? []).map((t) => t.name))
    const missing = streams.filter((s) => !installed.has(`logs-cloudflare_logpush.${s}`))
    if (missing.length > 0) {
      this.opts.log.warn({ streams: missing }, 'ELASTICSEARCH_FORMAT=elastic-integration but Elastic\'s Cloudflare Logpush integration assets are not installed for these streams; their documents stay unparsed until it is.')
    }
  }

  private ensureTemplates(signal?: AbortSignal): Promise<void> {
    this.templates ??= (async () => {
      // Each template put is a cluster-state update (seconds on a busy node, times 37 datasets):
      // read what is installed in one request and put only the templates whose content changed.
      const installed = new Map<string, unknown>()
      const found = await this.client.indices.getIndexTemplate({ name: `${templateName('*')}` }, { ignore: [404], ...(signal ? { signal } : {}) })
      for (const t of (found as { index_templates?: Array<{ name: string, index_template: { _meta?: { hash?: unknown } } }> }).index_templates ?? []) {
        installed.set(t.name, t.index_template._meta?.hash)
      }
      for (const [dataset, schema] of this.opts.datasets) {
        // Elastic's integration owns the templates of its data streams: ours would fight its mappings and pipelines.
        if (this.integrationStream(dataset)) continue
        const ecs = this.opts.ecs ? { mapping: this.opts.ecs.mappings.get(dataset), types: this.opts.ecs.types } : undefined
        const template = indexTemplate(dataset, schema, { dataRetention: this.opts.dataRetention, ...(ecs ? { ecs } : {}), ...(this.opts.modes ? { modes: this.opts.modes } : {}) })
        const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex')
        if (installed.get(templateName(dataset)) === hash) continue
        const meta = { ...(template._meta as Record<string, unknown>), hash }
        await this.client.indices.putIndexTemplate({ name: templateName(dataset), ...template, _meta: meta } as never, signal ? { signal } : {})
      }
    })().catch((err: unknown) => {
      this.templates = null
      throw err
    })
    return this.templates
  }

  async deliver(batch: DeliveryBatch, progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const deadline = Date.now() + this.opts.retryMs
    await this.retrying(deadline, signal, () => this.ensureTemplates(signal))
    // After a failed delivery, make sure the node answers at all before reading and converting
    // the batch again: an outage then costs one small request per retry, not a bulk's worth of
    // documents built and thrown away.
    if (this.unreachable) await this.retrying(deadline, signal, () => this.reachable(signal))
    const schema = this.opts.datasets.get(batch.dataset)
    if (!schema) throw new Error(`no schema for dataset ${batch.dataset}`)
    const namespace = batch.route?.namespace ?? this.opts.namespaces?.get(batch.dataset) ?? this.opts.namespace
    const stream = this.integrationStream(batch.dataset)
    const ecs = this.builders.get(batch.dataset)
    const ctx = {
      dataset: batch.dataset,
      namespace,
      eventTimeField: schema['x-event-time'],
      ingested: new Date().toISOString(),
      ...(ecs ? { ecs } : {})
    }
    const index = stream ? integrationDataStreamName(stream, namespace) : dataStreamName(batch.dataset, namespace)
    const toDocument = stream
      ? (line: string, record: Record<string, unknown>) => integrationDocumentText(line, record, { stream, namespace, eventTimeField: ctx.eventTimeField, ingested: ctx.ingested })
      : (line: string, record: Record<string, unknown>) => documentText(line, record, ctx)
    const report: Counts = { delivered: 0, duplicates: 0 }
    await deliverInBulks(batch, progress, {
      bulkBytes: this.opts.bulkBytes,
      concurrency: this.opts.concurrency,
      toDocument,
      idOf: (stored) => documentId(batch.dataset, stored),
      send: (items) => this.sender.send(index, batch.dataset, items, report, deadline, signal)
    })
    return { ...report, rejected: [] }
  }

  private stopped: StoppedState | null = null

  /** Records why delivery stopped (for /health) and returns the error to throw. */
  private stop(code: string, message: string): DeliveryStopped {
    this.stopped = nextStopped(this.stopped, code, message)
    return new DeliveryStopped(code, message)
  }

  private requestStopped(err: errors.ResponseError): DeliveryStopped {
    const credentials = requestRefusal(err.statusCode, err.body) === 'credentials'
    return this.stop(credentials ? SinkStopCode.elasticsearchCredentials : SinkStopCode.elasticsearchCluster,
      `Elasticsearch refused the request (${describe(err)}): ${credentials ? 'check the credentials and their privileges' : 'check the cluster (blocks, disk watermarks) and the URL'}`)
  }

  health(): Record<string, unknown> {
    return { stopped: this.stopped }
  }

  private unreachable = false

  /** Any HTTP answer (even 405 to HEAD /) means the node is there; only a failed connection does not. */
  private async reachable(signal?: AbortSignal): Promise<void> {
    try {
      await this.client.transport.request({ method: 'HEAD', path: '/' }, { signal, maxRetries: 0 })
    } catch (err) {
      if (!(err instanceof errors.ResponseError)) throw err
    }
    this.unreachable = false
  }

  private async pause(attempt: number, deadline: number, signal: AbortSignal | undefined, cause: unknown): Promise<void> {
    const wait = backoffMs(attempt)
    if (Date.now() + wait > deadline) throw new Error(`Elasticsearch did not take the batch within the retry budget: ${describe(cause)}`)
    this.opts.log.warn({ attempt, waitMs: wait, err: describe(cause) }, 'Elasticsearch is not taking the batch; retrying.')
    await sleep(wait, undefined, { signal })
  }

  private async retrying<T>(deadline: number, signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn()
      } catch (err) {
        const status = err instanceof errors.ResponseError ? err.statusCode : undefined
        const verdict = classifyRequest(status)
        if (verdict === 'stop' && err instanceof errors.ResponseError) throw this.requestStopped(err)
        if (verdict !== 'retry') throw err
        await this.pause(attempt, deadline, signal, err)
      }
    }
  }

  private async bulk(body: string, signal?: AbortSignal): Promise<BulkResponse> {
    return await this.client.transport.request<BulkResponse>({
      method: 'POST',
      path: '/_bulk',
      bulkBody: body,
      // Keep items positional (a filter on errors only would drop the successful ones).
      querystring: { filter_path: 'errors,items.*.status,items.*.error' }
    }, { signal, maxRetries: 0 })
  }

  async close(): Promise<void> {
    await this.client.close()
  }
}
