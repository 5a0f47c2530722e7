// Inflated bytes -> lines, as bytes. Lines are cut at '\n' (0x0a) without decoding anything, so a
// line is stored exactly as it came and its length is counted in bytes (MAX_LINE_BYTES); decoding
// is left to the check of each line (line-checker.ts), which also refuses bytes that are not UTF-8.
//
// The only line that waits in memory across chunks is the unfinished one at the end of a chunk.
// Each request holds at most one, of at most MAX_LINE_BYTES; all requests together hold at most
// LINE_BUFFER_BUDGET_BYTES of them (slow senders of long lines cannot take the process's memory).
import { PipelineLineTooLong, PipelineLinesBusy } from '../errors.js'
import { frame } from '../spool/format.js'
import type { LineChecker } from './line-checker.js'

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

/**
 * Holds one request's unfinished line between chunks. `push` answers the chunk's complete lines
 * (the held beginning joined to them) or null when the chunk ended no line; `end` answers what is
 * left. Throws a coded error when the held line passes the line limit or the shared budget.
 */
export class LineCutter {
  private parts: Buffer[] = []
  private held = 0

  constructor (private readonly maxLineBytes: number, private readonly budget: LineBudget | null) {}

  push(chunk: Buffer): Buffer | null {
    const nl = chunk.lastIndexOf(NEWLINE)
    if (nl < 0) {
      this.hold(chunk)
      return null
    }
    let complete = chunk.subarray(0, nl + 1)
    if (this.held > 0) {
      complete = Buffer.concat([...this.parts, complete])
      this.releaseAll()
    }
    // A copy of the unfinished end, so that holding it does not hold the whole chunk.
    if (nl + 1 < chunk.length) this.hold(Buffer.from(chunk.subarray(nl + 1)))
    return complete
  }

  end(): Buffer {
    const rest = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts)
    this.releaseAll()
    return rest
  }

  /** Gives the held bytes back to the budget (the request ended, failed or was cut off). */
  releaseAll(): void {
    this.budget?.release(this.held)
    this.parts = []
    this.held = 0
  }

  private hold(part: Buffer): void {
    if (this.held + part.length > this.maxLineBytes) throw new PipelineLineTooLong(this.maxLineBytes)
    if (this.budget && !this.budget.take(part.length)) throw new PipelineLinesBusy(this.budget.bytes)
    this.parts.push(part)
    this.held += part.length
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

export interface CheckedLines {
  /** Valid lines as spool records (format.ts), ready to append. */
  readonly framed: Buffer
  readonly count: number
  readonly rejects: Reject[]
  readonly refuse?: { readonly error: 'line-too-long' | 'not-ndjson', readonly reason: string }
}

const NOTHING = Buffer.alloc(0)

/** Gathers the outcomes of a piece's lines: valid ones to frame together, rejected ones, a refusal. */
class Outcomes {
  readonly valid: Buffer[] = []
  readonly rejects: Reject[] = []
  refuse: CheckedLines['refuse']

  constructor (private readonly checker: LineChecker) {}

  /** False once the body is refused: nothing more of it is looked at. */
  take(bytes: Buffer): boolean {
    const outcome = this.checker.check(bytes)
    switch (outcome.kind) {
      case 'valid': this.valid.push(outcome.line); return true
      case 'skip': return true
      case 'reject':
        this.rejects.push({ line: this.checker.lineNo, code: outcome.code, reason: outcome.reason, ...(outcome.rawBase64 === undefined ? { raw: outcome.raw! } : { rawBase64: outcome.rawBase64 }) })
        return true
      case 'refuse':
        this.refuse = { error: outcome.error, reason: outcome.reason }
        return false
    }
  }

  result(): CheckedLines {
    const { valid, rejects, refuse } = this
    return { framed: valid.length > 0 ? frame(valid) : NOTHING, count: valid.length, rejects, ...(refuse ? { refuse } : {}) }
  }
}

/**
 * Checks each line of `data` (complete lines; the last may lack its '\n') and frames the valid
 * ones, as they were sent, into one buffer. Stops at a line that refuses the whole body.
 */
export function checkLines(checker: LineChecker, data: Buffer): CheckedLines {
  const out = new Outcomes(checker)
  eachLine(data, (line) => out.take(line))
  return out.result()
}

/** The same for one record that a framing stage extracted (it may hold newlines of its own). */
export function checkRecord(checker: LineChecker, record: Buffer): CheckedLines {
  const out = new Outcomes(checker)
  out.take(record)
  return out.result()
}
