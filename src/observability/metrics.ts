// GET /metrics in the Prometheus text exposition format (version 0.0.4), through prom-client: one
// registry per app (tests build several in one process), its default process and Node.js metrics,
// and ours. Counters live in Stats (the same numbers /health shows) and are copied into prom-client
// at scrape time; gauges (spool, destinations) are read at scrape time too; the two histograms are
// prom-client's own, observed as requests and deliveries finish. Label values are the service's
// own (dataset and sink names, error codes, routes) or bounded (unknown field names,
// DRIFT_FIELDS_MAX per dataset), so cardinality stays small.
//
// Names docs/operations.md documents and prom-client's defaults: process_cpu_seconds_total,
// process_resident_memory_bytes and process_start_time_seconds are prom-client's (same names as
// before); nodejs_heap_used_bytes is ours, kept for existing dashboards, and equals prom-client's
// nodejs_heap_size_used_bytes.
import type { FastifyInstance } from 'fastify'
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client'
import type { Stats } from './stats.js'

export interface SinkGauges {
  readonly pendingLines: number
  readonly pendingBytes: number
  readonly oldestPendingAgeSeconds: number
  readonly failing: boolean
  /** The stop code while the destination refuses for a reason no line causes (see SinkStopCode), else null. */
  readonly stopped?: string | null
  /** False while the destination still sets itself up in the background (Elasticsearch's templates). */
  readonly setUp?: boolean
}

export interface SourceGauges {
  readonly seen: number
  readonly done: number
  readonly failed: number
  readonly up: boolean
  readonly newestDoneLagSeconds: number
}

/** The Logpush job watchdog's numbers (src/watchdog reports them in this shape). */
export interface WatchdogGauges {
  readonly jobs: ReadonlyArray<{
    readonly labels: { readonly job_id: string, readonly dataset: string, readonly scope: string, readonly scope_id: string }
    readonly enabled: boolean
    readonly failing: boolean
    readonly lagging: boolean
    readonly uploads: { readonly ok: number, readonly retried: number, readonly failed: number } | null
    readonly lastCompleteSeconds: number | null
    readonly lagSeconds: number | null
  }>
  readonly pollErrors: number
  readonly lastPollSeconds: number | null
}

export interface CollectorGauges {
  readonly dataset: string
  readonly records: number
  readonly lagSeconds: number
  readonly up: boolean
  /** Failures since start, by code. */
  readonly errors: ReadonlyMap<string, number>
}

export interface MetricsOptions {
  readonly stats: Stats
  readonly version: string
  /** Throws a coded 401 when the scrape is not authorised (METRICS_TOKEN); app.ts supplies it. */
  readonly authorize: (headers: Record<string, string | string[] | undefined>) => void
  readonly spool: () => { bytes: number, accepting: boolean, highWatermarkBytes: number, damagedSegments?: number, fsyncs?: number }
  readonly sinks: () => ReadonlyMap<string, SinkGauges>
  /** Bucket sources by name (empty or absent without any). */
  readonly sources?: () => ReadonlyMap<string, SourceGauges>
  /** The job watchdog, null (or absent) while it is off. */
  readonly watchdog?: () => WatchdogGauges | null
  /** Pull collectors by name (empty or absent without any). */
  readonly collectors?: () => ReadonlyMap<string, CollectorGauges>
}

type Labels = Record<string, string | number>
/** One sample: its labels and its value. */
type Sample = readonly [Labels, number]

const finite = (v: number): number => (Number.isFinite(v) ? v : 0)

/**
 * A metric whose value lives elsewhere (Stats, the spool, the sinks): at each scrape it is reset
 * and set to what `read` yields, so prom-client renders it and the reader stays the one source of
 * truth. Counters are set through inc() from zero, since prom-client's Counter has no set().
 */
function scraped(kind: 'counter' | 'gauge', registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Iterable<Sample>): void {
  const config = { name, help, labelNames, registers: [registry] }
  if (kind === 'counter') {
    new Counter({ ...config, collect() { this.reset(); for (const [labels, value] of read()) this.inc(labels, Math.max(0, finite(value))) } })
  } else {
    new Gauge({ ...config, collect() { this.reset(); for (const [labels, value] of read()) this.set(labels, finite(value)) } })
  }
}

