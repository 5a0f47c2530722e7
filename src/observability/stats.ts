// Counters that /health (and later /metrics) show. Plain numbers in memory: they describe this
// process since it started, which is what a health endpoint reports.

export class DatasetStats {
  batches = 0
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

  constructor (private readonly driftFieldsMax: number) {}

  countRejected(code: string, n = 1): void {
    this.rejected += n
    this.rejectedByCode.set(code, (this.rejectedByCode.get(code) ?? 0) + n)
  }

  countUnknownField(field: string, n = 1): void {
    // Field names come from the sender: bound how many we keep so a hostile body cannot grow memory.
    const key = this.unknownFields.has(field) || this.unknownFields.size < this.driftFieldsMax ? field : '_other'
    this.unknownFields.set(key, (this.unknownFields.get(key) ?? 0) + n)
  }

  countTypeMismatch(field: string, n = 1): void {
    // Bounded like the unknown fields: nested paths and many fields must not grow memory.
    const key = this.typeMismatches.has(field) || this.typeMismatches.size < this.driftFieldsMax ? field : '_other'
    this.typeMismatches.set(key, (this.typeMismatches.get(key) ?? 0) + n)
  }

  /** Adds a committed batch's tally: a batch that fails or turns out to be a ping counts nothing. */
  add(tally: DatasetStats): void {
    this.accepted += tally.accepted
    for (const [code, n] of tally.rejectedByCode) this.countRejected(code, n)
    for (const [field, n] of tally.unknownFields) this.countUnknownField(field, n)
    for (const [field, n] of tally.typeMismatches) this.countTypeMismatch(field, n)
  }

  toJSON(): Record<string, unknown> {
    return {
      batches: this.batches,
      accepted: this.accepted,
      rejected: this.rejected,
      pings: this.pings,
      challenges: this.challenges,
      duplicates: this.duplicates,
      rejectedByCode: Object.fromEntries(this.rejectedByCode),
      unknownFields: Object.fromEntries(this.unknownFields),
      typeMismatches: Object.fromEntries(this.typeMismatches)
    }
  }
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
  /** Histogram of delivery time per batch, per sink. */
  readonly deliverySeconds = new Map<string, Histogram>()
  /** route -> status -> count, and request duration per route. */
  readonly requests = new Map<string, Map<number, number>>()
  readonly requestSeconds = new Map<string, Histogram>()

  constructor (datasets: Iterable<string>, private readonly driftFieldsMax: number) {
    for (const d of datasets) this.byDataset.set(d, new DatasetStats(driftFieldsMax))
  }

  dataset(name: string): DatasetStats {
    let s = this.byDataset.get(name)
    if (!s) this.byDataset.set(name, (s = new DatasetStats(this.driftFieldsMax)))
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
    let h = this.deliverySeconds.get(sink)
    if (!h) this.deliverySeconds.set(sink, (h = new Histogram(DELIVERY_BUCKETS)))
    h.observe(seconds)
  }

  countRequest(route: string, status: number, seconds: number): void {
    let byStatus = this.requests.get(route)
    if (!byStatus) this.requests.set(route, (byStatus = new Map()))
    byStatus.set(status, (byStatus.get(status) ?? 0) + 1)
    let h = this.requestSeconds.get(route)
    if (!h) this.requestSeconds.set(route, (h = new Histogram(REQUEST_BUCKETS)))
    h.observe(seconds)
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries([...this.byDataset].map(([k, v]) => [k, v.toJSON()]))
  }
}

const REQUEST_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const DELIVERY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300]

/** A Prometheus histogram without labels of its own: cumulative counts per upper bound. */
export class Histogram {
  readonly counts: number[]
  sum = 0
  count = 0

  constructor (readonly buckets: readonly number[]) {
    this.counts = buckets.map(() => 0)
  }

  observe(value: number): void {
    this.sum += value
    this.count++
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) this.counts[i]!++
  }
}
