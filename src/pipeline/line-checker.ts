// The per-line rules of a batch, in one place for the in-thread pipeline and the parse workers:
// blank lines skipped, over-long lines refused, each line checked against its dataset's schema,
// a body whose first lines are not JSON objects (CSV, prefixes) or that wraps the batch in one
// document refused as not NDJSON, unknown fields counted.
import { LineRejectCode } from '../errors.js'
import type { Dataset } from './datasets.js'
import { typeMismatches } from './type-drift.js'

/** A schema failure carries the parsed record, for the type-drift counts. */
export type Verdict = { ok: true, record: Record<string, unknown> } | { ok: false, code: LineRejectCode, reason: string, record?: Record<string, unknown> }

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
    return { ok: false, code: LineRejectCode.schema, reason: `${where} ${e?.message ?? 'does not match the schema'}`, record: value as Record<string, unknown> }
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

export type LineOutcome =
  | { readonly kind: 'skip' }
  | { readonly kind: 'valid' }
  | { readonly kind: 'reject', readonly code: string, readonly reason: string }
  /** The whole body is refused: nothing of it may be stored. */
  | { readonly kind: 'refuse', readonly error: 'line-too-long' | 'not-ndjson', readonly reason: string }

export interface Tally {
  accepted: number
  countRejected(code: string): void
  countUnknownField(field: string): void
  countTypeMismatch(field: string): void
}

export class LineChecker {
  lineNo = 0
  records = 0
  accepted = 0
  rejected = 0
  private badHead = 0

  constructor (readonly dataset: Dataset, private readonly maxLineBytes: number, private readonly tally: Tally) {}

  check(line: string): LineOutcome {
    this.lineNo++
    // Blank lines carry nothing (a trailing newline, a record_delimiter of its own).
    if (line.length === 0 || line.trim().length === 0) return { kind: 'skip' }
    if (line.length > this.maxLineBytes) return { kind: 'refuse', error: 'line-too-long', reason: '' }
    this.records++
    const verdict = checkLine(this.dataset, line)
    if (!verdict.ok) {
      // The first two records both broken means a format we do not read (CSV, prefixes),
      // not a damaged line: refuse the body rather than dead-letter all of it.
      if (this.records === this.badHead + 1 && this.records <= 2) {
        this.badHead++
        if (this.badHead === 2) return { kind: 'refuse', error: 'not-ndjson', reason: `its first lines are not JSON objects: ${verdict.reason}` }
      }
      this.rejected++
      this.tally.countRejected(verdict.code)
      if (verdict.record) for (const field of typeMismatches(this.dataset, verdict.record)) this.tally.countTypeMismatch(field)
      return { kind: 'reject', code: verdict.code, reason: verdict.reason }
    }
    if (this.records === 1) {
      const framed = looksFramed(this.dataset, verdict.record)
      if (framed) return { kind: 'refuse', error: 'not-ndjson', reason: framed }
    }
    const known = this.dataset.knownFields
    for (const key in verdict.record) {
      if (!known.has(key)) this.tally.countUnknownField(key)
    }
    this.accepted++
    this.tally.accepted++
    return { kind: 'valid' }
  }

  /** At the end of the body: a single line that is not a JSON object is not NDJSON either. */
  finish(): string | null {
    return this.badHead === 1 && this.records === 1 ? 'its only line is not a JSON object' : null
  }
}
