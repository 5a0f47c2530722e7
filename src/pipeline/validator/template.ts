// A line's template: one regular expression for the lines of a job, learned from a line the
// one-pass scanner (scan.ts) accepted: the same fields in the same order, no whitespace, each
// value of a kind the field's schema allows. Logpush writes every line of a job that way, so
// after the first line most lines are accepted by one native regular-expression match, without
// the scanner's per-character work in JavaScript.
//
// What a template matches must be a subset of what the reference accepts, never more: a line
// it does not match is read by the scanner, which gives the exact answer. So it holds only:
// each field once (so no key twice), values that nest at most one array deep (the top object and
// an array: depth 2) whose objects are empty (so no keys to compare inside), JSON strings, JSON
// numbers of the types Ajv would give them (an integer of at most 301 digits is finite), and a
// field's pattern only where it cannot match a quote, a backslash or a control character (so the
// string's text is its value, and the value ends at the quote).
import { ANY, T, type FieldPlan, type Plan } from './plan.js'

const STRING = String.raw`"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"`
const INTEGER = String.raw`-?(?:0|[1-9][0-9]{0,300})`
const FINITE = String.raw`-?(?:0|[1-9][0-9]{0,300})(?:\.[0-9]{1,300})?`
/** Any JSON number: a field of any type takes even one too large to be finite. */
const ANY_NUMBER = String.raw`-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?`

/** The values of `types` that are not containers, as alternatives; `pattern` for strings when given. */
function scalars(types: number, stringValue: string | null): string[] {
  const out: string[] = []
  if ((types & T.string) !== 0 && stringValue !== null) out.push(stringValue)
  if (types === ANY) out.push(ANY_NUMBER)
  else if ((types & T.number) !== 0) out.push(FINITE)
  else if ((types & T.integer) !== 0) out.push(INTEGER)
  if ((types & T.boolean) !== 0) out.push('true', 'false')
  if ((types & T.null) !== 0) out.push('null')
  return out
}

function valueOf(f: FieldPlan): string {
  const out = scalars(f.types, f.pattern === null ? STRING : embeddable(f.pattern.source))
  if ((f.types & T.object) !== 0) out.push(String.raw`\{\}`)
  if ((f.types & T.array) !== 0) {
    const items = scalars(f.items, STRING)
    if ((f.items & T.object) !== 0) items.push(String.raw`\{\}`)
    const item = `(?:${items.join('|')})`
    out.push(items.length > 0 ? String.raw`\[(?:${item}(?:,${item})*)?\]` : String.raw`\[\]`)
  }
  // A field whose values are all containers of other kinds: only lines without it match.
  return out.length > 0 ? `(?:${out.join('|')})` : '(?!)'
}

// The pattern escapes and characters that can only match what they name (none of them a quote,
// a backslash or a control character); classes without ranges or negation.
const SAFE_ESCAPES = new Set(['d', '.', '-', '+', '(', ')', '[', ']', '{', '}', '*', '?', '/', ':', '|', '^', '$'])

/**
 * The pattern `^(X)$` as a template for a JSON string's content `"(?:X)"`, or null when X could
 * match a quote, a backslash or a control character, or is not of that form.
 */
export function embeddable(pattern: string): string | null {
  if (!pattern.startsWith('^(') || !pattern.endsWith(')$') || pattern.endsWith('\\)$')) return null
  const body = pattern.slice(1, -1)
  let depth = 0
  let inClass = false
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!
    if (c === '\\') {
      if (!SAFE_ESCAPES.has(body[i + 1] ?? '')) return null
      i++
      continue
    }
    if (c.charCodeAt(0) < 0x20 || c === '"' || c.charCodeAt(0) > 0x7e) return null
    if (inClass) {
      if (c === ']') inClass = false
      else if (c === '^' || (c === '-' && body[i - 1] !== '[' && body[i + 1] !== ']')) return null
      continue
    }
    if (c === '[') { inClass = true; continue }
    if (c === '.') return null
    if (c === '(') {
      if (body[i + 1] === '?') return null
      depth++
    } else if (c === ')') {
      depth--
      // The group opened at the start must close only at the end: ^(a)|(b)$ is no ^(...)$.
      if (depth === 0 && i !== body.length - 1) return null
    }
  }
  return depth === 0 && !inClass ? `"(?:${body})"` : null
}

/** The template of lines with these fields (plan indices) in this order. */
export function templateOf(plan: Plan, order: readonly number[]): RegExp {
  const parts = order.map((f) => `${JSON.stringify(plan.fields[f]!.name).replace(/[\\^$.*+?()[\]{}|/]/g, '\\$&')}:${valueOf(plan.fields[f]!)}`)
  return new RegExp(`^\\{${parts.join(',')}\\}$`, 'u')
}
