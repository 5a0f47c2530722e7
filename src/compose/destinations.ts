// The destinations as one part of the service: each configured sink behind its forwarder. Created
// from validated configuration (sinks constructed, nothing contacted); started by loading every
// checkpoint before any forwarder runs; each sink then sets itself up in the background.
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { Config, DatasetRoute } from '../config/index.js'
import type { Component } from '../lifecycle.js'
import type { Dataset } from '../pipeline/index.js'
import { Forwarder, type DeadLetter, type Spool } from '../spool/index.js'
import type { ForwarderOptions } from '../spool/forwarder.js'
import { RoutingSink, describeShaping, schemasForElasticsearch, shapeFor, type Routers, type Shapers } from '../shaping/index.js'
import { FileSink, DiscardSink, type RotatingFiles, type Rejection, type Sink } from '../sinks/index.js'
import { loadExtraSinks } from '../sinks/extra.js'
import type { Stats } from '../observability/index.js'
import type { RecentDeadLetters } from '../status/index.js'
import { sinkSourcetypes, type SplunkSourcetypes } from '../splunk-sourcetypes.js'

export interface SinkContext {
  readonly dataDir: string
  readonly rotation: { rotateBytes: number, rotateMs: number, gzipRotated: boolean, log: Logger }
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly log: Logger
  readonly splunkSourcetypes: SplunkSourcetypes
  readonly ecsDir: string
  readonly shapers: Shapers
}

export async function createSinks(config: Config, ctx: SinkContext): Promise<Sink[]> {
  // The names and the namespace were checked against their patterns in config.
  const names = config.sinks.split(',')
  const { ElasticsearchSink, loadEcs } = names.includes('elasticsearch') ? await import('../sinks/elasticsearch/index.js') : { ElasticsearchSink: null, loadEcs: null }
  const { SplunkHecSink } = names.includes('splunk') ? await import('../sinks/splunk-hec/index.js') : { SplunkHecSink: null }
  const extra = await loadExtraSinks(config, names, ctx)
  /** A per-dataset value from CONFIG_FILE's routes, for the datasets that set it. */
  const perDataset = (pick: (r: DatasetRoute) => string | undefined): Map<string, string> =>
    new Map(Object.entries(config.routes).flatMap(([d, r]) => { const v = pick(r); return v ? [[d, v]] : [] }))
  return [...new Set(names)].map((name): Sink => {
    if (name === 'file') return new FileSink({ ...ctx.rotation, dir: join(ctx.dataDir, 'events') })
    if (name === 'discard') return new DiscardSink()
    const built = extra.get(name)
    if (built) return built
    if (name === 'splunk' && SplunkHecSink) {
      return new SplunkHecSink({
        url: config.splunkHecUrl,
        token: config.splunkHecToken,
        caFile: config.splunkHecCaFile,
        tlsVerify: config.splunkHecTlsVerify,
        sourcetype: config.splunkHecSourcetype !== '' ? config.splunkHecSourcetype : ctx.splunkSourcetypes.default,
        source: config.splunkHecSource,
        host: config.splunkHecHost,
        defaultIndex: config.splunkHecIndex,
        indexes: perDataset((r) => r.splunk?.index),
        sourcetypes: sinkSourcetypes(ctx.splunkSourcetypes, ctx.datasets.keys(), config.splunkHecSourcetype, perDataset((r) => r.splunk?.sourcetype)),
        sources: perDataset((r) => r.splunk?.source),
        batchBytes: config.splunkHecBatchBytes,
        gzip: config.splunkHecGzip,
        retryMs: config.splunkHecRetryMs,
        requestTimeoutMs: config.splunkHecRequestTimeoutMs,
        ack: config.splunkHecAck,
        ackPollMs: config.splunkHecAckPollMs,
        ackTimeoutMs: config.splunkHecAckTimeoutMs,
        eventTimeFields: new Map([...ctx.datasets].map(([k, d]) => [k, d.eventTimeField])),
        log: ctx.log.child({ sink: 'splunk' })
      })
    }
    if (!ElasticsearchSink || !loadEcs) throw new Error(`unknown destination ${name}`)
    return new ElasticsearchSink({
      url: config.elasticsearchUrl,
      apiKey: config.elasticsearchApiKey,
      username: config.elasticsearchUsername,
      password: config.elasticsearchPassword,
      caFile: config.elasticsearchCaFile,
      tlsVerify: config.elasticsearchTlsVerify,
      namespace: config.elasticsearchNamespace,
      namespaces: perDataset((r) => r.elasticsearch?.namespace),
      bulkBytes: config.elasticsearchBulkBytes,
      concurrency: config.elasticsearchBulkConcurrency,
      retryMs: config.elasticsearchRetryMs,
      requestTimeoutMs: config.elasticsearchRequestTimeoutMs,
      modes: { indexMode: config.elasticsearchIndexMode as 'standard' | 'logsdb', sourceMode: config.elasticsearchSourceMode as 'stored' | 'synthetic' },
      dataRetention: config.elasticsearchDataRetention,
      // A field this destination gets hashed or masked is mapped as a keyword, not an ip (src/shaping).
      datasets: schemasForElasticsearch(ctx.datasets, ctx.shapers),
      ecs: loadEcs(ctx.ecsDir),
      format: config.elasticsearchFormat as 'ecs' | 'elastic-integration',
      log: ctx.log.child({ sink: 'elasticsearch' })
    })
  })
}

/**
 * Lines a destination refused for good, as dead-letter text per dataset with counts per code.
 * One pass, each line appended once: O(1) per rejection however many a delivery has.
 */
