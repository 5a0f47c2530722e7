// Splunk HEC /services/collector/event bodies are JSON envelopes one after another, with no
// array and any whitespace between them. This splits them as text and yields each envelope's
// `event` value as text too: an object event is the record exactly as sent (numbers untouched),
// a string event is taken as the record's JSON text.
import { Transform, type TransformCallback } from 'node:stream'
import { StringDecoder } from 'node:string_decoder'
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

/**
 * Inflated text in, one `event` text per envelope out (object mode), with the nesting and
 * string state carried across chunks. An envelope longer than maxBytes errors the stream.
 */
export class HecEnvelopeSplitter extends Transform {
  private readonly decoder = new StringDecoder('utf8')
  private current = ''
  private depth = 0
  private inString = false
  private escaped = false

  constructor (private readonly maxBytes: number) {
    super({ readableObjectMode: true })
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.scan(this.decoder.write(chunk))
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.scan(this.decoder.end())
      if (this.current.trim() !== '') throw new HecEnvelopeError('the body ends inside an event envelope')
      cb()
    } catch (err) {
      cb(err as Error)
    }
  }

  private scan(text: string): void {
    let start = 0
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!
      if (this.inString) {
        if (this.escaped) this.escaped = false
        else if (c === '\\') this.escaped = true
        else if (c === '"') this.inString = false
        continue
      }
      if (c === '"') this.inString = true
      else if (c === '{') {
        if (this.depth === 0) {
          if (this.current.trim() !== '' || text.slice(start, i).trim() !== '') throw new HecEnvelopeError('Invalid data format: expected a JSON object')
          this.current = ''
          start = i
        }
        this.depth++
      } else if (c === '}') {
        this.depth--
        if (this.depth === 0) {
          const envelope = this.current + text.slice(start, i + 1)
          this.current = ''
          start = i + 1
          const event = eventText(envelope)
          // An envelope without a usable event is dead-lettered by the consumer, like a bad line.
          this.push(event instanceof HecEnvelopeError ? { code: LineRejectCode.envelope, reason: event.message, raw: envelope } satisfies RejectedItem : event)
        }
      } else if (this.depth === 0 && !/\s/.test(c)) {
        throw new HecEnvelopeError(c === '[' ? 'Invalid data format: send envelopes one after another, not an array' : 'Invalid data format: expected a JSON object')
      }
    }
    if (this.depth > 0) {
      this.current += text.slice(start)
      if (this.current.length > this.maxBytes) throw new Error('maximum buffer reached')
    }
  }
}
