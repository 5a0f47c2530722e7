// A batch cut into _bulk requests of about bulkBytes, up to `concurrency` of them in flight, for
// the destinations that speak Elasticsearch's _bulk (Elasticsearch, OpenSearch). Bulks finish out
// of order; their refused lines are dead-lettered, and the batch checkpointed, as soon as every
// bulk before them has finished too. No more than `concurrency` bulks wait for that, so refused
// lines held in memory are bounded by concurrency x bulkBytes however many a batch has.
import { eachLine, type DeliveryBatch, type Progress, type Rejection } from '../../delivery.js'

/** One line to send: its deterministic _id, the line as stored, the document built from it. */
export interface Item {
  readonly id: string
  readonly raw: string
  readonly doc: string
}

/** What a batch's bulks stored so far. */
export interface Counts {
  delivered: number
  duplicates: number
}

export interface WindowOptions {
  readonly bulkBytes: number
  readonly concurrency: number
  /** The document sent for a line (the line parsed once, as `record`). */
  toDocument(line: string, record: Record<string, unknown>): string
  /** The _id of a line as stored. */
  idOf(stored: string): string
  /** Sends one bulk; answers the lines refused for good (dead letters). */
  send(items: Item[]): Promise<Rejection[]>
}

/** A bulk's lines, and where the batch may be checkpointed once it and every bulk before it are done. */
interface Chunk { readonly items: Item[], readonly end: number, readonly rejected: Rejection[], done: boolean }

export async function deliverInBulks(batch: DeliveryBatch, progress: Progress, opts: WindowOptions): Promise<void> {
  const window: Chunk[] = []
  const inflight = new Set<Promise<void>>()
  let reporting = Promise.resolve()
  let failure: unknown = null
  let chunk: Item[] = []
  let chunkBytes = 0
  let pos = batch.from

  const advance = (): Promise<void> => {
    reporting = reporting.then(async () => {
      while (window[0]?.done === true) {
        const head = window.shift()!
        await progress(head.end, head.rejected)
      }
    })
    return reporting
  }

  const flush = async (): Promise<void> => {
    const c: Chunk = { items: chunk, end: pos, rejected: [], done: false }
    chunk = []
    chunkBytes = 0
    // Backpressure: no more lines are read while `concurrency` bulks are unfinished or unreported.
    while (window.length >= opts.concurrency && inflight.size > 0 && !failure) await Promise.race(inflight)
    if (failure) throw failure
    window.push(c)
    const p = opts.send(c.items)
      .then((rejected) => { c.rejected.push(...rejected); c.done = true; return advance() })
      .catch((err: unknown) => { failure ??= err })
      .finally(() => inflight.delete(p))
    inflight.add(p)
  }

  // A block at a time (eachLine): a promise only where a bulk is sent.
  await eachLine(batch, (line) => {
    pos++
    if (failure) return false
    if (line.length === 0) return undefined
    // The line was parsed when it was validated; parsing it again here measured cheaper than
    // reading the few fields a document needs from its text (JSON.parse is native), and than
    // carrying them from the parse worker through the spool.
    const record = JSON.parse(line) as Record<string, unknown>
    const doc = opts.toDocument(line, record)
    // A shaped line keeps the _id of the line as stored (a replay under other shaping finds the
    // same document), and a refusal dead-letters the stored line (a replay shapes it once, not twice).
    const stored = batch.originalOf?.(line) ?? line
    chunk.push({ id: opts.idOf(stored), raw: stored, doc })
    chunkBytes += doc.length + 100
    return chunkBytes >= opts.bulkBytes ? flush() : undefined
  })
  if (chunk.length > 0 && !failure) await flush()
  await Promise.all(inflight)
  if (failure) throw failure
}
