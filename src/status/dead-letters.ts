// The latest dead letters per dataset, for the status page: a bounded ring in memory (the store on
// disk keeps them all). Raw lines are cut short here, so the ring's size is known whatever senders send.
import { open } from 'node:fs/promises'

export interface RecentDeadLetter {
  readonly time: string
  readonly stage: string
  readonly code: string
  readonly reason: string
  readonly line?: number
  readonly sink?: string
  /** The line as received, cut to RAW_CHARS characters. */
  readonly raw: string
  readonly truncated: boolean
}

const RAW_CHARS = 300
const REASON_CHARS = 300
/** How much of a batch's dead-letter file is read to find its last records. */
const TAIL_BYTES = 64 * 1024

export class RecentDeadLetters {
  private readonly byDataset = new Map<string, RecentDeadLetter[]>()

  /** keep: how many per dataset (STATUS_DEAD_LETTERS_KEPT); datasets: the known ones, which bound the map. */
  constructor (private readonly keep: number, private readonly datasets: ReadonlySet<string>) {}

  note(dataset: string, r: { time?: unknown, stage?: unknown, code?: unknown, reason?: unknown, line?: unknown, sink?: unknown, raw?: unknown, rawBase64?: unknown }): void {
    if (this.keep === 0 || !this.datasets.has(dataset)) return
    // A line that is not UTF-8 is kept as base64 (issue 11): shown so, never decoded into something else.
    const raw = typeof r.raw === 'string' ? r.raw : typeof r.rawBase64 === 'string' ? `(not UTF-8; base64) ${r.rawBase64}` : ''
    const entry: RecentDeadLetter = {
      time: typeof r.time === 'string' ? r.time : new Date().toISOString(),
      stage: typeof r.stage === 'string' ? r.stage : 'validation',
      code: typeof r.code === 'string' ? r.code : 'unknown',
      reason: typeof r.reason === 'string' ? r.reason.slice(0, REASON_CHARS) : '',
      ...(typeof r.line === 'number' ? { line: r.line } : {}),
      ...(typeof r.sink === 'string' ? { sink: r.sink } : {}),
      raw: raw.slice(0, RAW_CHARS),
      truncated: raw.length > RAW_CHARS
    }
    let ring = this.byDataset.get(dataset)
    if (!ring) this.byDataset.set(dataset, (ring = []))
    ring.push(entry)
    if (ring.length > this.keep) ring.splice(0, ring.length - this.keep)
  }

  /**
   * Notes the last records of a batch's dead-letter file (NDJSON of DeadLetter). Only the file's
   * tail is read: a batch may have dead-lettered a million lines, the page shows the latest few.
   * A record longer than the tail is skipped (its count is still in the stats).
   */
  async noteFile(dataset: string, path: string): Promise<void> {
    if (this.keep === 0 || !this.datasets.has(dataset)) return
    const fh = await open(path, 'r')
    let text: string
    let start: number
    try {
      const { size } = await fh.stat()
      start = Math.max(0, size - TAIL_BYTES)
      const buf = Buffer.alloc(size - start)
      const { bytesRead } = await fh.read(buf, 0, buf.length, start)
      text = buf.subarray(0, bytesRead).toString('utf8')
    } finally {
      await fh.close()
    }
    const lines = text.split('\n')
    if (start > 0) lines.shift() // the first piece may be the end of a record cut by the tail
    for (const l of lines.filter((x) => x !== '').slice(-this.keep)) {
      try {
        this.note(dataset, JSON.parse(l) as Record<string, unknown>)
      } catch {
        // A torn record cannot happen in a sealed file; if it does, the page shows one fewer.
      }
    }
  }

  /** Newest first. */
  latest(dataset: string): readonly RecentDeadLetter[] {
    return [...(this.byDataset.get(dataset) ?? [])].reverse()
  }
}
