// Delivers a staged batch to Elasticsearch data streams with _bulk `create` and deterministic ids:
// whatever is retried or re-sent lands once. Item and request failures are classified by
// classify.ts; retries back off with jitter within a time budget, after which the batch fails
// as a whole (the sender retries it, and what was already stored comes back as 409s).
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, errors } from '@elastic/elasticsearch'
import type { Logger } from 'pino'
import type { DatasetSchema } from '../../dataset-schema.js'
import { LineRejectCode } from '../../errors.js'
import type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink } from '../sink.js'
import { backoffMs, classifyItem, classifyRequest } from './classify.js'
import { documentId, documentText, integrationDocumentText } from './document.js'
import { compileEcs, type EcsBuilder, type EcsSet } from './ecs.js'
import { dataStreamName, indexTemplate, integrationDataStreamName, templateName } from './mapping.js'

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
  /** Data stream lifecycle retention ("30d"); empty: none. */
  readonly dataRetention?: string
  readonly datasets: ReadonlyMap<string, DatasetSchema>
  /** ECS mappings from schemas/ecs; absent: documents carry only the fields every document gets. */
  readonly ecs?: EcsSet
  /** `ecs` (ours) or `elastic-integration` (Elastic's data streams and document shape where it covers the dataset). */
  readonly format?: 'ecs' | 'elastic-integration'
  readonly log: Logger
}

interface Item {
  readonly id: string
  readonly raw: string
  readonly doc: string
}

interface BulkResponse {
  errors: boolean
  items: Array<Record<string, { status: number, error?: { type?: string, reason?: string, caused_by?: { reason?: string } } }>>
}

