// One record, one line: every file we write is NDJSON and every destination frames records by
// '\n' (Elasticsearch's _bulk body, a reader of .ndjson), so a record that holds a newline of its
// own (an HEC event sent pretty-printed) would become several records there, or make Elasticsearch
// refuse the whole request. A leaf both the pipeline and the spool use.
//
// A line break is '\n', as NDJSON defines it: a line that ends in '\r' (a CRLF sender) is one
// line, kept exact. Once a record is made one line, '\r' between tokens goes with the other
// whitespace.

const LF = 0x0a
const CR = 0x0d
const SPACE = 0x20
const TAB = 0x09
const QUOTE = 0x22
const BACKSLASH = 0x5c

/**
 * A JSON text as one line, without parsing or re-serialising it: the whitespace JSON allows
 * between tokens is left out (it carries nothing), every other byte is kept as it is, so numbers
 * keep all their digits and strings their escapes. A line break inside a string, which valid
 * JSON cannot hold but a record read from an old spool might, is written as its escape.
 * A text without a newline is answered as it is: lines that were one line stay exact.
 */
export function oneLine(text: Buffer): Buffer {
  if (text.indexOf(LF) < 0) return text
  // At most one byte more for each line break inside a string (its escape).
  const out = Buffer.allocUnsafeSlow(text.length * 2)
  let n = 0
  let inString = false
  let escaped = false
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!
    if (inString) {
      if (c === LF || c === CR) {
        // After a backslash the escape's backslash is written already.
        if (!escaped) out[n++] = BACKSLASH
        out[n++] = c === LF ? 0x6e : 0x72
        escaped = false
        continue
      }
      if (escaped) escaped = false
      else if (c === BACKSLASH) escaped = true
      else if (c === QUOTE) inString = false
      out[n++] = c
      continue
    }
    if (c === SPACE || c === TAB || c === LF || c === CR) continue
    if (c === QUOTE) inString = true
    out[n++] = c
  }
  return Buffer.from(out.subarray(0, n))
}
