// One forwarder per destination: it reads committed segments in order from its checkpoint and
// hands them to its sink, each sink at its own pace. A sink that fails is retried, with backoff,
// from its last checkpoint, for as long as it takes: its backlog waits on disk, never in memory.
import { setTimeout as sleep } from 'node:timers/promises'
import type { Logger } from 'pino'
import type { DeliveryBatch, Rejection, Sink } from '../delivery.js'
import type { Checkpoint, Spool } from './spool.js'

export interface ForwarderOptions {
  readonly spool: Spool
  readonly sink: Sink
  readonly log: Logger
  /** Makes refused lines durable in the dead-letter store before they are checkpointed away. */
  readonly deadLetter: (rejected: readonly Rejection[]) => Promise<void>
  /** Whether this destination gets a dataset at all (CONFIG_FILE routing); all when absent. */
  readonly accepts?: (dataset: string) => boolean
  /** Longest wait between two delivery attempts of a failing destination, ms. */
  readonly retryMaxMs: number
  readonly onDelivered?: (dataset: string, result: { delivered: number, duplicates: number, rejected: number }, seconds: number) => void
  /**
   * This destination's shaping (src/shaping), when it has any for the batch's dataset: the batch as
   * the destination gets it, and what to count once it is delivered. Without it the destination
   * gets the spooled lines as they are.
   */
  readonly shape?: (batch: DeliveryBatch) => { readonly batch: DeliveryBatch, delivered(): void, failed(upTo: number): Rejection[] } | null
  /** The target of a tenant a sender's token named (src/shaping/route.ts); absent: tokens name none. */
  readonly tenantRoute?: (tenant: string) => DeliveryBatch['route']
  /** This destination's shaping in one line, for /health; absent without any. */
  readonly shaping?: string
}

const RETRY_BASE_MS = 500

/** Settles as `p` does, or rejects once `signal` aborts (`p` is left to finish on its own). */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'))
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'))
    signal.addEventListener('abort', onAbort, { once: true })
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
  })
}

export class Forwarder {
  private readonly abort = new AbortController()
  private running: Promise<void> | null = null
  private checkpoint: Checkpoint = { seq: 0, index: 0 }
  private lastError: string | null = null
  private failingSince: number | null = null
  private checkpointLoaded = false
  private isSetUp = false
  private initializing: Promise<void> | null = null
  delivered = 0

  constructor (private readonly opts: ForwarderOptions) {}

  get name(): string { return this.opts.sink.name }

  /** Loads the checkpoint (a local file); every forwarder does this before any runs. */
  async loadCheckpoint(): Promise<void> {
    this.checkpoint = await this.opts.spool.loadCheckpoint(this.name)
    this.checkpointLoaded = true
  }

  /** Loads the checkpoint and lets the sink recover and set itself up, now (start() does it in the background otherwise). */
  async prepare(): Promise<void> {
    if (!this.checkpointLoaded) await this.loadCheckpoint()
    await this.setUpOnce()
  }

  /**
   * Sets the sink up (unless prepare() did) and delivers, in the background: a destination that
   * accepts connections and never answers must not hold up the start (Elasticsearch's index
   * templates used to be installed before the service listened). Until then, status() says so.
   */
  start(): void {
    this.running = (this.isSetUp ? Promise.resolve(true) : this.setUp()).then((ok) => { if (ok) return this.loop() })
  }

  private async setUpOnce(): Promise<void> {
    const init = this.opts.sink.init(this.checkpoint.state, this.abort.signal)
    this.initializing = init.catch(() => {})
    await abortable(init, this.abort.signal)
    if (this.checkpoint.state === undefined && this.opts.sink.startState) {
      await this.save({ ...this.checkpoint, state: this.opts.sink.startState() })
    }
    this.isSetUp = true
  }

  /** True once the sink has recovered its state and set itself up. */
  get ready(): boolean { return this.isSetUp }

