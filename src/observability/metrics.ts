// GET /metrics in the Prometheus text exposition format (version 0.0.4). Counters come from
// Stats; gauges (spool, destinations, process) are read at scrape time. Label values are the
// service's own (dataset and sink names, error codes, routes) or bounded (unknown field names,
// DRIFT_FIELDS_MAX per dataset), so cardinality stays small.
import type { FastifyInstance } from 'fastify'
import type { Histogram, Stats } from './stats.js'

export interface SinkGauges {
  readonly pendingLines: number
  readonly pendingBytes: number
  readonly oldestPendingAgeSeconds: number
  readonly failing: boolean
}

export interface MetricsOptions {
  readonly stats: Stats
  readonly version: string
  /** Throws a coded 401 when the scrape is not authorised (METRICS_TOKEN); app.ts supplies it. */
  readonly authorize: (headers: Record<string, string | string[] | undefined>) => void
  readonly spool: () => { bytes: number, accepting: boolean }
  readonly sinks: () => ReadonlyMap<string, SinkGauges>
}

function escape(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

function labels(l: Record<string, string | number>): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${escape(String(v))}"`)
  return parts.length ? `{${parts.join(',')}}` : ''
}

class Out {
  private readonly lines: string[] = []

  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
    return this
  }

  sample(name: string, l: Record<string, string | number>, value: number): this {
    this.lines.push(`${name}${labels(l)} ${Number.isFinite(value) ? value : 0}`)
    return this
  }

  histogram(name: string, l: Record<string, string | number>, h: Histogram): this {
    h.buckets.forEach((b, i) => this.sample(`${name}_bucket`, { ...l, le: b }, h.counts[i]!))
    this.sample(`${name}_bucket`, { ...l, le: '+Inf' }, h.count)
    this.sample(`${name}_sum`, l, h.sum)
    this.sample(`${name}_count`, l, h.count)
    return this
  }

  toString(): string {
    return this.lines.join('\n') + '\n'
  }
}

export function renderMetrics(opts: MetricsOptions): string {
  const { stats } = opts
  const o = new Out()
  const datasets = [...stats.datasets()]
  o.family('lpr_build_info', 'gauge', 'Version of logpush-receiver.').sample('lpr_build_info', { version: opts.version }, 1)

  const perDataset = (name: string, help: string, pick: (d: (typeof datasets)[number][1]) => number): void => {
    o.family(name, 'counter', help)
    for (const [dataset, d] of datasets) o.sample(name, { dataset }, pick(d))
  }
  perDataset('lpr_batches_accepted_total', 'Batches stored in the spool.', (d) => d.batches)
  perDataset('lpr_lines_accepted_total', 'Valid lines stored in the spool.', (d) => d.accepted)
  perDataset('lpr_batches_deduplicated_total', 'Re-sent batches recognised and not stored again.', (d) => d.duplicates)
  perDataset('lpr_validation_uploads_total', 'Logpush validation uploads answered without storing.', (d) => d.pings)
  perDataset('lpr_challenges_total', 'Ownership-challenge tokens received (not stored).', (d) => d.challenges)

  o.family('lpr_lines_rejected_total', 'counter', 'Lines dead-lettered, by reason code.')
  for (const [dataset, d] of datasets) for (const [reason, n] of d.rejectedByCode) o.sample('lpr_lines_rejected_total', { dataset, reason }, n)
  o.family('lpr_unknown_field_lines_total', 'counter', 'Lines carrying a field the dataset schema does not list (schema drift).')
  for (const [dataset, d] of datasets) for (const [field, n] of d.unknownFields) o.sample('lpr_unknown_field_lines_total', { dataset, field }, n)
  o.family('lpr_type_mismatch_lines_total', 'counter', 'Lines dead-lettered with a field whose JSON type the dataset schema does not allow (type drift).')
  for (const [dataset, d] of datasets) for (const [field, n] of d.typeMismatches) o.sample('lpr_type_mismatch_lines_total', { dataset, field }, n)

  for (const [metric, help, key] of [
    ['lpr_lines_delivered_total', 'Lines a destination stored.', 'delivered'],
    ['lpr_lines_duplicate_total', 'Lines a destination already had (replays; Elasticsearch 409).', 'duplicates'],
    ['lpr_lines_dead_lettered_total', 'Lines a destination refused for good, now in the dead-letter store.', 'rejected']
  ] as const) {
    o.family(metric, 'counter', help)
    for (const [sink, bySet] of stats.sinks) for (const [dataset, c] of bySet) o.sample(metric, { sink, dataset }, c[key])
  }
  o.family('lpr_delivery_duration_seconds', 'histogram', 'Time to deliver one batch to a destination.')
  for (const [sink, h] of stats.deliverySeconds) o.histogram('lpr_delivery_duration_seconds', { sink }, h)

  o.family('lpr_http_requests_total', 'counter', 'HTTP requests by route and status.')
  for (const [route, byStatus] of stats.requests) for (const [status, n] of byStatus) o.sample('lpr_http_requests_total', { route, status }, n)
  o.family('lpr_http_request_duration_seconds', 'histogram', 'HTTP request duration by route.')
  for (const [route, h] of stats.requestSeconds) o.histogram('lpr_http_request_duration_seconds', { route }, h)

  const spool = opts.spool()
  o.family('lpr_spool_bytes', 'gauge', 'Bytes of accepted batches not yet delivered everywhere.').sample('lpr_spool_bytes', {}, spool.bytes)
  o.family('lpr_spool_accepting', 'gauge', '1 while new batches are accepted, 0 while refused (watermark, disk).').sample('lpr_spool_accepting', {}, spool.accepting ? 1 : 0)
  const sinks = opts.sinks()
  for (const [metric, help, key] of [
    ['lpr_sink_pending_lines', 'Lines spooled but not yet delivered to the destination.', 'pendingLines'],
    ['lpr_sink_pending_bytes', 'Spool bytes the destination still has to take.', 'pendingBytes'],
    ['lpr_sink_oldest_pending_age_seconds', 'Age of the oldest line the destination has not taken.', 'oldestPendingAgeSeconds']
  ] as const) {
    o.family(metric, 'gauge', help)
    for (const [sink, g] of sinks) o.sample(metric, { sink }, g[key])
  }
  o.family('lpr_sink_up', 'gauge', '0 while deliveries to the destination fail.')
  for (const [sink, g] of sinks) o.sample('lpr_sink_up', { sink }, g.failing ? 0 : 1)

  const mem = process.memoryUsage()
  const cpu = process.cpuUsage()
  o.family('process_cpu_seconds_total', 'counter', 'User and system CPU time.').sample('process_cpu_seconds_total', {}, (cpu.user + cpu.system) / 1e6)
  o.family('process_resident_memory_bytes', 'gauge', 'Resident set size.').sample('process_resident_memory_bytes', {}, mem.rss)
  o.family('process_start_time_seconds', 'gauge', 'Start time, seconds since the epoch.').sample('process_start_time_seconds', {}, Math.round(stats.startedAt / 1000))
  o.family('nodejs_heap_used_bytes', 'gauge', 'V8 heap in use.').sample('nodejs_heap_used_bytes', {}, mem.heapUsed)
  return o.toString()
}

export async function metricsPlugin(app: FastifyInstance, opts: MetricsOptions): Promise<void> {
  app.get('/metrics', async function metrics(request, reply) {
    opts.authorize(request.headers)
    reply.type('text/plain; version=0.0.4; charset=utf-8')
    return renderMetrics(opts)
  })
}
