// Inflated bytes -> pieces of lines -> checked blocks, as bytes. Lines are cut at '\n' (0x0a)
// without decoding anything, so a line is stored exactly as it came and its length is counted in
// bytes (MAX_LINE_BYTES); decoding is left to the check of each line (line-checker.ts), which
// also refuses bytes that are not UTF-8.
import { PipelineLineTooLong, PipelineLinesBusy } from '../errors.js'
import { isUtf8 } from 'node:buffer'
import { blockCrc } from '../spool/format.js'
import { oneLine } from '../one-line.js'
import type { LineChecker, LineOutcome } from './line-checker.js'

/** The memory all unfinished lines of all requests may take together, shared by every request. */
export class LineBudget {
  used = 0
  constructor (readonly bytes: number) {}

  /** False when `n` more bytes would pass the budget. */
  take(n: number): boolean {
    if (this.used + n > this.bytes) return false
    this.used += n
    return true
  }

  release(n: number): void {
    this.used -= n
  }
}

const NEWLINE = 0x0a

/** Complete lines are gathered into pieces of about this size: a piece costs two messages between threads and a block header, whatever its size. */
const PIECE_BYTES = 256 * 1024

/**
 * Gathers one request's inflated bytes into pieces of complete lines of about PIECE_BYTES, each
 * one buffer in shared memory (concatShared): every byte is copied once, into a piece that a
 * parse worker reads where it is and the spool stores whole. `push` answers a piece, or null while fewer bytes of
 * complete lines are gathered; `end` answers what is left (its last line may lack '\n').
 *
 * What follows the last newline, the unfinished line, waits for the next piece. It is what the
 * limits count: at most MAX_LINE_BYTES for one request, and LINE_BUFFER_BUDGET_BYTES for all
 * requests together (slow senders of long lines cannot take the process's memory); a coded error
 * is thrown when either would be passed. Complete lines wait for at most one piece.
 */
export class PieceCutter {
  private parts: Buffer[] = []
  private bytes = 0
  /** Bytes since the last newline: the unfinished line. */
  private open = 0

  constructor (private readonly maxLineBytes: number, private readonly budget: LineBudget | null) {}

  push(chunk: Buffer): Buffer | null {
    if (chunk.length === 0) return null
    const nl = chunk.lastIndexOf(NEWLINE)
    this.hold(nl < 0 ? this.open + chunk.length : chunk.length - nl - 1)
    this.parts.push(chunk)
    this.bytes += chunk.length
    if (this.bytes - this.open < PIECE_BYTES) return null
    const all = concatShared(this.parts, this.bytes)
    const complete = this.bytes - this.open
    // The unfinished line is copied out, so that the next piece does not hold this one's memory.
    this.parts = this.open > 0 ? [Buffer.from(all.subarray(complete))] : []
    this.bytes = this.open
    return all.subarray(0, complete)
  }

  end(): Buffer {
    const rest = concatShared(this.parts, this.bytes)
    this.releaseAll()
    return rest
  }

  /** Gives the unfinished line back to the budget (the request ended, failed or was cut off). */
  releaseAll(): void {
    this.budget?.release(this.open)
    this.parts = []
    this.bytes = 0
    this.open = 0
  }

  private hold(open: number): void {
    if (open > this.maxLineBytes) throw new PipelineLineTooLong(this.maxLineBytes)
    const more = open - this.open
    if (more > 0 && this.budget && !this.budget.take(more)) throw new PipelineLinesBusy(this.budget.bytes)
    if (more < 0) this.budget?.release(-more)
    this.open = open
  }
}

/** Calls `take` with each line of `data` (complete lines, the last may lack its '\n'), newline excluded. */
export function eachLine(data: Buffer, take: (line: Buffer) => boolean): void {
  let start = 0
  while (start < data.length) {
    let nl = data.indexOf(NEWLINE, start)
    if (nl < 0) nl = data.length
    if (!take(data.subarray(start, nl))) return
    start = nl + 1
  }
}

/** A dead-lettered line as the checks report it: its text, or its bytes when they are not UTF-8. */
export interface Reject {
  readonly line: number
  readonly code: string
  readonly reason: string
  readonly raw?: string
  readonly rawBase64?: string
}

/** What checking a piece of lines found: what a parse worker answers, without the bytes. */
export interface CheckedPiece {
  /** Valid lines: the piece's bytes but for `cuts`. */
  readonly count: number
  /** Byte ranges of the piece left out of its block, as [from, to) pairs in order: rejected and blank lines, a byte-order mark. */
  readonly cuts: readonly number[]
  /** blockCrc of the kept bytes, computed where the lines were checked (a parse worker). */
  readonly crc: number
  readonly rejects: Reject[]
  readonly refuse?: { readonly error: 'line-too-long' | 'not-ndjson', readonly reason: string }
}

export interface CheckedLines extends CheckedPiece {
  /** The valid lines as they were sent, each followed by '\n': one spool block (format.ts). */
  readonly valid: Buffer
}

const NL = Buffer.from('\n')

/**
 * One buffer of its own, never a slice of Node's shared pool: a copy posted to a worker carries
 * just these bytes (a view into the pool would carry the whole pool).
 */
export function concatOwned(parts: readonly Buffer[], total: number): Buffer {
  const out = Buffer.allocUnsafeSlow(total)
  let at = 0
  for (const p of parts) at += p.copy(out, at)
  return out
}

/**
 * concatOwned into a SharedArrayBuffer: posted to a parse worker, the piece is shared, not copied
 * (a copy of every piece cost the main thread ~0.25 µs per short line, and the worker as much
 * again in memory it had to allocate and collect). Nothing writes to a piece once it is made: the
 * worker only reads it, and the spool stores it as it is.
 */