export function groupDeliveryDeadLetters(rejected: readonly Rejection[], time: string): Map<string, { text: string, byCode: Map<string, number> }> {
  const out = new Map<string, { lines: string[], byCode: Map<string, number> }>()
  for (const r of rejected) {
    let group = out.get(r.dataset)
    if (!group) out.set(r.dataset, (group = { lines: [], byCode: new Map() }))
    group.lines.push(JSON.stringify({ time, dataset: r.dataset, stage: 'delivery', code: r.code, reason: r.reason, sink: r.sink, raw: r.raw } satisfies DeadLetter))
    group.byCode.set(r.code, (group.byCode.get(r.code) ?? 0) + 1)
  }
  return new Map([...out].map(([dataset, g]) => [dataset, { text: g.lines.join('\n') + '\n', byCode: g.byCode }]))
}

export interface Destinations extends Component {
  readonly forwarders: readonly Forwarder[]
  health(): Record<string, unknown>
  /** Resolves true once every destination has everything spooled so far. */
  drained(timeoutMs: number): Promise<boolean>
  /** Resolves true once every destination has set itself up. */
  setUp(timeoutMs: number): Promise<boolean>
}

export interface DestinationsOptions {
  readonly spool: Spool
  readonly sinks: readonly Sink[]
  readonly deadLetters: RotatingFiles
  readonly recentDeadLetters: RecentDeadLetters
  readonly stats: Stats
  readonly log: Logger
  /** The time close() may spend delivering what is spooled; the rest stays spooled. */
  readonly graceMs: () => number
  /** CONFIG_FILE shaping and routing, checked against the schemas when they were built. */
  readonly shapers: Shapers
  readonly routers: Routers
  /** A tenant's routes, when tokens name tenants (CONFIG_FILE tokens). */
  readonly tenantRoute?: ForwarderOptions['tenantRoute']
}

export function createDestinations(config: Config, o: DestinationsOptions): Destinations {
  const counted = (sink: string) => (dataset: string, rule: string, outcome: string, n: number): void => o.stats.countShaped(sink, dataset, rule, outcome, n)
  // A destination with routing delivers each batch once per tenant it holds (src/shaping/route.ts).
  const routed = (sink: Sink): Sink => {
    const bySet = o.routers.get(sink.name)
    return bySet ? new RoutingSink(sink, bySet, counted(sink.name)) : sink
  }
  const sinks = o.sinks.map(routed)
  const forwarders = sinks.map((sink) => new Forwarder({
    spool: o.spool,
    sink,
    log: o.log,
    ...(o.tenantRoute ? { tenantRoute: o.tenantRoute } : {}),
    shape: shapeFor(sink.name, o.shapers, counted(sink.name)),
    shaping: [describeShaping(sink.name, o.shapers), sink instanceof RoutingSink ? `routing: ${sink.describe()}` : undefined].filter(Boolean).join('; ') || undefined,
    accepts: (dataset) => config.routes[dataset]?.sinks?.includes(sink.name) ?? true,
    retryMaxMs: config.deliveryRetryMaxMs,
    onDelivered: (dataset, r, seconds) => o.stats.countDelivery(sink.name, dataset, r, seconds),
    async deadLetter(rejected) {
      const time = new Date().toISOString()
      for (const [dataset, group] of groupDeliveryDeadLetters(rejected, time)) {
        await o.deadLetters.appendText(dataset, group.text)
        for (const [code, n] of group.byCode) o.stats.dataset(dataset).countRejected(code, n)
      }
      // The status page's ring keeps the newest few per dataset: only those are looked at.
      const newest = new Map<string, Rejection[]>()
      for (let i = rejected.length - 1; i >= 0; i--) {
        const r = rejected[i]!
        const kept = newest.get(r.dataset) ?? []
        if (kept.length < config.statusDeadLettersKept) newest.set(r.dataset, [r, ...kept])
      }
      for (const [dataset, group] of newest) {
        for (const r of group) o.recentDeadLetters.note(dataset, { time, stage: 'delivery', code: r.code, reason: r.reason, sink: r.sink, raw: r.raw })
      }
    }
  }))
  const started: Forwarder[] = []
  return {
    name: 'destinations',
    forwarders,
    async start() {
      // Every destination registers its checkpoint before any delivers: otherwise the first one
      // could have segments deleted that a later one still needs.
      o.spool.expectConsumers(forwarders.map((f) => f.name))
      for (const f of forwarders) await f.loadCheckpoint()
      for (const f of forwarders) { f.start(); started.push(f) }
    },
    async setUp(timeoutMs) {
      const end = Date.now() + timeoutMs
      while (!forwarders.every((f) => f.ready)) {
        if (Date.now() >= end) return false
        await sleep(25)
      }
      return true
    },
    async drained(timeoutMs) {
      const results = await Promise.all(forwarders.map((f) => f.drained(timeoutMs)))
      return results.every(Boolean)
    },
    async close() {
      // Deliver what the destinations take within the grace period; the rest stays spooled.
      const end = Date.now() + o.graceMs()
      await Promise.all(started.map((f) => f.drained(Math.max(0, end - Date.now()))))
      await Promise.all(started.map((f) => f.stop(Math.max(0, end - Date.now()))))
      // A sink never started holds nothing but may hold a client: closed all the same.
      await Promise.all(sinks.filter((s) => !started.some((f) => f.name === s.name)).map((s) => s.close()))
    },
    health: () => Object.fromEntries(forwarders.map((f) => [f.name, f.status()]))
  }
}
