// Worker threads that split, parse and validate inflated batch bytes, so that a batch's lines
// are checked on another core while this thread reads the socket, inflates and writes. Each
// request is a session on one worker; its chunks are answered in order (a worker handles its
// messages one after another).
import { Worker } from 'node:worker_threads'
import type { Logger } from 'pino'
import type { CheckedPiece } from './lines.js'

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
}

export interface ParseSession {
  /** Complete lines, each with its '\n' (lines.ts holds the unfinished one); the worker gets a copy. */
  push(lines: Buffer): Promise<ChunkResult>
  /** The body's last lines (withNewline), or nothing. */
  end(rest: Buffer): Promise<ChunkResult>
  cancel(): void
}

export class ParsePool {
  private readonly slots: Slot[] = []
  private nextId = 1
  private closed = false

  constructor (readonly size: number, private readonly workerData: { schemasDir: string, driftFieldsMax: number, driftFieldNameMaxChars: number, maxLineBytes: number }, private readonly log: Logger) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn())
  }

  private spawn(): Slot {
    const worker = new Worker(new URL('./parse-worker.js', import.meta.url), {
      workerData: this.workerData,
      // A worker's live data is a few chunks and the line being parsed; without limits V8 lets
      // each worker's heap grow by tens of MB before collecting. The old generation leaves room
      // for the objects of the longest line allowed (MAX_LINE_BYTES) several times over.
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 32 + 8 * Math.ceil(this.workerData.maxLineBytes / 2 ** 20) }
    })
    const slot: Slot = { worker, sessions: 0, dead: null, pending: new Map() }
    worker.on('message', (m: { mid: number, result?: ChunkResult, error?: string }) => {
      const p = slot.pending.get(m.mid)
      if (!p) return
      slot.pending.delete(m.mid)
      if (m.error !== undefined) p.reject(new Error(m.error))
      else p.resolve(m.result!)
    })
    const fail = (err: Error): void => {
      if (slot.dead) return
      slot.dead = err
      for (const p of slot.pending.values()) p.reject(err)
      slot.pending.clear()
      if (this.closed) return
      this.log.error({ err }, 'A parse worker died; starting another.')
      const i = this.slots.indexOf(slot)
      if (i >= 0) this.slots[i] = this.spawn()
    }
    worker.on('error', fail)
    worker.on('exit', (code) => { if (!this.closed) fail(new Error(`parse worker exited with code ${code}`)) })
    worker.unref()
    return slot
  }

  open(dataset: string, maxLineBytes: number, maxDepth: number): ParseSession {
    // The least busy worker takes the request.
    const slot = this.slots.reduce((a, b) => (b.sessions < a.sessions ? b : a))
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
    await Promise.all(this.slots.map((s) => s.worker.terminate()))
  }
}
