// Inflated bytes -> lines -> JSON.parse -> schema check -> staged batch, as one stream with
// backpressure: the consumer does not ask for the next line until the staged file can take it,
// so memory stays flat whatever the batch size.
import { Writable, type Readable, type Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import split2 from 'split2'
import { LineRejectCode, PipelineLineTooLong, PipelineNotNdjson, PipelineUnknownDataset } from '../errors.js'
import type { DeadLetter, SpoolBatch } from '../spool/index.js'
import type { DatasetStats } from '../observability/stats.js'
import type { Dataset } from './datasets.js'

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
}

/** What a framing stage passes on instead of a record it could not extract. */
export interface RejectedItem {
  readonly code: string
  readonly reason: string
  readonly raw: string
}

type Verdict = { ok: true, record: Record<string, unknown> } | { ok: false, code: LineRejectCode, reason: string }

export function checkLine(dataset: Dataset, line: string): Verdict {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    return { ok: false, code: LineRejectCode.notJson, reason: `not JSON: ${(err as Error).message}` }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: LineRejectCode.notObject, reason: `not a JSON object but ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}` }
  }
  if (!dataset.validate(value)) {
    const e = dataset.validate.errors?.[0]
    const where = e?.instancePath ? e.instancePath : '(record)'
    return { ok: false, code: LineRejectCode.schema, reason: `${where} ${e?.message ?? 'does not match the schema'}` }
  }
  return { ok: true, record: value as Record<string, unknown> }
}

/** A whole batch wrapped into one JSON document (batch_prefix '{"events":[' and friends). */
function looksFramed(dataset: Dataset, record: Record<string, unknown>): string | null {
  for (const key in record) {
    if (dataset.knownFields.has(key)) return null
  }
  for (const [key, value] of Object.entries(record)) {
    if (Array.isArray(value) && value.length > 0 && typeof value[0] === 'object' && value[0] !== null) {
      return `the first record has no ${dataset.name} field but an array of objects under "${key}": batch_prefix/batch_suffix framing`
    }
  }
  return null
}

export async function ingest(opts: IngestOptions): Promise<IngestResult> {
  const { tally, requestId } = opts
  let dataset: Dataset | null = typeof opts.dataset === 'function' ? null : opts.dataset
  let batch: SpoolBatch | null = null
  let lineNo = 0
  let records = 0
  let accepted = 0
  let rejected = 0
  let badHead = 0
  let notNdjson: string | null = null

  const deadLetter = (ds: Dataset, target: SpoolBatch, code: string, reason: string, raw: string): Promise<void> => {
    const record: DeadLetter = {
      time: new Date().toISOString(), dataset: ds.name, stage: 'validation', code, reason, line: lineNo, requestId, raw
    }
    return target.writeDeadLetter(record)
  }

  /** The dataset and its batch, settled by the first record when the sender did not name it. */
  const settle = async (line: string): Promise<[Dataset, SpoolBatch] | Error> => {
    if (!dataset) {
      let record: unknown
      try { record = JSON.parse(line) } catch {}
      const chosen = record !== null && typeof record === 'object' && !Array.isArray(record) && typeof opts.dataset === 'function'
        ? opts.dataset(record as Record<string, unknown>)
        : null
      if (!chosen) return new PipelineUnknownDataset()
      dataset = chosen
    }
    batch ??= await opts.open(dataset)
    return [dataset, batch]
  }

  const consumer = new Writable({
    objectMode: true,
    highWaterMark: 64,
    write (item: string | RejectedItem, _enc, done) {
      lineNo++
      if (typeof item !== 'string') {
        // A record the framing could not extract (an HEC envelope without an event).
        if (!dataset || !batch) return done(new PipelineNotNdjson(`the first record is unusable: ${item.reason}`))
        rejected++
        tally.countRejected(item.code)
        deadLetter(dataset, batch, item.code, item.reason, item.raw).then(() => done(), done)
        return
      }
      const line = item
      // Blank lines carry nothing (a trailing newline, a record_delimiter of its own).
      if (line.length === 0 || line.trim().length === 0) return done()
      // split2 measures only the unfinished tail of a chunk; a long line that arrived whole is caught here.
      if (line.length > opts.maxLineBytes) return done(new PipelineLineTooLong(opts.maxLineBytes))
      if (dataset && batch) return take(dataset, batch, line, done)
      settle(line).then((settled) => {
        if (settled instanceof Error) return done(settled)
        take(settled[0], settled[1], line, done)
      }, done)
    }
  })

  function take(ds: Dataset, target: SpoolBatch, line: string, done: (err?: Error | null) => void): void {
    records++
    const verdict = checkLine(ds, line)
    if (!verdict.ok) {
      // The first two records both broken means a format we do not read (CSV, prefixes),
      // not a damaged line: refuse the body rather than dead-letter all of it.
      if (records === badHead + 1 && records <= 2) {
        badHead++
        if (badHead === 2) {
          notNdjson = `its first lines are not JSON objects: ${verdict.reason}`
          return done(new PipelineNotNdjson(notNdjson))
        }
      }
      rejected++
      tally.countRejected(verdict.code)
      deadLetter(ds, target, verdict.code, verdict.reason, line).then(() => done(), done)
      return
    }
    if (records === 1) {
      const framed = looksFramed(ds, verdict.record)
      if (framed) {
        notNdjson = framed
        return done(new PipelineNotNdjson(framed))
      }
    }
    const known = ds.knownFields
    for (const key in verdict.record) {
      if (!known.has(key)) tally.countUnknownField(key)
    }
    accepted++
    tally.accepted++
    if (target.writeEvent(line)) return done()
    target.drain().then(() => done(), done)
  }

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
  if (badHead === 1 && records === 1) notNdjson = 'its only line is not a JSON object'
  return { dataset, batch, lines: lineNo, accepted, rejected, notNdjson }
}
