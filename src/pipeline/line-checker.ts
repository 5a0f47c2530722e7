// The per-line rules of a batch, in one place for the in-thread pipeline and the parse workers:
// blank lines skipped, over-long lines refused, bytes that are not UTF-8 dead-lettered with their
// bytes intact, each line checked against its dataset's schema, duplicate keys and deep nesting
// dead-lettered, a body whose first lines are not JSON objects at all (CSV, prefixes, another
// encoding) or that wraps the batch in one document refused as not NDJSON, unknown fields counted.
import { isUtf8 } from 'node:buffer'
import { LineRejectCode } from '../errors.js'
import type { Dataset } from './datasets.js'
import { typeMismatches } from './type-drift.js'

/**
 * A schema failure carries the parsed record, for the type-drift counts. A line accepted by the
 * one-pass validator (validator/) has no record, only its unknown top-level fields.
 */
export type Verdict = { ok: true, record: Record<string, unknown> } | { ok: true, record?: undefined, unknownFields: readonly string[] } | { ok: false, code: LineRejectCode, reason: string, record?: Record<string, unknown> }

/** Deeper than any Cloudflare record (they nest two or three levels); MAX_LINE_DEPTH sets it. */
export const DEFAULT_MAX_DEPTH = 32

// Reasons can quote the sender (a JSON.parse excerpt, a field path through a map): they are
// stored with each dead letter and sent back in answers, so they are cut to a bounded length.
const REASON_MAX_CHARS = 300

export function clip(s: string, max = REASON_MAX_CHARS): string {
  return s.length <= max ? s : `${s.slice(0, max)}…[${s.length - max} more chars]`
}

/**
 * Counts the keys of every object in a parsed line, or returns -1 when it nests deeper than
 * maxDepth. Iterative: a 1 MiB line can nest 500,000 levels, more than any call stack.
 */
function countParsedKeys(root: object, maxDepth: number): number {
  let keys = 0
  const stack: unknown[] = [root]
  const depths: number[] = [1]
  while (stack.length > 0) {
    const value = stack.pop() as Record<string, unknown> | unknown[]
    const depth = depths.pop()!
    if (Array.isArray(value)) {
      for (const child of value) {
        if (child !== null && typeof child === 'object') {
          if (depth >= maxDepth) return -1
          stack.push(child)
          depths.push(depth + 1)
        }
      }
      continue
    }
    for (const key in value) {
      keys++
      const child = value[key]
      if (child !== null && typeof child === 'object') {
        if (depth >= maxDepth) return -1
        stack.push(child)
        depths.push(depth + 1)
      }
    }
  }
  return keys
}

/**
 * Whether a parsed line's text holds more keys than its value (a key twice in one object).
 * Cheap first: every key is a closing quote and a colon, so when no colon has whitespace and then
 * a quote before it, the colons right after a quote number at least the keys of the text; when
 * they equal the keys of the value there can be no duplicate. Colons are found by the string's
 * indexOf, which stays in V8 (a Buffer's indexOf crosses into C++ for every colon). Only
 * otherwise (a space before a colon, or '":' inside a string) are the strings of the text walked
 * one by one.
 */
function hasDuplicateKeys(text: string, parsedKeys: number): boolean {
  let quoteColons = 0
  let spaced = false
  for (let at = text.indexOf(':'); at >= 0; at = text.indexOf(':', at + 1)) {
    let before = at - 1
    if (text.charCodeAt(before) === 0x22) { quoteColons++; continue }
    while (isSpace(text.charCodeAt(before))) before--
    if (before < at - 1 && text.charCodeAt(before) === 0x22) { spaced = true; break }
  }
  if (!spaced && quoteColons === parsedKeys) return false
  return countTextKeys(text) !== parsedKeys
}

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

/**
 * Counts the keys written in a line's JSON text (a string followed by ':'), duplicates included.
 * The text parsed, so quotes outside strings open and close strings; only the quotes are visited.
 */
function countTextKeys(text: string): number {
  let keys = 0
  let open = text.indexOf('"')
  while (open >= 0) {
    let close = text.indexOf('"', open + 1)
    while (isEscaped(text, close)) close = text.indexOf('"', close + 1)
    let at = close + 1
    let c = text.charCodeAt(at)
    while (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) c = text.charCodeAt(++at)
    if (c === 0x3a) keys++
    open = text.indexOf('"', at)
  }
  return keys
}

