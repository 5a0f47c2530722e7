// Counters that /health, /metrics and the status page show. Plain numbers in memory: they describe
// this process since it started, which is what a health endpoint reports.
import { Histogram } from 'prom-client'

/** The default of DRIFT_FIELD_NAME_MAX_CHARS. */
export const DRIFT_FIELD_NAME_MAX_CHARS = 128

/** Where unknown fields past the bounds are counted. */
export const OTHER_FIELDS = '_other'

/**
 * The name an unknown field is counted under. Field names come from the sender and are shown in
 * /health and /metrics: both how many names are kept and how long each may be are bounded, so a
 * hostile body cannot grow memory or those answers.
 */
export function driftKey(counted: ReadonlyMap<string, number>, field: string, maxFields: number, maxChars: number): string {
  if (field.length > maxChars) return OTHER_FIELDS
  return counted.has(field) || counted.size < maxFields ? field : OTHER_FIELDS
}

export class DatasetStats {
  private batchCount = 0
  /** When the last batch was stored (ms since the epoch), for the status page; null before the first. */
  lastBatchAt: number | null = null
  accepted = 0
  rejected = 0
  pings = 0
  challenges = 0
  /** Re-sent batches recognised and not stored again. */
  duplicates = 0
  readonly rejectedByCode = new Map<string, number>()
  /** Fields seen that the dataset's schema does not list: Cloudflare added a field, or an old job sends a removed one. */
  readonly unknownFields = new Map<string, number>()
  /** Schema fields seen with a JSON type the schema does not allow: Cloudflare changed a field's type. */
  readonly typeMismatches = new Map<string, number>()

  constructor (private readonly driftFieldsMax: number, private readonly driftFieldNameMaxChars = DRIFT_FIELD_NAME_MAX_CHARS) {}

  // An accessor, so that the one place that counts a stored batch (intake) also dates it.
  get batches(): number { return this.batchCount }
  set batches(n: number) {
    this.batchCount = n
    this.lastBatchAt = Date.now()
  }

  countRejected(code: string, n = 1): void {
    this.rejected += n
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + n)
  }

  countUnknownField(field: string, n = 1): void {
    const key = driftKey(this.unknownFields, field, this.driftFieldsMax, this.driftFieldNameMaxChars)
    this.unknownFields.set(key, (this.unknownFields.get(key) ?? 0) + n)
  }

  countTypeMismatch(field: string, n = 1): void {
    // Bounded like the unknown fields: nested paths and many fields must not grow memory.
    const key = driftKey(this.typeMismatches, field, this.driftFieldsMax, this.driftFieldNameMaxChars)
    this.typeMismatches.set(key, (this.typeMismatches.get(key) ?? 0) + n)
  }

  /** Adds a committed batch's tally: a batch that fails or turns out to be a ping counts nothing. */
  add(tally: DatasetStats): void {
    this.accepted += tally.accepted
    for (const [code, n] of tally.rejectedByCode) this.countRejected(code, n)
    for (const [field, n] of tally.unknownFields) this.countUnknownField(field, n)
    for (const [field, n] of tally.typeMismatches) this.countTypeMismatch(field, n)
  }

  /** `dataset` names the command that explains unknown fields (a field Cloudflare added before our schema knew it). */
  toJSON(dataset?: string): Record<string, unknown> {
    return {
      batches: this.batches,
      accepted: this.accepted,
      rejected: this.rejected,
      pings: this.pings,
      challenges: this.challenges,
      duplicates: this.duplicates,
      rejectedByCode: Object.fromEntries(this.rejectedByCode),
      unknownFields: Object.fromEntries(this.unknownFields),
      ...(this.unknownFields.size > 0 && dataset !== undefined ? { unknownFieldsCheck: schemasCheckCommand(dataset) } : {}),
      typeMismatches: Object.fromEntries(this.typeMismatches)
    }
  }
}

/**
 * What to run when a dataset has unknown fields: compares our schema with Cloudflare's live field
 * list and, with --write, adds the fields Cloudflare added (README, Datasets).
 */
