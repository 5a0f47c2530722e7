// Delivers a staged batch to Elasticsearch data streams with _bulk `create` and deterministic ids:
// whatever is retried or re-sent lands once. Item and request failures are classified by
// classify.ts; retries back off with jitter within a time budget, after which the batch fails
// as a whole (the sender retries it, and what was already stored comes back as 409s).
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import { Client, errors } from '@elastic/elasticsearch'
import type { Logger } from 'pino'
import type { DatasetSchema } from '../../dataset-schema.js'
import { LineRejectCode } from '../../errors.js'
import type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink } from '../sink.js'
import { backoffMs, classifyItem, classifyRequest } from './classify.js'
import { documentId, documentText } from './document.js'
import { dataStreamName, indexTemplate, templateName } from './mapping.js'

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
  }

  /** Installs the index templates; if Elasticsearch is not up yet, delivery tries again later. */
  async init(): Promise<void> {
    // Nothing to recover: replaying a batch only meets 409s for what is already stored.
    await this.ensureTemplates().catch((err: unknown) => {
      this.opts.log.error({ err: describe(err) }, 'Could not install the Elasticsearch index templates yet; will retry before the next delivery.')
    })
  }

  private ensureTemplates(): Promise<void> {
    this.templates ??= (async () => {
      // Each template put is a cluster-state update (seconds on a busy node, times 37 datasets):
      // read what is installed in one request and put only the templates whose content changed.
      const installed = new Map<string, unknown>()
      const found = await this.client.indices.getIndexTemplate({ name: `${templateName('*')}` }, { ignore: [404] })
      for (const t of (found as { index_templates?: Array<{ name: string, index_template: { _meta?: { hash?: unknown } } }> }).index_templates ?? []) {
        installed.set(t.name, t.index_template._meta?.hash)
      }
      for (const [dataset, schema] of this.opts.datasets) {
        const template = indexTemplate(dataset, schema, { dataRetention: this.opts.dataRetention })
        const hash = createHash('sha256').update(JSON.stringify(template)).digest('hex')
        if (installed.get(templateName(dataset)) === hash) continue
        const meta = { ...(template._meta as Record<string, unknown>), hash }
        await this.client.indices.putIndexTemplate({ name: templateName(dataset), ...template, _meta: meta } as never)
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
    const ctx = {
      dataset: batch.dataset,
      namespace,
      eventTimeField: schema['x-event-time'],
      ingested: new Date().toISOString()
    }
    const index = dataStreamName(batch.dataset, namespace)
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
      const doc = documentText(line, record, ctx)
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