export function concatShared(parts: readonly Buffer[], total: number): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(total))
  let at = 0
  for (const p of parts) at += p.copy(out, at)
  return out
}

/** The parts of a piece its cuts leave. */
function keptParts(piece: Buffer, cuts: readonly number[]): Buffer[] {
  const parts: Buffer[] = []
  let at = 0
  for (let i = 0; i < cuts.length; i += 2) {
    if (cuts[i]! > at) parts.push(piece.subarray(at, cuts[i]))
    at = cuts[i + 1]!
  }
  if (piece.length > at) parts.push(piece.subarray(at))
  return parts
}

/** The block a checked piece stores: the piece itself when nothing was cut (the usual case), else a copy of what is kept. */
function keptOf(piece: Buffer, cuts: readonly number[]): Buffer {
  if (cuts.length === 0) return piece
  const parts = keptParts(piece, cuts)
  return concatOwned(parts, parts.reduce((n, p) => n + p.length, 0))
}

/** Gathers the outcomes of a piece's lines: the ranges left out, rejected lines, a refusal. */
class Outcomes {
  readonly cuts: number[] = []
  count = 0
  readonly rejects: Reject[] = []
  refuse: CheckedLines['refuse']

  constructor (private readonly checker: LineChecker, private readonly data: Buffer) {}

  /** The outcome of the line at bytes [start, end) of the piece ('\n' at end); false once the body is refused. */
  take(outcome: LineOutcome, start: number, end: number): boolean {
    switch (outcome.kind) {
      case 'valid':
        this.count++
        // A byte-order mark left out of the line.
        if (outcome.skip > 0) this.cut(start, start + outcome.skip)
        return true
      case 'skip': this.cut(start, end + 1); return true
      case 'reject':
        this.cut(start, end + 1)
        this.rejects.push(rejectOf(this.checker, outcome))
        return true
      case 'refuse':
        this.refuse = { error: outcome.error, reason: outcome.reason }
        return false
    }
  }

  private cut(from: number, to: number): void {
    // Adjacent ranges (two rejected lines in a row) are one.
    if (this.cuts.length > 0 && this.cuts[this.cuts.length - 1] === from) this.cuts[this.cuts.length - 1] = to
    else this.cuts.push(from, to)
  }

  result(): CheckedPiece {
    const { count, rejects, refuse } = this
    if (refuse || count === 0) return { count: 0, cuts: [0, this.data.length], crc: 0, rejects, ...(refuse ? { refuse } : {}) }
    return { count, cuts: this.cuts, crc: blockCrc(count, keptParts(this.data, this.cuts)), rejects }
  }
}

function rejectOf(checker: LineChecker, outcome: LineOutcome & { kind: 'reject' }): Reject {
  return { line: checker.lineNo, code: outcome.code, reason: outcome.reason, ...(outcome.rawBase64 === undefined ? { raw: outcome.raw! } : { rawBase64: outcome.rawBase64 }) }
}

const NOTHING = Buffer.alloc(0)

/** `data` with the newline a body's last line may come without: a block stores one after every line. */
export function withNewline(data: Buffer): Buffer {
  return data.length > 0 && data[data.length - 1] !== NEWLINE ? concatOwned([data, NL], data.length + 1) : data
}

/**
 * Checks each line of `data` (complete lines, each with its '\n': withNewline) and finds what of
 * it is kept: the valid lines, as they were sent. Stops at a line that refuses the whole body.
 */
export function checkPiece(checker: LineChecker, data: Buffer): CheckedPiece {
  const out = new Outcomes(checker, data)
  // Each line is decoded on its own: JSON.parse of a slice of one decoded piece measured half as
  // fast (V8 copies a sliced string before parsing it). A piece that is UTF-8 throughout (the
  // usual one) has only UTF-8 lines, '\n' being no part of any multi-byte character: its lines
  // are decoded straight from it, without a Buffer or a UTF-8 check each.
  const utf8 = isUtf8(data)
  let start = 0
  while (start < data.length) {
    const nl = data.indexOf(NEWLINE, start)
    const outcome = utf8 ? checker.checkText(data.toString('utf8', start, nl), nl - start) : checker.check(data.subarray(start, nl))
    if (!out.take(outcome, start, nl)) break
    start = nl + 1
  }
  return out.result()
}

/** What checking a piece found, with the block of the lines it keeps. */
export function withBlock(piece: Buffer, r: CheckedPiece): CheckedLines {
  return { ...r, valid: r.count > 0 ? keptOf(piece, r.cuts) : NOTHING }
}

/** checkPiece, with the block of the lines kept. */
export function checkLines(checker: LineChecker, data: Buffer): CheckedLines {
  const piece = withNewline(data)
  return withBlock(piece, checkPiece(checker, piece))
}

/**
 * The same for one record that a framing stage extracted (an HEC event). One sent pretty-printed
 * holds line breaks of its own: it is checked as sent and stored as one line (oneLine), since
 * every destination and every file we write frames records by line.
 */
export function checkRecord(checker: LineChecker, record: Buffer): CheckedLines {
  const outcome = checker.check(record)
  const none = { valid: NOTHING, count: 0, cuts: [], crc: 0 }
  switch (outcome.kind) {
    case 'valid': {
      const line = oneLine(record.subarray(outcome.skip))
      const valid = concatOwned([line, NL], line.length + 1)
      return { valid, count: 1, cuts: [], crc: blockCrc(1, valid), rejects: [] }
    }
    case 'refuse': return { ...none, rejects: [], refuse: { error: outcome.error, reason: outcome.reason } }
    case 'skip': return { ...none, rejects: [] }
    case 'reject': return { ...none, rejects: [rejectOf(checker, outcome)] }
  }
}