type Scraped = (registry: Registry, name: string, help: string, labelNames: readonly string[], read: () => Iterable<Sample>) => void
const counter: Scraped = (...args) => scraped('counter', ...args)
const gauge: Scraped = (...args) => scraped('gauge', ...args)

/** The registry behind /metrics; exported for the tests that pin its families. */
export function createRegistry(opts: Omit<MetricsOptions, 'authorize'>): Registry {
  const { stats } = opts
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })

  gauge(registry, 'lpr_build_info', 'Version of logpush-receiver.', ['version'], () => [[{ version: opts.version }, 1]])

  const perDataset = (name: string, help: string, pick: (d: ReturnType<Stats['dataset']>) => number): void =>
    counter(registry, name, help, ['dataset'], () => [...stats.datasets()].map(([dataset, d]): Sample => [{ dataset }, pick(d)]))
  perDataset('lpr_batches_accepted_total', 'Batches stored in the spool.', (d) => d.batches)
  perDataset('lpr_lines_accepted_total', 'Valid lines stored in the spool.', (d) => d.accepted)
  perDataset('lpr_batches_deduplicated_total', 'Re-sent batches recognised and not stored again.', (d) => d.duplicates)
  perDataset('lpr_validation_uploads_total', 'Logpush validation uploads answered without storing.', (d) => d.pings)
  perDataset('lpr_challenges_total', 'Ownership-challenge tokens received (not stored).', (d) => d.challenges)

  counter(registry, 'lpr_lines_rejected_total', 'Lines dead-lettered, by reason code.', ['dataset', 'reason'], function * () {
    for (const [dataset, d] of stats.datasets()) for (const [reason, n] of d.rejectedByCode) yield [{ dataset, reason }, n]
  })
  counter(registry, 'lpr_unknown_field_lines_total', 'Lines carrying a field the dataset schema does not list (schema drift).', ['dataset', 'field'], function * () {
    for (const [dataset, d] of stats.datasets()) for (const [field, n] of d.unknownFields) yield [{ dataset, field }, n]
  })
  counter(registry, 'lpr_type_mismatch_lines_total', 'Lines dead-lettered with a field whose JSON type the dataset schema does not allow (type drift).', ['dataset', 'field'], function * () {
    for (const [dataset, d] of stats.datasets()) for (const [field, n] of d.typeMismatches) yield [{ dataset, field }, n]
  })

  for (const [metric, help, key] of [
    ['lpr_lines_delivered_total', 'Lines a destination stored.', 'delivered'],
    ['lpr_lines_duplicate_total', 'Lines a destination already had (replays; Elasticsearch 409).', 'duplicates'],
    ['lpr_lines_dead_lettered_total', 'Lines a destination refused for good, now in the dead-letter store.', 'rejected']
  ] as const) {
    counter(registry, metric, help, ['sink', 'dataset'], function * () {
      for (const [sink, bySet] of stats.sinks) for (const [dataset, c] of bySet) yield [{ sink, dataset }, c[key]]
    })
  }
  registry.registerMetric(stats.deliverySeconds)
  counter(registry, 'lpr_shaped_lines_total', 'Lines a destination\'s shaping rule let through (passed) or kept back by its filter (filtered) or sampling (sampled); never counted as rejected or lost.', ['dataset', 'sink', 'rule', 'outcome'], function * () {
    for (const [sink, bySet] of stats.shaped) {
      for (const [dataset, byRule] of bySet) for (const [rule, byOutcome] of byRule) for (const [outcome, n] of byOutcome) yield [{ dataset, sink, rule, outcome }, n]
    }
  })

  counter(registry, 'lpr_http_requests_total', 'HTTP requests by route and status.', ['route', 'status'], function * () {
    for (const [route, byStatus] of stats.requests) for (const [status, n] of byStatus) yield [{ route, status }, n]
  })
  registry.registerMetric(stats.requestSeconds)

  gauge(registry, 'lpr_spool_bytes', 'Bytes of accepted batches not yet delivered everywhere.', [], () => [[{}, opts.spool().bytes]])
  gauge(registry, 'lpr_spool_high_watermark_bytes', 'SPOOL_HIGH_WATERMARK_BYTES: above it new batches are refused (for alerts on lpr_spool_bytes).', [], () => [[{}, opts.spool().highWatermarkBytes]])
  gauge(registry, 'lpr_spool_accepting', '1 while new batches are accepted, 0 while refused (watermark, disk).', [], () => [[{}, opts.spool().accepting ? 1 : 0]])
  counter(registry, 'lpr_spool_fsyncs_total', 'fsyncs the spool made (segments, their directory, checkpoints, re-send records): per accepted batch, what durability costs the disk.', [], function * () { yield [{}, opts.spool().fsyncs ?? 0] })
  gauge(registry, 'lpr_spool_damaged_segments', 'Spool segments found damaged since the start (bytes kept in spool/damaged/, lines in the damage lost).', [], () => [[{}, opts.spool().damagedSegments ?? 0]])
  for (const [metric, help, key] of [
    ['lpr_sink_pending_lines', 'Lines spooled but not yet delivered to the destination.', 'pendingLines'],
    ['lpr_sink_pending_bytes', 'Spool bytes the destination still has to take.', 'pendingBytes'],
    ['lpr_sink_oldest_pending_age_seconds', 'Age of the oldest line the destination has not taken.', 'oldestPendingAgeSeconds']
  ] as const) {
    gauge(registry, metric, help, ['sink'], () => [...opts.sinks()].map(([sink, g]): Sample => [{ sink }, g[key]]))
  }
  gauge(registry, 'lpr_sink_up', '0 while deliveries to the destination fail.', ['sink'], () => [...opts.sinks()].map(([sink, g]): Sample => [{ sink }, g.failing ? 0 : 1]))
  gauge(registry, 'lpr_sink_set_up', '0 while the destination still sets itself up in the background (index templates, file recovery); the service listens meanwhile.', ['sink'],
    () => [...opts.sinks()].map(([sink, g]): Sample => [{ sink }, g.setUp === false ? 0 : 1]))
  gauge(registry, 'lpr_sink_stopped', '1 while the destination refuses for a reason no line causes (credentials, cluster, settings), by code; lines wait in the spool.', ['sink', 'code'],
    () => [...opts.sinks()].flatMap(([sink, g]): Sample[] => (g.stopped ? [[{ sink, code: g.stopped }, 1]] : [])))

  const sources = (): ReadonlyMap<string, SourceGauges> => opts.sources?.() ?? new Map<string, SourceGauges>()
  for (const [metric, help, key] of [
    ['lpr_source_objects_seen_total', 'Bucket objects found by listing that were not settled yet.', 'seen'],
    ['lpr_source_objects_done_total', 'Bucket objects whose lines are durable in the spool.', 'done'],
    ['lpr_source_objects_failed_total', 'Bucket objects refused for good (not gzip, not NDJSON, too large, or out of attempts).', 'failed']
  ] as const) {
    counter(registry, metric, help, ['source'], () => [...sources()].map(([source, g]): Sample => [{ source }, g[key]]))
  }
  gauge(registry, 'lpr_source_newest_done_lag_seconds', 'Age (by LastModified) of the newest bucket object read into the spool.', ['source'],
    () => [...sources()].map(([source, g]): Sample => [{ source }, g.newestDoneLagSeconds]))
  gauge(registry, 'lpr_source_up', '0 while listing the bucket fails or reads are refused for permissions.', ['source'],
    () => [...sources()].map(([source, g]): Sample => [{ source }, g.up ? 1 : 0]))

  // The Logpush job watchdog: Cloudflare's view of the jobs that push here (families exist, empty, while it is off).
  const watched = (): WatchdogGauges['jobs'] => opts.watchdog?.()?.jobs ?? []
  const perJob = (name: string, help: string, pick: (j: WatchdogGauges['jobs'][number]) => number | null): void =>
    gauge(registry, name, help, ['job_id', 'dataset', 'scope', 'scope_id'], () => watched().flatMap((j): Sample[] => { const v = pick(j); return v === null ? [] : [[j.labels, v]] }))
  perJob('lpr_logpush_job_enabled', '1 while the Logpush job is enabled, 0 once disabled (Cloudflare disables a job after about a day of failures).', (j) => (j.enabled ? 1 : 0))
  perJob('lpr_logpush_job_failing', '1 while the job has been failing for longer than WATCHDOG_FAILING_SECONDS.', (j) => (j.failing ? 1 : 0))
  perJob('lpr_logpush_job_lagging', '1 while the enabled job\'s last_complete is older than WATCHDOG_LAG_SECONDS.', (j) => (j.lagging ? 1 : 0))
  gauge(registry, 'lpr_logpush_job_uploads', 'Upload attempts in the last WATCHDOG_WINDOW_SECONDS (GraphQL logpushHealthAdaptiveGroups): ok, retried (failed, to be retried), failed (batch dropped).', ['job_id', 'dataset', 'scope', 'scope_id', 'status'],
    () => watched().flatMap((j): Sample[] => (j.uploads === null ? [] : (['ok', 'retried', 'failed'] as const).map((status): Sample => [{ ...j.labels, status }, j.uploads![status]]))))
  perJob('lpr_logpush_job_last_complete_timestamp_seconds', 'The job\'s last_complete: log time up to which it has pushed successfully.', (j) => j.lastCompleteSeconds)
  perJob('lpr_logpush_job_lag_seconds', 'Seconds since the job\'s last_complete.', (j) => j.lagSeconds)
  counter(registry, 'lpr_watchdog_poll_errors_total', 'Cloudflare API calls of the watchdog that failed (listing jobs, reading upload health).', [], () => { const w = opts.watchdog?.(); return w ? [[{}, w.pollErrors]] : [] })
  gauge(registry, 'lpr_watchdog_last_poll_timestamp_seconds', 'End of the watchdog\'s last poll in which every zone and account answered.', [], () => { const t = opts.watchdog?.()?.lastPollSeconds; return t === undefined || t === null ? [] : [[{}, t]] })

  const collectors = (): ReadonlyMap<string, CollectorGauges> => opts.collectors?.() ?? new Map<string, CollectorGauges>()
  counter(registry, 'lpr_collector_records_total', 'Records a pull collector stored in the spool.', ['collector', 'dataset'],
    () => [...collectors()].map(([collector, g]): Sample => [{ collector, dataset: g.dataset }, g.records]))
  gauge(registry, 'lpr_collector_lag_seconds', 'How far a pull collector\'s cursor (the start of its next window) is behind now.', ['collector'],
    () => [...collectors()].map(([collector, g]): Sample => [{ collector }, g.lagSeconds]))
  gauge(registry, 'lpr_collector_up', '1 while a pull collector runs, 0 once it stopped (credentials refused).', ['collector'],
    () => [...collectors()].map(([collector, g]): Sample => [{ collector }, g.up ? 1 : 0]))
  counter(registry, 'lpr_collector_errors_total', 'Failed windows of a pull collector, by code (retried, or stopped for credentials).', ['collector', 'code'],
    () => [...collectors()].flatMap(([collector, g]) => [...g.errors].map(([code, n]): Sample => [{ collector, code }, n])))

  // The docs documented this name before prom-client; its default is nodejs_heap_size_used_bytes.
  gauge(registry, 'nodejs_heap_used_bytes', 'V8 heap in use (the same value as nodejs_heap_size_used_bytes).', [], () => [[{}, process.memoryUsage().heapUsed]])
  return registry
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsOptions): Promise<void> {
  const registry = createRegistry(opts)
  app.get('/metrics', async function metrics(request, reply) {
    opts.authorize(request.headers)
    reply.type(registry.contentType)
    return await registry.metrics()
  })
}
