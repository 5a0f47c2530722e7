// The tokens of JSON text, read in place for the one-pass validator (scan.ts): where a string or
// a number ends, whether it is valid, and what Ajv would call a number. Nothing here allocates
// except decode (a string with escapes, when its value is needed) and a long number's conversion.
import { T } from './plan.js'

/** Whether the last string read by stringEnd held a backslash. */
export let escapes = false

/**
 * The index of the quote closing the string whose text starts at `i`, or -1 when it is not a
 * JSON string (a control character, a bad escape, no closing quote).
 */
export function stringEnd(s: string, i: number): number {
  // The usual string has neither a backslash nor a control character: its end is the next quote,
  // found by indexOf (native, fast), when that comes before the next backslash and control character.
  const quote = s.indexOf('"', i)
  if (quote < 0) return -1
  if (nextBackslash < i) nextBackslash = orEnd(s.indexOf('\\', i), s)
  if (nextControl < i) nextControl = controlFrom(s, i)
  if (quote < nextBackslash && quote < nextControl) {
    escapes = false
    return quote
  }
  return stringEndSlow(s, i)
}

/** The next backslash or control character of the line, or its length when there is none. */
let nextBackslash = 0
let nextControl = 0

/** Called before a line is read. */
export function resetStrings(): void {
  nextBackslash = -1
  nextControl = -1
}

function orEnd(found: number, s: string): number {
  return found < 0 ? s.length : found
}

const CONTROL = /[\u0000-\u001f]/g

function controlFrom(s: string, i: number): number {
  CONTROL.lastIndex = i
  return CONTROL.test(s) ? CONTROL.lastIndex - 1 : s.length
}

/** stringEnd character by character, through escapes. */
function stringEndSlow(s: string, i: number): number {
  escapes = false
  for (;;) {
    const c = s.charCodeAt(i)
    if (c === 0x22) return i
    if (c === 0x5c) {
      escapes = true
      const e = s.charCodeAt(i + 1)
      if (e === 0x75) {
        if (!isHex(s.charCodeAt(i + 2)) || !isHex(s.charCodeAt(i + 3)) || !isHex(s.charCodeAt(i + 4)) || !isHex(s.charCodeAt(i + 5))) return -1
        i += 6
        continue
      }
      if (e === 0x22 || e === 0x5c || e === 0x2f || e === 0x62 || e === 0x66 || e === 0x6e || e === 0x72 || e === 0x74) { i += 2; continue }
      return -1
    }
    // Past the end charCodeAt is NaN: not >= 0x20.
    if (!(c >= 0x20)) return -1
    i++
  }
}

function isHex(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

/** A string with escapes, decoded (its text was checked by stringEnd). */
export function decode(s: string, from: number, close: number): string {
  return JSON.parse(s.slice(from - 1, close + 1)) as string
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

/** Whether the last number read by numberEnd had neither fraction nor exponent. */
let wholeNumber = true

/** The end of the JSON number starting at `i`, or -1 when there is none. */
export function numberEnd(s: string, i: number): number {
  wholeNumber = true
  let c = s.charCodeAt(i)
  if (c === 0x2d) c = s.charCodeAt(++i)
  if (c === 0x30) c = s.charCodeAt(++i)
  else if (c >= 0x31 && c <= 0x39) { do c = s.charCodeAt(++i); while (isDigit(c)) } else return -1
  if (c === 0x2e) {
    wholeNumber = false
    c = s.charCodeAt(++i)
    if (!isDigit(c)) return -1
    do c = s.charCodeAt(++i); while (isDigit(c))
  }
  if (c === 0x65 || c === 0x45) {
    wholeNumber = false
    c = s.charCodeAt(++i)
    if (c === 0x2b || c === 0x2d) c = s.charCodeAt(++i)
    if (!isDigit(c)) return -1
    do c = s.charCodeAt(++i); while (isDigit(c))
  }
  return i
}

/** The types Ajv gives the number s[from, to): integer and number, number, or none (not finite). */
export function numberType(s: string, from: number, to: number): number {
  // Up to 15 digits without fraction or exponent (numberEnd just read it): an integer well inside the doubles.
  if (wholeNumber && to - from <= 15) return T.integer | T.number
  const v = Number(s.slice(from, to))
  if (!Number.isFinite(v)) return 0
  return Number.isInteger(v) ? T.integer | T.number : T.number
}

export function skipWs(s: string, i: number): number {
  let c = s.charCodeAt(i)
  while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s.charCodeAt(++i)
  return i
}

export function startsValue(c: number): boolean {
  return c === 0x22 || c === 0x5b || c === 0x74 || c === 0x66 || c === 0x6e || c === 0x2d || isDigit(c)
}

/** A top level that is not an object: rare, so JSON.parse tells whether it is JSON at all. */
export function isJson(s: string): boolean {
  try {
    JSON.parse(s)
    return true
  } catch {
    return false
  }
}
