// Inflated bytes -> lines -> JSON.parse -> schema check -> spool batch, as one stream with
// backpressure: the next chunk is not read until the batch file took the last one, so memory
// stays flat whatever the batch size. Lines stay bytes (lines.ts): they are decoded to be checked
// and stored as they came. With a parse pool, checking runs in a worker thread and this thread
// only moves bytes; without, the same checks run here.
//
// Every stream of a request is inside one pipeline from the moment it exists, and whatever must
// wait (opening the staging file) happens inside it: an error at any moment (the client gone, a
// broken chunked body, a failing disk) then reaches the pipeline and ends this request only.
import { once } from 'node:events'
import { Writable, type Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { isUtf8 } from 'node:buffer'
import { PipelineLineTooLong, PipelineNotNdjson, PipelineUnknownDataset } from '../errors.js'
import { UNRECOGNISED_DATASET, type DeadLetter, type SpoolBatch } from '../spool/index.js'
import type { DatasetStats } from '../observability/stats.js'
import type { Dataset } from './datasets.js'
import { DEFAULT_MAX_DEPTH, LineChecker } from './line-checker.js'
import { PieceCutter, checkLines, checkRecord, eachLine, withBlock, withNewline, type CheckedLines, type LineBudget, type Reject } from './lines.js'
import type { ChunkResult, ParsePool, ParseSession } from './parse-pool.js'

export { checkLine } from './line-checker.js'

const UNKNOWN_DATASET_CODE = new PipelineUnknownDataset().code

export interface IngestOptions {
  /** The batch's dataset, or how to tell it from the first record (HEC senders may not say). */
  readonly dataset: Dataset | ((record: Record<string, unknown>) => Dataset | null)
  /** Opens the batch the valid lines go to, once the dataset is known. */
  readonly open: (dataset: Dataset) => Promise<SpoolBatch>
  /** Splits the inflated bytes into records (Buffers, or RejectedItems); lines on '\n' when absent. */
  readonly framing?: Transform
  readonly source: Readable
  /** Decoders between the source and the line splitter (gunzip, byte meters). */
  readonly through: readonly Transform[]
  /** This batch's own counters; the caller adds them to the totals only if the batch is committed. */
  readonly tally: DatasetStats
  readonly maxLineBytes: number
  /** How deep a line may nest (MAX_LINE_DEPTH). */
  readonly maxDepth?: number
  /** What all unfinished lines of all requests may hold together; unbounded when absent. */
  readonly budget?: LineBudget | null
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
  readonly raw?: string
  readonly rawBase64?: string
}

function refusal(refuse: NonNullable<CheckedLines['refuse']>, maxLineBytes: number): Error {
  return refuse.error === 'line-too-long' ? new PipelineLineTooLong(maxLineBytes) : new PipelineNotNdjson(refuse.reason)
}

function deadLetter(dataset: Dataset, requestId: string, r: Reject): DeadLetter {
  return {
    time: new Date().toISOString(),
    dataset: dataset.name,
    stage: 'validation',
    code: r.code,
    reason: r.reason,
    line: r.line,
    requestId,
    ...(r.rawBase64 === undefined ? { raw: r.raw ?? '' } : { rawBase64: r.rawBase64 })
  }
}

/**
 * Dead letters, then the valid lines, of one checked piece into the batch; a refusal throws.
 * `count`: the rejections are not counted yet (a worker's checker, or a framing stage, cannot).
 */
async function apply(batch: SpoolBatch, dataset: Dataset, opts: IngestOptions, r: CheckedLines, count = false): Promise<void> {
  if (r.refuse) throw refusal(r.refuse, opts.maxLineBytes)
  for (const d of r.rejects) {
    if (count) opts.tally.countRejected(d.code)
    await batch.writeDeadLetter(deadLetter(dataset, opts.requestId, d))
  }
  if (r.count > 0 && !batch.writeBlock(r.valid, r.count, r.crc)) await batch.drain()
}

/** Node's callback style for an async step of a stream method. */
function settle(work: Promise<void>, done: (err?: Error | null) => void): void {
  work.then(() => done(), done)
}

/**
 * Runs the pipeline; on failure waits until the consumer has cleaned up (it may still be opening
 * its staging file when the source fails) before the error goes on.
 */
async function run(opts: IngestOptions, splitter: Transform | null, consumer: Writable): Promise<void> {
  const done = pipeline([opts.source, ...opts.through, ...(splitter ? [splitter] : []), consumer])
  try {
    await done
  } catch (err) {
    if (!consumer.closed) await once(consumer, 'close').catch(() => {})
    throw err
  }
}

export async function ingest(opts: IngestOptions): Promise<IngestResult> {
  if (opts.pool && typeof opts.dataset !== 'function' && !opts.framing) return await ingestInWorker(opts, opts.dataset, opts.pool)
  if (opts.framing) return await ingestRecords(opts, opts.framing)
  return await ingestLines(opts)
}

/**
 * The first non-blank line's record decides the dataset when the sender did not name it; null
 * when it is a JSON object no schema tells and the batch is to be kept whole (opts.unrecognised).
 */
function recognise(opts: IngestOptions, first: Buffer): Dataset | null {
  let record: unknown
  try { record = isUtf8(first) ? JSON.parse(first.toString('utf8')) : null } catch {}
  const isObject = record !== null && typeof record === 'object' && !Array.isArray(record)
  const chosen = isObject && typeof opts.dataset === 'function' ? opts.dataset(record as Record<string, unknown>) : null
  if (chosen) return chosen
  if (!opts.unrecognised || !isObject) throw new PipelineUnknownDataset()
  return null
}

/**
 * A batch whose dataset could not be told: every non-blank line becomes a dead letter of
 * UNRECOGNISED_DATASET, its bytes as received (rawBase64 when they are not UTF-8), so that
 * `npm run replay -- --unrecognised` can ingest it once its schema exists.
 */
class KeepWhole {
  lineNo = 0
  kept = 0
  constructor (private readonly batch: SpoolBatch, private readonly opts: IngestOptions) {}

  /** One line or record (a Buffer), or what a framing stage could not extract (keeps its own reason). */
  async keep(item: Buffer | RejectedItem): Promise<void> {
    this.lineNo++
    let code: string = UNKNOWN_DATASET_CODE
    let reason = this.opts.unrecognised!.reason
    let bytes: { raw: string } | { rawBase64: string }
    if (Buffer.isBuffer(item)) {
      if (item.every((c) => c === 0x20 || c === 0x09 || c === 0x0d || c === 0x0a)) return
      // The same bound as for any line: an over-long one refuses the whole body.
      if (item.length > this.opts.maxLineBytes) throw new PipelineLineTooLong(this.opts.maxLineBytes)
      bytes = isUtf8(item) ? { raw: item.toString('utf8') } : { rawBase64: item.toString('base64') }
    } else {
      // An HEC envelope without a usable event holds no record: it keeps its own reason.
      code = item.code
      reason = item.reason
      bytes = item.rawBase64 === undefined ? { raw: item.raw ?? '' } : { rawBase64: item.rawBase64 }
    }
    this.kept++
    this.opts.tally.countRejected(code)
    await this.batch.writeDeadLetter({ time: new Date().toISOString(), dataset: UNRECOGNISED_DATASET, stage: 'validation', code, reason, line: this.lineNo, requestId: this.opts.requestId, ...bytes })
  }

  result(): IngestResult {
    return { dataset: null, batch: this.batch, lines: this.lineNo, accepted: 0, rejected: this.kept, notNdjson: null, unrecognised: true }
  }
}

function firstRecord(data: Buffer): Buffer | null {
  let found: Buffer | null = null
  eachLine(data, (line) => {
    if (line.every((c) => c === 0x20 || c === 0x09 || c === 0x0d)) return true
    found = line
    return false
  })
  return found
}

/** Every line of a piece of complete lines into a batch kept whole. */
async function keepLines(whole: KeepWhole, lines: Buffer): Promise<void> {
  const all: Buffer[] = []
  eachLine(lines, (line) => { all.push(line); return true })
  for (const line of all) await whole.keep(line)
}

/** Newline-delimited lines, checked on this thread (PARSE_WORKERS=0, or an HEC batch that names no dataset). */
async function ingestLines(opts: IngestOptions): Promise<IngestResult> {
  let dataset: Dataset | null = typeof opts.dataset === 'function' ? null : opts.dataset
  let batch: SpoolBatch | null = null
  let checker: LineChecker | null = null
  let whole: KeepWhole | null = null
  const cutter = new PieceCutter(opts.maxLineBytes, opts.budget ?? null)

  const take = async (lines: Buffer): Promise<void> => {
    if (whole) return await keepLines(whole, lines)
    if (!checker) {
      if (!dataset) {
        // Until the dataset is known, blank lines need no decision.
        const first = firstRecord(lines)
        if (!first) return
        dataset = recognise(opts, first)
        if (!dataset) {
          batch = await opts.unrecognised!.open()
          whole = new KeepWhole(batch, opts)
          return await keepLines(whole, lines)
        }
      }
      batch = await opts.open(dataset)
      checker = new LineChecker(dataset, opts.maxLineBytes, opts.tally, opts.maxDepth ?? DEFAULT_MAX_DEPTH)
    }
    await apply(batch!, dataset!, opts, checkLines(checker, lines))
  }

  const consumer = new Writable({
    highWaterMark: 64 * 1024,
    writev (chunks, done) {
      settle((async () => {
        for (const { chunk } of chunks) {
          const piece = cutter.push(chunk as Buffer)
          if (piece) await take(piece)
        }
      })(), done)
    },
    final (done) {
      let rest: Buffer
      try { rest = cutter.end() } catch (err) { return done(err as Error) }
      settle(rest.length > 0 ? take(rest) : Promise.resolve(), done)
    },
    destroy (err, done) {
      cutter.releaseAll()
      // What was staged belongs to a batch nobody will be told about.
      if (err && batch) settle(batch.discard(), () => done(err))
      else done(err)
    }
  })
  await run(opts, null, consumer)
  return outcome(whole as KeepWhole | null, checker as LineChecker | null, dataset, batch, 0)
}

/** Records a framing stage extracted (HEC event envelopes), checked on this thread. */
async function ingestRecords(opts: IngestOptions, framing: Transform): Promise<IngestResult> {
  let dataset: Dataset | null = typeof opts.dataset === 'function' ? null : opts.dataset
  let batch: SpoolBatch | null = null
  let checker: LineChecker | null = null
  let whole: KeepWhole | null = null
  let items = 0

  const take = async (item: Buffer | RejectedItem): Promise<void> => {
    items++
    if (whole) return await whole.keep(item)
    if (!Buffer.isBuffer(item)) {
      const rejected = item as RejectedItem
      // A record the framing could not extract (an HEC envelope without an event).
      if (!checker || !batch || !dataset) throw new PipelineNotNdjson(`the first record is unusable: ${rejected.reason}`)
      checker.lineNo++
      checker.rejected++
      await apply(batch, dataset, opts, { valid: Buffer.alloc(0), count: 0, cuts: [], crc: 0, rejects: [{ ...rejected, line: checker.lineNo }] }, true)
      return
    }
    if (!checker) {
      dataset ??= recognise(opts, item)
      if (!dataset) {
        batch = await opts.unrecognised!.open()
        whole = new KeepWhole(batch, opts)
        return await whole.keep(item)
      }
      batch = await opts.open(dataset)
      checker = new LineChecker(dataset, opts.maxLineBytes, opts.tally, opts.maxDepth ?? DEFAULT_MAX_DEPTH)
    }
    await apply(batch!, dataset!, opts, checkRecord(checker, item))
  }

  const consumer = new Writable({
    objectMode: true,
    highWaterMark: 64,
    write (item: Buffer | RejectedItem, _enc, done) { settle(take(item), done) },
    destroy (err, done) {
      if (err && batch) settle(batch.discard(), () => done(err))
      else done(err)
    }
  })
  await run(opts, framing, consumer)
  return outcome(whole as KeepWhole | null, checker as LineChecker | null, dataset, batch, items)
}

/**
 * Complete lines go to a parse worker in pieces; the worker answers what to leave out of each
 * (rejected lines, with their dead letters) and the checksum of the rest, in order, and this
 * thread stores the piece it kept as one spool block. The piece is shared with the worker
 * (lines.ts concatShared), never copied or moved, and no bytes come back: memory this thread
 * allocates and frees is what makes V8 collect garbage here, for the whole heap. Posting a copy
 * of each piece kept this thread in full collections (40-50 in 30 short-line batches; none since).
 */
async function ingestInWorker(opts: IngestOptions, dataset: Dataset, pool: ParsePool): Promise<IngestResult> {
  let batch: SpoolBatch | null = null
  let session: ParseSession | null = null
  let final: ChunkResult | null = null
  const cutter = new PieceCutter(opts.maxLineBytes, opts.budget ?? null)
  // Two pieces in flight: the worker checks one while this thread inflates and writes the other.
  const inflight: Array<{ readonly piece: Buffer, readonly answer: Promise<ChunkResult> }> = []
  const send = (piece: Buffer): void => {
    const answer = session!.push(piece)
    // Seen by apply() in its turn; until then a rejection (a worker died) must not go unhandled.
    answer.catch(() => {})
    inflight.push({ piece, answer })
  }
  // The writev or final step under way: destroy() waits for it before discarding the batch, or an
  // answer it was waiting for went on into the discarded batch (a dead letters' file left behind).
  let failed = false
  let working: Promise<void> = Promise.resolve()
  const step = (work: Promise<void>, done: (err?: Error | null) => void): void => {
    working = work.catch(() => {})
    settle(work, done)
  }
  /** The oldest piece's answer, into the batch (not once the request failed: its batch is discarded). */
  const next = async (): Promise<void> => {
    const { piece, answer } = inflight.shift()!
    const r = await answer
    if (failed) return
    await apply(batch!, dataset, opts, withBlock(piece, r), true)
  }

  const consumer = new Writable({
    highWaterMark: 64 * 1024,
    construct (done) {
      settle(opts.open(dataset).then((b) => {
        batch = b
        session = pool.open(dataset.name, opts.maxLineBytes, opts.maxDepth ?? DEFAULT_MAX_DEPTH)
      }), done)
    },
    writev (chunks, done) {
      try {
        for (const { chunk } of chunks) {
          const piece = cutter.push(chunk as Buffer)
          if (piece) send(piece)
        }
      } catch (err) { return done(err as Error) }
      if (inflight.length < 2) return done()
      step((async () => {
        while (inflight.length >= 2) await next()
      })(), done)
    },
    final (done) {
      step((async () => {
        const rest = withNewline(cutter.end())
        while (inflight.length > 0) await next()
        final = await session!.end(rest)
        await apply(batch!, dataset, opts, withBlock(rest, final), true)
      })(), done)
    },
    destroy (err, done) {
      cutter.releaseAll()
      if (!err) return done(null)
      failed = true
      session?.cancel()
      settle(Promise.allSettled([working, ...inflight.map((i) => i.answer)]).then(async () => { await batch?.discard() }), () => done(err))
    }
  })

  await run(opts, null, consumer)
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

/** What an in-thread ingest ends with: a batch kept whole as dead letters, or the checker's counts. */
function outcome(whole: KeepWhole | null, checker: LineChecker | null, dataset: Dataset | null, batch: SpoolBatch | null, linesSeen: number): IngestResult {
  if (whole) return whole.result()
  return { dataset, batch, lines: checker?.lineNo ?? linesSeen, accepted: checker?.accepted ?? 0, rejected: checker?.rejected ?? 0, notNdjson: checker?.finish() ?? null }
}