function isEscaped(text: string, quote: number): boolean {
  let backslashes = 0
  while (text.charCodeAt(quote - 1 - backslashes) === 0x5c) backslashes++
  return backslashes % 2 === 1
}

const tooDeep = (maxDepth: number): Verdict => ({ ok: false, code: LineRejectCode.tooDeep, reason: `nested deeper than ${maxDepth} levels (MAX_LINE_DEPTH)` })
const DUPLICATE_KEY: Verdict = { ok: false, code: LineRejectCode.duplicateKey, reason: 'an object has the same key twice; readers disagree on which value counts' }

export function checkLine(dataset: Dataset, line: string, maxDepth = DEFAULT_MAX_DEPTH): Verdict {
  const fast = dataset.lineValidator
  if (fast) {
    const code = fast.check(line, maxDepth)
    if (code === null) return { ok: true, unknownFields: fast.unknownFields }
    if (code === LineRejectCode.tooDeep) return tooDeep(maxDepth)
    if (code === LineRejectCode.duplicateKey) return DUPLICATE_KEY
    // Not JSON, not an object, or a field the schema refuses: the reference below words the
    // reason (JSON.parse's message, Ajv's path) and parses the record the type-drift counts read.
  }
  return checkParsed(dataset, line, maxDepth)
}

/** The reference: JSON.parse, the nesting and duplicate-key walks, then Ajv (LINE_VALIDATOR=ajv, and the words of any other rejection). */
export function checkParsed(dataset: Dataset, line: string, maxDepth = DEFAULT_MAX_DEPTH): Verdict {
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (err) {
    return { ok: false, code: LineRejectCode.notJson, reason: clip(`not JSON: ${(err as Error).message}`) }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, code: LineRejectCode.notObject, reason: `not a JSON object but ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}` }
  }
  // JSON.parse keeps the last of two equal keys; other readers keep the first. A line whose
  // meaning depends on the reader is not stored: every key in the text must be a key of the value.
  const parsedKeys = countParsedKeys(value, maxDepth)
  if (parsedKeys < 0) return tooDeep(maxDepth)
  if (hasDuplicateKeys(line, parsedKeys)) return DUPLICATE_KEY
  if (!dataset.validate(value)) {
    const e = dataset.validate.errors?.[0]
    const where = e?.instancePath ? e.instancePath : '(record)'
    // Fields are nullable, so Ajv's own words would read "must be integer,null".
    const message = e?.keyword === 'type' ? `must be ${String(e.params.type).split(',').join(' or ')}` : e?.message
    return { ok: false, code: LineRejectCode.schema, reason: clip(`${where} ${message ?? 'does not match the schema'}`), record: value as Record<string, unknown> }
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
      return `the first record has no ${dataset.name} field but an array of objects under "${clip(key, 64)}": batch_prefix/batch_suffix framing`
    }
  }
  return null
}

export type LineOutcome =
  | { readonly kind: 'skip' }
  /** Stored as sent, but for `skip` leading bytes (a body's byte-order mark). */
  | { readonly kind: 'valid', readonly skip: number }
  /** `raw` holds the line as text; a line that is not UTF-8 has its bytes in `rawBase64` instead. */
  | { readonly kind: 'reject', readonly code: string, readonly reason: string, readonly raw?: string, readonly rawBase64?: string }
  /** The whole body is refused: nothing of it may be stored. */
  | { readonly kind: 'refuse', readonly error: 'line-too-long' | 'not-ndjson', readonly reason: string }

export interface Tally {
  accepted: number
  countRejected(code: string): void
  countUnknownField(field: string): void
  countTypeMismatch(field: string): void
}

const SKIP: LineOutcome = { kind: 'skip' }
const VALID: LineOutcome = { kind: 'valid', skip: 0 }
const BOM = '\ufeff'

/** Only characters JSON treats as whitespace: a line of these carries nothing. */
function isBlankText(line: string): boolean {
  for (let i = 0; i < line.length; i++) {
    if (!isSpace(line.charCodeAt(i))) return false
  }
  return true
}

