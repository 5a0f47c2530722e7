// Inflated bytes -> lines -> JSON.parse -> schema check -> spool batch, as one stream with
// backpressure: the next chunk is not read until the batch file took the last one, so memory
// stays flat whatever the batch size. With a parse pool, splitting and checking run in a worker
// thread and this thread only moves bytes; without, split2 and the checks run here.
import { Writable, type Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { PipelineLineTooLong, PipelineNotNdjson, PipelineUnknownDataset } from '../errors.js'
import { UNRECOGNISED_DATASET, type DeadLetter, type SpoolBatch } from '../spool/index.js'
import type { DatasetStats } from '../observability/stats.js'
import type { Dataset } from './datasets.js'
import { LineChecker, type LineOutcome } from './line-checker.js'
import type { ChunkResult, ParsePool } from './parse-pool.js'

export { checkLine } from './line-checker.js'

const UNKNOWN_DATASET_CODE = new PipelineUnknownDataset().code

export interface IngestOptions {
  /** The batch's dataset, or how to tell it from the first record (HEC senders may not say). */
  readonly dataset: Dataset | ((record: Record<string, unknown>) => Dataset | null)
  /** Opens the batch the valid lines go to, once the dataset is known. */
  readonly open: (dataset: Dataset) => Promise<SpoolBatch>
  /** Splits the inflated text into records; split2 on newlines when absent. */
  readonly framing?: Transform
  readonly source: Readable
  /** Decoders between the source and the line splitter (gunzip, byte meters). */
  readonly through: readonly Transform[]
  /** This batch's own counters; the caller adds them to the totals only if the batch is committed. */
  readonly tally: DatasetStats
  readonly maxLineBytes: number
  readonly requestId: string
  /** Worker threads for split + parse + validate; the work stays on this thread when absent. */
  readonly pool?: ParsePool | null
  /**
   * When the dataset function cannot tell a first record that is a JSON object: keep the whole
   * batch, every line as received, as dead letters in the batch `open()` gives (its dataset is
   * UNRECOGNISED_DATASET), instead of failing with PipelineUnknownDataset.
   */
  readonly unrecognised?: { readonly open: () => Promise<SpoolBatch>, readonly reason: string }
}

export interface IngestResult {
  readonly dataset: Dataset | null
  /** Null when no record was read (an empty body, or one whose dataset could not be told). */
  readonly batch: SpoolBatch | null
  readonly lines: number
  readonly accepted: number
  readonly rejected: number
  /** Why the body is not NDJSON at all, when its first lines say so; nothing of it may be stored then. */
  readonly notNdjson: string | null
  /** The batch holds, as dead letters, every line of a body whose dataset could not be told. */
  readonly unrecognised?: boolean
}

/** What a framing stage passes on instead of a record it could not extract. */
export interface RejectedItem {
  readonly code: string
  readonly reason: string
  readonly raw: string
}

function refusal(outcome: LineOutcome & { kind: 'refuse' }, maxLineBytes: number): Error {
  return outcome.error === 'line-too-long' ? new PipelineLineTooLong(maxLineBytes) : new PipelineNotNdjson(outcome.reason)
}

function deadLetter(dataset: Dataset, requestId: string, line: number, code: string, reason: string, raw: string): DeadLetter {
  return { time: new Date().toISOString(), dataset: dataset.name, stage: 'validation', code, reason, line, requestId, raw }
}

export async function ingest(opts: IngestOptions): Promise<IngestResult> {
  if (opts.pool && typeof opts.dataset !== 'function' && !opts.framing) return await ingestInWorker(opts, opts.dataset, opts.pool)
  const { tally, requestId } = opts
  let dataset: Dataset | null = typeof opts.dataset === 'function' ? null : opts.dataset
  let batch: SpoolBatch | null = null
  let checker: LineChecker | null = null
  let items = 0
  // Set once the first record could not be told and the batch is kept whole as dead letters.
  let unrecognised: { lineNo: number, kept: number } | null = null

  const keep = (raw: string, done: (err?: Error | null) => void, rejected?: RejectedItem): void => {
    const u = unrecognised!
    u.lineNo++
    if (raw.trim().length === 0) return done()
    // The same bound as for any line: an over-long one refuses the whole body.
    if (raw.length > opts.maxLineBytes) return done(new PipelineLineTooLong(opts.maxLineBytes))
    u.kept++
    // An HEC envelope without a usable event keeps its own reason: it holds no record.
    const code = rejected?.code ?? UNKNOWN_DATASET_CODE
    tally.countRejected(code)
    batch!.writeDeadLetter({ time: new Date().toISOString(), dataset: UNRECOGNISED_DATASET, stage: 'validation', code, reason: rejected?.reason ?? opts.unrecognised!.reason, line: u.lineNo, requestId, raw }).then(() => done(), done)
  }

  /** The dataset and its batch, settled by the first record when the sender did not name it. */
  const settle = async (line: string): Promise<LineChecker | Error | null> => {
    if (!dataset) {
      let record: unknown
      try { record = JSON.parse(line) } catch {}
      const chosen = record !== null && typeof record === 'object' && !Array.isArray(record) && typeof opts.dataset === 'function'
        ? opts.dataset(record as Record<string, unknown>)
        : null
      if (!chosen) {
        if (!opts.unrecognised || record === null || typeof record !== 'object' || Array.isArray(record)) return new PipelineUnknownDataset()
        batch = await opts.unrecognised.open()
        unrecognised = { lineNo: 0, kept: 0 }
        return null
      }
      dataset = chosen
    }
    batch ??= await opts.open(dataset)
    checker ??= new LineChecker(dataset, opts.maxLineBytes, tally)
    return checker
  }

  const take = (c: LineChecker, line: string, done: (err?: Error | null) => void): void => {
    const outcome = c.check(line)
    switch (outcome.kind) {
      case 'skip': return done()
      case 'refuse': return done(refusal(outcome, opts.maxLineBytes))
      case 'reject':
        batch!.writeDeadLetter(deadLetter(c.dataset, requestId, c.lineNo, outcome.code, outcome.reason, line)).then(() => done(), done)
        return
      case 'valid':
        if (batch!.writeEvent(line)) return done()
        batch!.drain().then(() => done(), done)
    }
  }

  const consumer = new Writable({
    objectMode: true,
    highWaterMark: 64,
    write (item: string | RejectedItem, _enc, done) {
      items++
      if (unrecognised) return typeof item === 'string' ? keep(item, done) : keep(item.raw, done, item)
      if (typeof item !== 'string') {
        // A record the framing could not extract (an HEC envelope without an event).
        if (!checker || !batch || !dataset) return done(new PipelineNotNdjson(`the first record is unusable: ${item.reason}`))
        checker.lineNo++
        checker.rejected++
        tally.countRejected(item.code)
        batch.writeDeadLetter(deadLetter(dataset, requestId, checker.lineNo, item.code, item.reason, item.raw)).then(() => done(), done)
        return
      }
      if (checker) return take(checker, item, done)
      // Until the dataset is known, blank lines need no decision.
      if (item.trim().length === 0) return done()
      settle(item).then((c) => {
        if (c instanceof Error) return done(c)
        if (c === null) return keep(item, done)
        take(c, item, done)
      }, done)
    }
  })

  // A string matcher splits faster than a regexp, and keeping a '\r' inside the line keeps the
  // bytes exact (JSON.parse ignores it as whitespace).
  const splitter = opts.framing ?? split2('\n', { maxLength: opts.maxLineBytes })
  try {
    await pipeline([opts.source, ...opts.through, splitter, consumer])
  } catch (err) {
    // What was staged belongs to a batch nobody will be told about.
    await (batch as SpoolBatch | null)?.discard()
    if (err instanceof Error && err.message === 'maximum buffer reached') throw new PipelineLineTooLong(opts.maxLineBytes)
    throw err
  }
  const u = unrecognised as { lineNo: number, kept: number } | null
  if (u) return { dataset: null, batch, lines: u.lineNo, accepted: 0, rejected: u.kept, notNdjson: null, unrecognised: true }
  const c = checker as LineChecker | null
  return { dataset, batch, lines: c?.lineNo ?? items, accepted: c?.accepted ?? 0, rejected: c?.rejected ?? 0, notNdjson: c?.finish() ?? null }
}

/** Inflated chunks go to a parse worker; framed valid lines and dead letters come back, in order. */
async function ingestInWorker(opts: IngestOptions, dataset: Dataset, pool: ParsePool): Promise<IngestResult> {
  const batch = await opts.open(dataset)
  const session = pool.open(dataset.name, opts.maxLineBytes)
  let final: ChunkResult | null = null
  // Two chunks in flight: the worker parses one while this thread inflates and writes the other.
  const inflight: Array<Promise<ChunkResult>> = []

  const apply = async (r: ChunkResult): Promise<void> => {
    if (r.refuse) throw refusal({ kind: 'refuse', error: r.refuse.error, reason: r.refuse.reason }, opts.maxLineBytes)
    for (const d of r.rejects) {
      opts.tally.countRejected(d.code)
      await batch.writeDeadLetter(deadLetter(dataset, opts.requestId, d.line, d.code, d.reason, d.raw))
    }
    if (r.count > 0 && !batch.writeFramed(r.framed, r.count)) await batch.drain()
  }

  const consumer = new Writable({
    highWaterMark: 64 * 1024,
    writev (chunks, done) {
      const answer = session.push(chunks.length === 1 ? chunks[0]!.chunk as Buffer : Buffer.concat(chunks.map((c) => c.chunk as Buffer)))
      // Seen by apply() in its turn; until then a rejection (a worker died) must not go unhandled.
      answer.catch(() => {})
      inflight.push(answer)
      if (inflight.length < 2) return done()
      inflight.shift()!.then(apply).then(() => done(), done)
    },
    final (done) {
      void (async () => {
        while (inflight.length > 0) await apply(await inflight.shift()!)
        final = await session.end()
        await apply(final)
      })().then(() => done(), done)
    }
  })

  try {
    await pipeline([opts.source, ...opts.through, consumer])
  } catch (err) {
    session.cancel()
    await Promise.allSettled(inflight)
    await batch.discard()
    throw err
  }
  const f = final as ChunkResult | null
  if (!f?.summary) throw new Error('parse worker ended without a summary')
  opts.tally.accepted += f.summary.accepted
  for (const [field, n] of f.summary.unknownFields) opts.tally.countUnknownField(field, n)
  for (const [field, n] of f.summary.typeMismatches) opts.tally.countTypeMismatch(field, n)
  return {
    dataset,
    batch,
    lines: f.summary.lines,
    accepted: f.summary.accepted,
    rejected: f.summary.rejected,
    notNdjson: f.summary.notNdjson
  }
}
