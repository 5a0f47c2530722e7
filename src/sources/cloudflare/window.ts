// The contract between the collector runner (runner.ts: cursor, staging, pacing, /health) and
// what fetches one window of records from Cloudflare's API (audit logs v1/v2, Logpull). A
// fetcher knows its API; the runner knows durability. Neither knows the other's part.
import type { Writable } from 'node:stream'

/** A time window in ms since the epoch, [start, end): start included, end excluded. */
export interface Window { readonly start: number, readonly end: number }

export interface WindowFetcher {
  /**
   * Writes every record of the window as one NDJSON line ending in \n to `out`; resolves when the
   * window is complete. Rejects (typed error) when it is not complete; the runner then discards
   * what was written and retries later. Records outside [start, end) must not be written.
   */
  fetch(window: Window, out: Writable, signal: AbortSignal): Promise<{ records: number }>
}

/** Whether a record's time (ms) lies in the window: start included, end excluded. */
export function inWindow(w: Window, t: number): boolean {
  return t >= w.start && t < w.end
}

/**
 * The next window from a cursor: it starts at the cursor and ends windowMs later, but no later
 * than `delayMs` before now, so records the API publishes late (within that delay) are still
 * ahead of the cursor when their window is read. Null while there is nothing to read yet.
 * The end is a whole second (and so is every start after the first, which the collector cuts to
 * one too): Logpull's start and end are read to the second, and an edge with a fraction
 * (`now − delay` carries milliseconds) would be sent as one or rounded by the API.
 */
export function nextWindow(cursor: number, now: number, windowMs: number, delayMs: number): Window | null {
  const end = Math.floor(Math.min(cursor + windowMs, now - delayMs) / 1000) * 1000
  return end > cursor ? { start: cursor, end } : null
}

/** ISO text of a window for logs and /health. */
export function describeWindow(w: Window): string {
  return `${new Date(w.start).toISOString()}/${new Date(w.end).toISOString()}`
}

/**
 * Writes one line to a fetcher's `out`, waiting while it is full: a window is bounded by the disk
 * it is staged on, never by memory. Rejects when the stream fails or the signal aborts.
 */
export async function writeLine(out: Writable, line: string, signal?: AbortSignal): Promise<void> {
  // A destroyed stream never drains: a staging file that failed must end the window, not hang it.
  if (out.destroyed) throw new Error('the staging stream closed')
  signal?.throwIfAborted()
  if (out.write(line)) return
  await new Promise<void>((resolve, reject) => {
    const done = (err?: unknown): void => {
      out.off('drain', onDrain); out.off('error', done); out.off('close', onClose); signal?.removeEventListener('abort', onAbort)
      if (err) reject(err as Error); else resolve()
    }
    const onDrain = (): void => done()
    const onClose = (): void => done(new Error('the staging stream closed'))
    const onAbort = (): void => done(signal!.reason)
    out.once('drain', onDrain); out.once('error', done); out.once('close', onClose)
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}
