// Counters that /health (and later /metrics) show. Plain numbers in memory: they describe this
// process since it started, which is what a health endpoint reports.

export class DatasetStats {
  batches = 0
  accepted = 0
  rejected = 0
  pings = 0
  challenges = 0
  readonly rejectedByCode = new Map<string, number>()
  /** Fields seen that the dataset's schema does not list: Cloudflare added a field, or an old job sends a removed one. */
  readonly unknownFields = new Map<string, number>()

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

  /** Adds a committed batch's tally: a batch that fails or turns out to be a ping counts nothing. */
  add(tally: DatasetStats): void {
    this.accepted += tally.accepted
    for (const [code, n] of tally.rejectedByCode) this.countRejected(code, n)
    for (const [field, n] of tally.unknownFields) this.countUnknownField(field, n)
  }

  toJSON(): Record<string, unknown> {
    return {
      batches: this.batches,
      accepted: this.accepted,
      rejected: this.rejected,
      pings: this.pings,
      challenges: this.challenges,
      rejectedByCode: Object.fromEntries(this.rejectedByCode),
      unknownFields: Object.fromEntries(this.unknownFields)
    }
  }
}

export class Stats {
  readonly startedAt = Date.now()
  private readonly byDataset = new Map<string, DatasetStats>()

  constructor (datasets: Iterable<string>, private readonly driftFieldsMax: number) {
    for (const d of datasets) this.byDataset.set(d, new DatasetStats(driftFieldsMax))
  }

  dataset(name: string): DatasetStats {
    let s = this.byDataset.get(name)
    if (!s) this.byDataset.set(name, (s = new DatasetStats(this.driftFieldsMax)))
    return s
  }

  toJSON(): Record<string, unknown> {
    return Object.fromEntries([...this.byDataset].map(([k, v]) => [k, v.toJSON()]))
  }
}
