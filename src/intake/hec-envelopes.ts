// Splunk HEC /services/collector/event bodies are JSON envelopes one after another, with no
// array and any whitespace between them. This splits them as text and yields each envelope's
// `event` value as text too: an object event is the record exactly as sent (numbers untouched),
// a string event is taken as the record's JSON text.
import { Transform, type TransformCallback } from 'node:stream'
import { isUtf8 } from 'node:buffer'
import { LineRejectCode } from '../errors.js'
import type { RejectedItem } from '../pipeline/index.js'

export class HecEnvelopeError extends Error {}

/** Index just past the JSON value starting at `i` (strings, nesting and escapes respected). */
function skipValue(s: string, i: number): number {
  if (s[i] === '"') {
    for (let j = i + 1; j < s.length; j++) {
      if (s[j] === '\\') j++
      else if (s[j] === '"') return j + 1
    }
    return -1
  }
  if (s[i] === '{' || s[i] === '[') {
    let depth = 0
    for (let j = i; j < s.length; j++) {
      const c = s[j]
      if (c === '"') { j = skipValue(s, j) - 1; if (j < 0) return -1; continue }
      if (c === '{' || c === '[') depth++
      else if (c === '}' || c === ']') { depth--; if (depth === 0) return j + 1 }
    }
    return -1
  }
  let j = i
  while (j < s.length && !/[,}\]\s]/.test(s[j]!)) j++
  return j
}

function skipSpace(s: string, i: number): number {
  while (i < s.length && /\s/.test(s[i]!)) i++
  return i
}

/** The text of the top-level `event` value of one envelope, or an error saying why there is none. */
export function eventText(envelope: string): string | HecEnvelopeError {
  let i = skipSpace(envelope, 0)
  if (envelope[i] !== '{') return new HecEnvelopeError('Invalid data format')
  i = skipSpace(envelope, i + 1)
  while (i < envelope.length && envelope[i] !== '}') {
    const keyEnd = skipValue(envelope, i)
    if (envelope[i] !== '"' || keyEnd < 0) return new HecEnvelopeError('Invalid data format')
    const key = JSON.parse(envelope.slice(i, keyEnd)) as string
    i = skipSpace(envelope, keyEnd)
    if (envelope[i] !== ':') return new HecEnvelopeError('Invalid data format')
    const valueStart = skipSpace(envelope, i + 1)
    const valueEnd = skipValue(envelope, valueStart)
    if (valueEnd < 0) return new HecEnvelopeError('Invalid data format')
    if (key === 'event') {
      const text = envelope.slice(valueStart, valueEnd)
      if (text.startsWith('"')) {
        const value = JSON.parse(text) as string
        return value.trim() === '' ? new HecEnvelopeError('Event field cannot be blank') : value
      }
      if (text === 'null' || /^\{\s*\}$/.test(text)) return new HecEnvelopeError('Event field cannot be blank')
      return text
    }
    i = skipSpace(envelope, valueEnd)
    if (envelope[i] === ',') i = skipSpace(envelope, i + 1)
  }
  return new HecEnvelopeError('Event field is required')
}

const BOM = [0xef, 0xbb, 0xbf]

function isSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

/**
 * Inflated bytes in, one `event` per envelope out (object mode): a Buffer holding the event's
 * bytes as sent, or a RejectedItem. The nesting and string state is carried across chunks.
 * Scanning bytes, not text: every byte that matters here is ASCII, which UTF-8 never uses inside
 * a multi-byte character, so an envelope's bytes are cut exactly and checked as UTF-8 whole.
 * An envelope longer than maxBytes errors the stream.
 */
export class HecEnvelopeSplitter extends Transform {
  private parts: Buffer[] = []
  private held = 0
  private depth = 0
  private inString = false
  private escaped = false
  private atStart = true

  constructor (private readonly maxBytes: number) {
    super({ readableObjectMode: true })
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scan(chunk)
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    if (this.depth > 0 || this.inString) return cb(new HecEnvelopeError('the body ends inside an event envelope'))
    cb()
  }

  private scan(chunk: Buffer): void {
    let i = 0
    // A byte-order mark before the first envelope marks the encoding and is no part of any event.
    if (this.atStart && chunk.length > 0) {
      this.atStart = false
      if (chunk[0] === BOM[0] && chunk[1] === BOM[1] && chunk[2] === BOM[2]) i = 3
    }
    let start = i
    for (; i < chunk.length; i++) {
      const c = chunk[i]!
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === 0x5c) this.escaped = true
        else if (c === 0x22) this.inString = false
        continue
      }
      if (c === 0x22) this.inString = true
      else if (c === 0x7b || c === 0x5b) {
        if (this.depth === 0) {
          if (c === 0x5b) throw new HecEnvelopeError('Invalid data format: send envelopes one after another, not an array')
          start = i
        }
        this.depth++
      } else if (c === 0x7d || c === 0x5d) {
        this.depth--
        if (this.depth === 0) {
          const piece = chunk.subarray(start, i + 1)
          const envelope = this.parts.length === 0 ? piece : Buffer.concat([...this.parts, piece])
          this.parts = []
          this.held = 0
          if (envelope.length > this.maxBytes) throw new Error('maximum buffer reached')
          start = i + 1
          this.push(this.event(envelope))
        }
      } else if (this.depth === 0 && !isSpace(c)) {
        throw new HecEnvelopeError('Invalid data format: expected a JSON object')
      }
    }
    if (this.depth > 0 || this.inString) {
      const rest = chunk.subarray(start)
      this.held += rest.length
      if (this.held > this.maxBytes) throw new Error('maximum buffer reached')
      // A copy, so that holding the envelope's beginning does not hold the whole chunk.
      this.parts.push(Buffer.from(rest))
    }
  }

  /** The event of one envelope; one without a usable event is dead-lettered by the consumer, like a bad line. */
  private event(envelope: Buffer): Buffer | RejectedItem {
    if (!isUtf8(envelope)) {
      return { code: LineRejectCode.notUtf8, reason: 'not UTF-8: the envelope is dead-lettered with its bytes in rawBase64', rawBase64: envelope.toString('base64') }
    }
    const text = envelope.toString('utf8')
    const event = eventText(text)
    if (event instanceof HecEnvelopeError) return { code: LineRejectCode.envelope, reason: event.message, raw: text }
    // A string event's record is the string's value: escapes like \ud800 can make it text that
    // UTF-8 cannot hold, which would be stored altered.
    if (!(event as string & { isWellFormed(): boolean }).isWellFormed()) return { code: LineRejectCode.notUtf8, reason: 'the event holds a lone surrogate, which UTF-8 cannot carry', raw: text }
    return Buffer.from(event, 'utf8')
  }
}