  /** The sink's own recovery and set-up, retried with backoff; false when stopped first. */
  private async setUp(): Promise<boolean> {
    let attempt = 0
    while (!this.stopping) {
      try {
        await this.setUpOnce()
        this.lastError = null
        this.failingSince = null
        return true
      } catch (err) {
        if (this.abort.signal.aborted || this.stopping) return false
        this.lastError = (err as Error).message
        this.failingSince ??= Date.now()
        const wait = Math.min(this.opts.retryMaxMs, RETRY_BASE_MS * 2 ** attempt++) * (0.5 + Math.random() / 2)
        this.opts.log.error({ sink: this.name, err: { message: (err as Error).message }, retryInMs: Math.round(wait) }, 'Could not set the destination up; trying again.')
        await sleep(wait, undefined, { signal: this.wake.signal }).catch(() => {})
      }
    }
    return false
  }

  /** Stops after the batch in hand, or at once when `graceMs` runs out; what is left stays spooled. */
  async stop(graceMs: number): Promise<void> {
    const timer = setTimeout(() => this.abort.abort(), graceMs)
    this.stopping = true
    this.wake.abort()
    try {
      await this.running
    } finally {
      clearTimeout(timer)
      // What was delivered is checkpointed before the stop: a clean stop replays nothing.
      await this.opts.spool.flushCheckpoints().catch((err: unknown) => this.opts.log.error({ sink: this.name, err: { message: (err as Error).message } }, 'Could not write the checkpoints at stop; the next start delivers again from the last one written.'))
      // A set-up given up on by the abort may still be under way (it got the signal too): closing
      // the sink under it would leave what it opens after (a rotation timer) open.
      await this.initializing
      await this.opts.sink.close()
    }
  }

  private stopping = false
  private wake = new AbortController()

  /** Resolves when nothing is left to deliver (or never, while the sink fails). */
  async drained(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs
    while (Date.now() < end) {
      if (this.opts.spool.backlog(this.name).lines === 0 && this.opts.spool.next(this.checkpoint.seq) === null) return true
      await sleep(50)
    }
    return false
  }

  get failing(): boolean { return this.lastError !== null }

  status(): Record<string, unknown> {
    const b = this.opts.spool.backlog(this.name)
    return {
      pendingLines: b.lines,
      pendingBytes: b.bytes,
      pendingBatches: b.segments,
      oldestPendingAgeSeconds: b.oldestAt === null ? 0 : Math.round((Date.now() - b.oldestAt) / 1000),
      checkpoint: { seq: this.checkpoint.seq, line: this.checkpoint.index },
      delivered: this.delivered,
      lastError: this.lastError,
      failingForSeconds: this.failingSince === null ? 0 : Math.round((Date.now() - this.failingSince) / 1000),
      ...(this.opts.shaping !== undefined ? { shaping: this.opts.shaping } : {}),
      setUp: this.isSetUp,
      ...(this.opts.sink.health?.() ?? {})
    }
  }

