// Worker threads that split, parse and validate inflated batch bytes, so that a batch's lines
// are checked on another core while this thread reads the socket, inflates and writes. Each
// request is a session on one worker; its chunks are answered in order (a worker handles its
// messages one after another).
//
// The schemas are read once, by the main thread, and every worker (a restarted one too) gets that
// same snapshot: a worker never re-reads SCHEMAS_DIR, so a file edited (or half-written) while the
// service runs can neither make workers validate against other schemas than the main thread nor
// stop them from starting. A worker that dies fails only the requests it was checking (503
// LPR_ERR_PIPELINE_WORKER_GONE: nothing of them is stored, the sender sends again) and is started
// again after a backoff that doubles while workers keep dying, so a worker that cannot live does
// not turn into a restart loop eating the CPU the intake needs.
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { DatasetSchema } from '../dataset-schema.js'
import { PipelineWorkerGone } from '../errors.js'
import type { CheckedPiece } from './lines.js'
import { DEFAULT_LINE_VALIDATOR, type LineValidatorKind } from './datasets.js'

export type { Reject } from './lines.js'

export interface ChunkResult extends CheckedPiece {
  /** On the last answer of a session. */
  readonly summary?: {
    readonly lines: number
    readonly accepted: number
    readonly rejected: number
    readonly notNdjson: string | null
    readonly unknownFields: ReadonlyArray<[string, number]>
    readonly typeMismatches: ReadonlyArray<[string, number]>
  }
}

interface Pending { resolve(r: ChunkResult): void, reject(err: Error): void }

interface Slot {
  worker: Worker
  sessions: number
  /** Set when the worker died: its sessions fail at once instead of waiting forever. */
  dead: Error | null
  readonly pending: Map<number, Pending>
  readonly startedAt: number
}

export interface ParsePoolOptions {
  /** The schemas as the main thread loaded them (schemaSnapshot): the one snapshot every worker validates against. */
  readonly schemas: ReadonlyArray<readonly [string, DatasetSchema]>
  readonly driftFieldsMax: number
  readonly driftFieldNameMaxChars: number
  readonly maxLineBytes: number
  /** LINE_VALIDATOR, so workers check lines as the main thread would. */
  readonly lineValidator?: LineValidatorKind
  /** First wait before a dead worker is replaced; doubles per death in a row, up to restartMaxMs. */
  readonly restartBaseMs?: number
  readonly restartMaxMs?: number
}

/** A worker that lived this long before dying resets the backoff: it was not a restart loop. */
const HEALTHY_LIFE_MS = 60_000

export interface ParseSession {
  /**
   * Complete lines, each with its '\n' (lines.ts holds the unfinished one). A piece in shared
   * memory (lines.ts concatShared) is shared with the worker, any other buffer copied.
   */
  push(lines: Buffer): Promise<ChunkResult>
  /** The body's last lines (withNewline), or nothing. */
  end(rest: Buffer): Promise<ChunkResult>
  cancel(): void
}

export class ParsePool {
  private readonly slots: Slot[] = []
  private nextId = 1
  private closed = false
  /** Deaths in a row (a worker dying young): the restart backoff's exponent. */
  private deaths = 0
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly workerData: Omit<ParsePoolOptions, 'restartBaseMs' | 'restartMaxMs'>
  /** Workers started since the pool was made, the first ones included (tests and logs). */
  spawned = 0

  constructor (readonly size: number, private readonly opts: ParsePoolOptions, private readonly log: Logger) {
    this.workerData = { schemas: opts.schemas, driftFieldsMax: opts.driftFieldsMax, driftFieldNameMaxChars: opts.driftFieldNameMaxChars, maxLineBytes: opts.maxLineBytes, lineValidator: opts.lineValidator ?? DEFAULT_LINE_VALIDATOR }
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  /** The workers now (a dead one until its replacement starts); a test kills one mid-batch. */
  workers(): readonly Worker[] {
    return this.slots.map((s) => s.worker)
  }

  private spawn(): Slot {
    this.spawned++
    const worker = new Worker(new URL('./parse-worker.js', import.meta.url), {
      workerData: this.workerData,
      // A worker's live data is a few chunks and the line being parsed; without limits V8 lets
      // each worker's heap grow by tens of MB before collecting. The old generation leaves room
      // for the objects of the longest line allowed (MAX_LINE_BYTES) several times over.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 + 8 * Math.ceil(this.workerData.maxLineBytes / 2 ** 20) }
    })
    const slot: Slot = { worker, sessions: 0, dead: null, pending: new Map(), startedAt: Date.now() }
    worker.on('message', (m: { mid: number, result?: ChunkResult, error?: string }) => {
      const p = slot.pending.get(m.mid)
      if (!p) return
      slot.pending.delete(m.mid)
      if (m.error !== undefined) p.reject(new Error(m.error))
      else p.resolve(m.result!)
    })
    const fail = (cause: Error): void => {
      if (slot.dead) return
      const err = new PipelineWorkerGone(cause.message)
      slot.dead = err
      for (const p of slot.pending.values()) p.reject(err)
      slot.pending.clear()
      if (this.closed) return
      this.deaths = Date.now() - slot.startedAt >= HEALTHY_LIFE_MS ? 1 : this.deaths + 1
      const base = this.opts.restartBaseMs ?? 100
      const waitMs = Math.min(this.opts.restartMaxMs ?? 30_000, base * 2 ** Math.min(this.deaths - 1, 20))
      this.log.error({ err: cause, restartInMs: waitMs, deathsInARow: this.deaths }, 'A parse worker died; its requests were answered 503 and another starts after a backoff.')
      const timer = setTimeout(() => {
        this.timers.delete(timer)
        if (this.closed) return
        const i = this.slots.indexOf(slot)
        if (i >= 0) this.slots[i] = this.spawn()
      }, waitMs)
      timer.unref()
      this.timers.add(timer)
    }
    worker.on('error', fail)
    worker.on('exit', (code) => { if (!this.closed) fail(new Error(`parse worker exited with code ${code}`)) })
    worker.unref()
    return slot
  }

  open(dataset: string, maxLineBytes: number, maxDepth: number): ParseSession {
    // The least busy live worker takes the request; while every one is being restarted, the
    // request is refused (503) rather than queued behind workers that may not come back soon.
    const live = this.slots.filter((s) => !s.dead)
    if (live.length === 0) {
      const err = new PipelineWorkerGone('every parse worker is restarting')
      return { push: () => Promise.reject(err), end: () => Promise.reject(err), cancel: () => {} }
    }
    const slot = live.reduce((a, b) => (b.sessions < a.sessions ? b : a))
    const sid = this.nextId++
    slot.sessions++
    slot.worker.postMessage({ op: 'open', sid, dataset, maxLineBytes, maxDepth })
    let ended = false
    const ask = (message: Record<string, unknown>, transfer: ArrayBuffer[] = []): Promise<ChunkResult> => {
      const mid = this.nextId++
      return new Promise((resolve, reject) => {
        if (slot.dead) return reject(slot.dead)
        slot.pending.set(mid, { resolve, reject })
        slot.worker.postMessage({ ...message, sid, mid }, transfer)
      })
    }
    const finish = (): void => { if (!ended) { ended = true; slot.sessions-- } }
    return {
      push: (lines) => ask({ op: 'chunk', data: lines }),
      end: (rest) => ask({ op: 'end', data: rest }).finally(finish),
      cancel: () => { slot.worker.postMessage({ op: 'cancel', sid }); finish() }
    }
  }

  async close(): Promise<void> {
    this.closed = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    await Promise.all(this.slots.map((s) => s.worker.terminate()))
  }
}
