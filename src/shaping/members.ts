// The top-level members of a JSON object line, as spans of its text. Shaping rewrites a line by
// joining the text of the members it keeps, so that every value it does not transform goes out
// exactly as received: re-serialising a parsed object would round a 19-digit unixnano integer and
// re-escape strings. The line was validated as a JSON object before it was spooled; this only
// walks it, never judges it.

export interface Member {
  /** The member's name, unescaped. */
  readonly name: string
  /** The text of the name, quotes included, as in the line. */
  readonly nameText: string
  /** Where the member (its name) starts in the line. */
  readonly at: number
  /** Where its value's text starts and ends in the line. */
  readonly start: number
  readonly end: number
}

const QUOTE = 0x22
const BACKSLASH = 0x5c

/** The end (exclusive) of the string whose opening quote is at `i`. */
function stringEnd(line: string, i: number): number {
  // indexOf finds the next quote natively; it closes the string unless an odd run of backslashes escapes it.
  for (let j = i + 1; ;) {
    const q = line.indexOf('"', j)
    if (q === -1) throw new Error('unterminated string in a spooled line')
    let k = q - 1
    while (line.charCodeAt(k) === BACKSLASH) k--
    if ((q - 1 - k) % 2 === 0) return q + 1
    j = q + 1
  }
}

function skipSpace(line: string, i: number): number {
  while (i < line.length) {
    const c = line.charCodeAt(i)
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i
    i++
  }
  return i
}

/** The end (exclusive) of the value starting at `i`. */
function valueEnd(line: string, i: number): number {
  const c = line.charCodeAt(i)
  if (c === QUOTE) return stringEnd(line, i)
  if (c === 0x7b || c === 0x5b) {
    let depth = 0
    const special = /["{}[\]]/g
    special.lastIndex = i
    for (let m = special.exec(line); m !== null; m = special.exec(line)) {
      const d = line.charCodeAt(m.index)
      if (d === QUOTE) { special.lastIndex = stringEnd(line, m.index); continue }
      if (d === 0x7b || d === 0x5b) depth++
      else if (--depth === 0) return m.index + 1
    }
    throw new Error('unbalanced brackets in a spooled line')
  }
  // A number, true, false or null: up to the next comma, brace or space.
  let j = i
  while (j < line.length) {
    const d = line.charCodeAt(j)
    if (d === 0x2c || d === 0x7d || d === 0x5d || d === 0x20 || d === 0x0a || d === 0x0d || d === 0x09) break
    j++
  }
  return j
}

/** The top-level members of an object line, in order. */
export function members(line: string): Member[] {
  const out: Member[] = []
  let i = skipSpace(line, 0)
  if (line.charCodeAt(i) !== 0x7b) throw new Error('a spooled line that is not a JSON object')
  i = skipSpace(line, i + 1)
  if (line.charCodeAt(i) === 0x7d) return out
  for (;;) {
    const nameStart = i
    const nameEnd = stringEnd(line, i)
    const raw = line.slice(i + 1, nameEnd - 1)
    const name = raw.includes('\\') ? JSON.parse(line.slice(i, nameEnd)) as string : raw
    i = skipSpace(line, nameEnd)
    i = skipSpace(line, i + 1) // past ':'
    const end = valueEnd(line, i)
    out.push({ name, nameText: line.slice(nameStart, nameEnd), at: nameStart, start: i, end })
    i = skipSpace(line, end)
    if (line.charCodeAt(i) !== 0x2c) return out
    i = skipSpace(line, i + 1)
  }
}