  private async loop(): Promise<void> {
    const { spool, sink, log } = this.opts
    let attempt = 0
    while (!this.stopping) {
      const seg = spool.next(this.checkpoint.seq)
      if (!seg) {
        if (this.wake.signal.aborted) this.wake = new AbortController()
        await spool.waitForCommit(this.wake.signal)
        continue
      }
      if (this.opts.accepts && !this.opts.accepts(seg.dataset)) {
        // Not this destination's dataset: passed without a checkpoint write (Spool.skipTo).
        this.checkpoint = { seq: seg.seq + 1, index: 0, state: this.checkpoint.state }
        spool.skipTo(this.name, this.checkpoint)
        continue
      }
      const from = seg.seq === this.checkpoint.seq ? this.checkpoint.index : 0
      let stored = spool.batch(seg, from)
      if (this.opts.tenantRoute) {
        // A batch a tenant's token sent goes to that tenant's target, whatever its lines say.
        let tenant: string | undefined
        try {
          tenant = await spool.tenantOf(seg)
        } catch (err) {
          // Never guess: without its tenant a batch could reach another tenant's target.
          this.lastError = `segment header: ${(err as Error).message}`
          this.failingSince ??= Date.now()
          log.error({ sink: sink.name, seq: seg.seq, err: { message: (err as Error).message } }, 'Cannot read the tenant of a spooled batch; retrying.')
          await sleep(this.opts.retryMaxMs, undefined, { signal: this.wake.signal }).catch(() => {})
          continue
        }
        if (tenant !== undefined) stored = { ...stored, route: this.opts.tenantRoute(tenant) ?? null }
      }
      const shaped = this.opts.shape?.(stored) ?? null
      const batch = shaped?.batch ?? stored
      const started = performance.now()
      let result
      // Lines dead-lettered along the way (progress), for the per-destination count.
      let rejectedEarly = 0
      try {
        result = await sink.deliver(batch, async (lines, refused) => {
          // Lines the shaping could not handle are this destination's dead letters like its refusals.
          const rejected = [...refused, ...shaped?.failed(lines) ?? []]
          if (rejected.length > 0) await this.opts.deadLetter(rejected)
          rejectedEarly += rejected.length
          // `lines` counts what the sink read; inside a damaged segment the lost lines' numbers are skipped too.
          await this.advance({ seq: seg.seq, index: spool.indexAfter(seg.seq, from, lines - from), state: this.checkpoint.state }, rejected.length > 0)
        }, this.abort.signal)
      } catch (err) {
        if (this.abort.signal.aborted) break
        this.lastError = (err as Error).message
        this.failingSince ??= Date.now()
        const wait = Math.min(this.opts.retryMaxMs, RETRY_BASE_MS * 2 ** attempt++) * (0.5 + Math.random() / 2)
        log.error({ sink: sink.name, seq: seg.seq, dataset: seg.dataset, err: { message: (err as Error).message }, retryInMs: Math.round(wait) }, 'Delivery failed; the batch stays in the spool and is retried.')
        await sleep(wait, undefined, { signal: this.wake.signal }).catch(() => {})
        continue
      }
      // Delivered: from here on only the bookkeeping is retried, never the delivery, or a
      // destination that cannot dedupe (the files, Splunk) would get the batch twice.
      const delivered = { ...result, rejected: [...result.rejected, ...shaped?.failed(Infinity) ?? []] }
      if (!await this.persist(async () => { if (delivered.rejected.length > 0) await this.opts.deadLetter(delivered.rejected) })) break
      if (!await this.persist(() => this.advance({ seq: seg.seq + 1, index: 0, state: delivered.state ?? this.checkpoint.state }, delivered.rejected.length > 0))) break
      this.delivered += delivered.delivered
      shaped?.delivered()
      this.opts.onDelivered?.(seg.dataset, { delivered: delivered.delivered, duplicates: delivered.duplicates, rejected: rejectedEarly + delivered.rejected.length }, (performance.now() - started) / 1000)
      if (attempt > 0) log.info({ sink: sink.name, failedForSeconds: Math.round((Date.now() - (this.failingSince ?? Date.now())) / 1000) }, 'Delivering again.')
      attempt = 0
      this.lastError = null
      this.failingSince = null
    }
  }

  /** Retries a step until it succeeds; false if the forwarder stops first (the sink then recovers from the older checkpoint at the next start). */
  private async persist(step: () => Promise<void>): Promise<boolean> {
    for (let attempt = 0; ; attempt++) {
      try {
        await step()
        return true
      } catch (err) {
        if (this.stopping || this.abort.signal.aborted) return false
        this.lastError = `checkpoint: ${(err as Error).message}`
        this.opts.log.error({ sink: this.name, err: { message: (err as Error).message } }, 'Could not record a delivered batch; retrying the bookkeeping only.')
        await sleep(Math.min(this.opts.retryMaxMs, RETRY_BASE_MS * 2 ** attempt), undefined, { signal: this.wake.signal }).catch(() => {})
      }
    }
  }

  private async save(cp: Checkpoint): Promise<void> {
    await this.opts.spool.saveCheckpoint(this.name, cp)
    this.checkpoint = cp
    this.opts.sink.checkpointed?.(cp.state)
  }

  /**
   * Moves the checkpoint after delivered lines: written in a group, lagging a little, where the
   * destination takes a replay without duplicates; written before the next batch otherwise.
   * `deadLettered`: lines before `cp` were just appended to the dead-letter files, which take no
   * replay without duplicates (a replay refuses them again): written now, as before the lag.
   */
  private async advance(cp: Checkpoint, deadLettered = false): Promise<void> {
    if (!this.opts.sink.replaysWithoutDuplicates || deadLettered) return await this.save(cp)
    this.opts.spool.deferCheckpoint(this.name, cp, () => this.opts.sink.checkpointed?.(cp.state))
    this.checkpoint = cp
  }
}
