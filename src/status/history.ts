// Rates for the status page's small charts: every SAMPLE_MS the page's sampler takes the counters
// from Stats and keeps how much each grew, for the last SAMPLES intervals (five minutes). Fixed
// sizes: one number per dataset or destination per interval.
export const SAMPLE_MS = 10_000
export const SAMPLES = 30

export class RateHistory {
  private readonly last = new Map<string, number>()
  private readonly deltas = new Map<string, number[]>()
  private samples = 0
  private lastSampleAt: number

  constructor (private readonly startedAt = Date.now()) {
    this.lastSampleAt = startedAt
  }

  /** Records the counters' current values (key -> total since start). */
  sample(totals: ReadonlyMap<string, number>, now = Date.now()): void {
    this.samples++
    this.lastSampleAt = now
    for (const [key, total] of totals) {
      const before = this.last.get(key) ?? 0
      let ring = this.deltas.get(key)
      if (!ring) this.deltas.set(key, (ring = []))
      ring.push(Math.max(0, total - before))
      if (ring.length > SAMPLES) ring.shift()
      this.last.set(key, total)
    }
  }

  /**
   * Growth per interval, oldest first, ending with the interval in progress (what grew since the
   * last sample), so a batch shows at once rather than up to SAMPLE_MS later.
   */
  series(key: string, total: number): number[] {
    const done = this.deltas.get(key) ?? []
    return [...done.slice(-(SAMPLES - 1)), Math.max(0, total - (this.last.get(key) ?? 0))]
  }

  /** The time series() spans, ms: the kept intervals plus the one in progress, never more than uptime. */
  windowMs(now = Date.now()): number {
    return Math.max(1000, Math.min(now - this.startedAt, Math.min(this.samples, SAMPLES - 1) * SAMPLE_MS + (now - this.lastSampleAt)))
  }
}