export function schemasCheckCommand(dataset: string): string {
  return `npx logpush-receiver schemas check --dataset ${dataset} --zone <zone_id> (or --account <account_id>), then --write to add Cloudflare's new fields to schemas/`
}

/** What one destination did with one dataset's lines. */
export interface SinkCounters {
  delivered: number
  duplicates: number
  rejected: number
}

export class Stats {
  readonly startedAt = Date.now()
  private readonly byDataset = new Map<string, DatasetStats>()
  /** sink -> dataset -> counters */
  readonly sinks = new Map<string, Map<string, SinkCounters>>()
  /** Delivery time per batch, per sink; registered by /metrics (each app its own registry: registers []). */
  readonly deliverySeconds = new Histogram({
    name: 'lpr_delivery_duration_seconds', help: 'Time to deliver one batch to a destination.', labelNames: ['sink'], buckets: DELIVERY_BUCKETS, registers: []
  })
  /** sink -> dataset -> rule -> outcome -> lines, of shaped destinations (src/shaping); never rejected or lost lines. */
  readonly shaped = new Map<string, Map<string, Map<string, Map<string, number>>>>()
  /** route -> status -> count, and request duration per route. */
  readonly requests = new Map<string, Map<number, number>>()
  readonly requestSeconds = new Histogram({
    name: 'lpr_http_request_duration_seconds', help: 'HTTP request duration by route.', labelNames: ['route'], buckets: REQUEST_BUCKETS, registers: []
  })

  constructor (datasets: Iterable<string>, private readonly driftFieldsMax: number, private readonly driftFieldNameMaxChars = DRIFT_FIELD_NAME_MAX_CHARS) {
    for (const d of datasets) this.byDataset.set(d, new DatasetStats(driftFieldsMax, driftFieldNameMaxChars))
  }

  dataset(name: string): DatasetStats {
    let s = this.byDataset.get(name)
    if (!s) this.byDataset.set(name, (s = new DatasetStats(this.driftFieldsMax, this.driftFieldNameMaxChars)))
    return s
  }

  datasets(): IterableIterator<[string, DatasetStats]> {
    return this.byDataset.entries()
  }

  countDelivery(sink: string, dataset: string, r: SinkCounters, seconds: number): void {
    let bySet = this.sinks.get(sink)
    if (!bySet) this.sinks.set(sink, (bySet = new Map()))
    const c = bySet.get(dataset) ?? { delivered: 0, duplicates: 0, rejected: 0 }
    c.delivered += r.delivered
    c.duplicates += r.duplicates
    c.rejected += r.rejected
    bySet.set(dataset, c)
    this.deliverySeconds.observe({ sink }, seconds)
  }

  countShaped(sink: string, dataset: string, rule: string, outcome: string, n: number): void {
    let bySet = this.shaped.get(sink)
    if (!bySet) this.shaped.set(sink, (bySet = new Map()))
    let byRule = bySet.get(dataset)
    if (!byRule) bySet.set(dataset, (byRule = new Map()))
    let byOutcome = byRule.get(rule)
    if (!byOutcome) byRule.set(rule, (byOutcome = new Map()))
    byOutcome.set(outcome, (byOutcome.get(outcome) ?? 0) + n)
  }

  /** One destination's shaped lines per outcome (passed, filtered, sampled), over its datasets and rules. */
  shapedTotals(sink: string): Record<string, number> {
    const out: Record<string, number> = {}
    for (const byRule of this.shaped.get(sink)?.values() ?? []) {
      for (const byOutcome of byRule.values()) for (const [o, n] of byOutcome) out[o] = (out[o] ?? 0) + n
    }
    return out
  }

  countRequest(route: string, status: number, seconds: number): void {
    let byStatus = this.requests.get(route)
    if (!byStatus) this.requests.set(route, (byStatus = new Map()))
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
    this.requestSeconds.observe({ route }, seconds)
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries([...this.byDataset].map(([k, v]) => [k, v.toJSON(k)]))
  }
}

const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const DELIVERY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]