export class ElasticsearchSink implements Sink {
  readonly name = 'elasticsearch'
  readonly client: Client
  private templates: Promise<void> | null = null
  private readonly builders = new Map<string, EcsBuilder>()

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
  }

  /** Elastic's stream for the dataset when this sink writes for Elastic's integration and it covers the dataset. */
  private integrationStream(dataset: string): string | null {
    return this.opts.format === 'elastic-integration' ? this.opts.ecs?.mappings.get(dataset)?.elastic ?? null : null
  }

  /** Installs the index templates; if Elasticsearch is not up yet, delivery tries again later. */
  async init(): Promise<void> {
    // Nothing to recover: replaying a batch only meets 409s for what is already stored.
    await this.ensureTemplates().catch((err: unknown) => {
      this.opts.log.error({ err: describe(err) }, 'Could not install the Elasticsearch index templates yet; will retry before the next delivery.')
    })
    if (this.opts.format === 'elastic-integration') await this.checkIntegrationAssets().catch(() => {})
  }

  /** Says once, at start, which of Elastic's data streams lack the integration's templates (then nothing parses `message`). */
  private async checkIntegrationAssets(): Promise<void> {
    const streams = [...this.opts.datasets.keys()].map((d) => this.integrationStream(d)).filter((s): s is string => s !== null)
    if (streams.length === 0) return
    const res = await this.client.transport.request<{ index_templates?: Array<{ name: string }> }>(
      { method: 'GET', path: '/_index_template/logs-cloudflare_logpush.*' }, { ignore: [404], maxRetries: 0 })
    const installed = new Set((res.index_templates ?? []).map((t) => t.name))
    const missing = streams.filter((s) => !installed.has(`logs-cloudflare_logpush.${s}`))
    if (missing.length > 0) {
      this.opts.log.warn({ streams: missing }, 'ELASTICSEARCH_FORMAT=elastic-integration but Elastic\'s Cloudflare Logpush integration assets are not installed for these streams; their documents stay unparsed until it is.')
    }
  }

  private ensureTemplates(): Promise<void> {
    this.templates ??= (async () => {
      for (const [dataset, schema] of this.opts.datasets) {
        // Elastic's integration owns the templates of its data streams: ours would fight its mappings and pipelines.
        if (this.integrationStream(dataset)) continue
        const ecs = this.opts.ecs ? { mapping: this.opts.ecs.mappings.get(dataset), types: this.opts.ecs.types } : undefined
        await this.client.indices.putIndexTemplate({ name: templateName(dataset), ...indexTemplate(dataset, schema, { dataRetention: this.opts.dataRetention, ...(ecs ? { ecs } : {}) }) } as never)
      }
    })().catch((err: unknown) => {
      this.templates = null
      throw err
    })
    return this.templates
  }

  async deliver(batch: DeliveryBatch, _progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const deadline = Date.now() + this.opts.retryMs
    await this.retrying(deadline, signal, () => this.ensureTemplates())
    // After a failed delivery, make sure the node answers at all before reading and converting
    // the batch again: an outage then costs one small request per retry, not a bulk's worth of
    // documents built and thrown away.
    if (this.unreachable) await this.retrying(deadline, signal, () => this.reachable(signal))
    const schema = this.opts.datasets.get(batch.dataset)
    if (!schema) throw new Error(`no schema for dataset ${batch.dataset}`)
    const namespace = this.opts.namespaces?.get(batch.dataset) ?? this.opts.namespace
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
    const report = { delivered: 0, duplicates: 0, rejected: [] as Rejection[] }
    const inflight = new Set<Promise<void>>()
    let failure: unknown = null
    let chunk: Item[] = []
    let chunkBytes = 0

    const flush = async (): Promise<void> => {
      const items = chunk
      chunk = []
      chunkBytes = 0
      // Backpressure: no more lines are read while `concurrency` bulks are in flight.
      while (inflight.size >= this.opts.concurrency) await Promise.race(inflight)
      if (failure) throw failure
      const p = this.sendWithRetries(index, batch.dataset, items, report, deadline, signal)
        .catch((err: unknown) => { failure ??= err })
        .finally(() => inflight.delete(p))
      inflight.add(p)
    }

    for await (const line of batch.lines()) {
      if (failure) break
      if (line.length === 0) continue
      const record = JSON.parse(line) as Record<string, unknown>
      const doc = toDocument(line, record)
      chunk.push({ id: documentId(batch.dataset, line), raw: line, doc })
      chunkBytes += doc.length + 100
      if (chunkBytes >= this.opts.bulkBytes) await flush()
    }
    if (chunk.length > 0 && !failure) await flush()
    await Promise.all(inflight)
    if (failure) throw failure
    return report
  }

  private async sendWithRetries(index: string, dataset: string, items: Item[], report: { delivered: number, duplicates: number, rejected: Rejection[] }, deadline: number, signal?: AbortSignal): Promise<void> {
    let pending = items
    for (let attempt = 0; pending.length > 0; attempt++) {
      let res: BulkResponse
      try {
        res = await this.bulk(index, pending, signal)
      } catch (err) {
        if (!(err instanceof errors.ResponseError)) this.unreachable = true
        const verdict = classifyRequest(err instanceof errors.ResponseError ? err.statusCode : undefined)
        if (verdict === 'split' && pending.length > 1) {
          const half = Math.ceil(pending.length / 2)
          await this.sendWithRetries(index, dataset, pending.slice(0, half), report, deadline, signal)
          await this.sendWithRetries(index, dataset, pending.slice(half), report, deadline, signal)
          return
        }
        if (verdict !== 'retry' || !(err instanceof errors.ResponseError || err instanceof errors.ConnectionError || err instanceof errors.TimeoutError || err instanceof errors.NoLivingConnectionsError)) throw err
        await this.pause(attempt, deadline, signal, err)
        continue
      }
      const again: Item[] = []
      res.items.forEach((entry, i) => {
        const item = pending[i]!
        const result = Object.values(entry)[0]!
        switch (classifyItem(result.status)) {
          case 'created': report.delivered++; break
          case 'duplicate': report.duplicates++; break
          case 'retry': again.push(item); break
          case 'reject': {
            const e = result.error
            report.rejected.push({
              dataset,
              sink: this.name,
              code: LineRejectCode.mapping,
              reason: `${e?.type ?? 'error'}: ${e?.reason ?? 'rejected'}${e?.caused_by?.reason ? ` (${e.caused_by.reason})` : ''}`,
              raw: item.raw
            })
          }
        }
      })
      pending = again
      if (pending.length > 0) await this.pause(attempt, deadline, signal, new Error(`${pending.length} items answered 429/5xx`))
    }
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
        if (classifyRequest(status) !== 'retry') throw err
        await this.pause(attempt, deadline, signal, err)
      }
    }
  }

  private async bulk(index: string, items: readonly Item[], signal?: AbortSignal): Promise<BulkResponse> {
    let body = ''
    for (const item of items) body += `{"create":{"_index":"${index}","_id":"${item.id}"}}\n${item.doc}\n`
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

function describe(err: unknown): string {
  if (err instanceof errors.ResponseError) return `HTTP ${err.statusCode}: ${JSON.stringify(err.body)?.slice(0, 300)}`
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