/** Rejections that say the body is not JSON objects at all, as opposed to a record that is wrong. */
const FORMAT_CODES: ReadonlySet<string> = new Set([LineRejectCode.notJson, LineRejectCode.notObject, LineRejectCode.notUtf8])

export class LineChecker {
  lineNo = 0
  records = 0
  accepted = 0
  rejected = 0
  private badHead = 0

  constructor (readonly dataset: Dataset, private readonly maxLineBytes: number, private readonly tally: Tally, private readonly maxDepth = DEFAULT_MAX_DEPTH) {}

  /** One line's bytes, without its '\n' (a '\r' before it stays: JSON reads it as whitespace). */
  check(bytes: Buffer): LineOutcome {
    if (isUtf8(bytes)) return this.checkText(bytes.toString('utf8'), bytes.length)
    // Not UTF-8, so not blank either (whitespace is ASCII).
    const early = this.enter(false, bytes.length)
    if (early) return early
    const line = this.lineNo === 1 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes
    return this.failed({ ok: false, code: LineRejectCode.notUtf8, reason: 'not UTF-8: the line is dead-lettered with its bytes in rawBase64' }, () => ({ rawBase64: line.toString('base64') }))
  }

  /**
   * One line known to be UTF-8, as text, and its length in bytes: a piece of lines that is UTF-8
   * throughout is decoded once (lines.ts), not line by line.
   */
  checkText(text: string, bytes: number): LineOutcome {
    const early = this.enter(isBlankText(text), bytes)
    if (early) return early
    // A byte-order mark before the first line marks the body's encoding and is no part of the
    // record (RFC 8259 lets a parser ignore it); anywhere else it makes the line not JSON.
    const bom = this.lineNo === 1 && text.startsWith(BOM)
    const line = bom ? text.slice(1) : text
    const verdict = checkLine(this.dataset, line, this.maxDepth)
    if (!verdict.ok) return this.failed(verdict, () => ({ raw: line }))
    if (this.records === 1) {
      const framed = looksFramed(this.dataset, verdict.record ?? JSON.parse(line) as Record<string, unknown>)
      if (framed) return { kind: 'refuse', error: 'not-ndjson', reason: framed }
    }
    if (verdict.record) {
      const known = this.dataset.knownFields
      for (const key in verdict.record) {
        if (!known.has(key)) this.tally.countUnknownField(key)
      }
    } else {
      for (const key of verdict.unknownFields) this.tally.countUnknownField(key)
    }
    this.accepted++
    this.tally.accepted++
    // The mark is three bytes in UTF-8.
    return bom ? { kind: 'valid', skip: 3 } : VALID
  }

  /** Counts a line: a blank one is skipped, an over-long one refuses the body, any other is a record. */
  private enter(blank: boolean, bytes: number): LineOutcome | null {
    this.lineNo++
    // Blank lines carry nothing (a trailing newline, a record_delimiter of its own).
    if (blank) return SKIP
    if (bytes > this.maxLineBytes) return { kind: 'refuse', error: 'line-too-long', reason: '' }
    this.records++
    return null
  }

  /** A record that failed: a dead letter, or the refusal of a body whose first lines are not JSON objects. */
  private failed(verdict: Verdict & { ok: false }, bytes: () => { raw: string } | { rawBase64: string }): LineOutcome {
    // The first two records both not JSON objects means a format we do not read (CSV,
    // prefixes, another encoding), not a damaged line: refuse the body rather than dead-letter
    // all of it. A record that is a JSON object but fails the schema is a dead letter wherever it is.
    if (FORMAT_CODES.has(verdict.code) && this.records === this.badHead + 1 && this.records <= 2) {
      this.badHead++
      if (this.badHead === 2) return { kind: 'refuse', error: 'not-ndjson', reason: `its first lines are not JSON objects: ${verdict.reason}` }
    }
    this.rejected++
    this.tally.countRejected(verdict.code)
    if (verdict.record) for (const field of typeMismatches(this.dataset, verdict.record)) this.tally.countTypeMismatch(field)
    return { kind: 'reject', code: verdict.code, reason: verdict.reason, ...bytes() }
  }

  /** At the end of the body: a single line that is not a JSON object is not NDJSON either. */
  finish(): string | null {
    return this.badHead === 1 && this.records === 1 ? 'its only line is not a JSON object' : null
  }
}
