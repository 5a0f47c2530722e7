// Filters in Cloudflare's own Logpush filter syntax, so that a filter moves between a Logpush job's
// `filter` and our configuration unchanged (the JSON object, or the escaped JSON string a job holds).
//
// What Cloudflare documents (developers.cloudflare.com/logs/logpush/logpush-job/filters/, source
// cloudflare/cloudflare-docs src/content/docs/logs/logpush/logpush-job/filters.mdx, and the
// partial src/content/partials/logs/filtering-limitations.mdx), copied here because the code
// enforces it:
//
//   operator      String Int Bool Array  example
//   eq            yes    yes yes  -      {"key":"ClientRequestHost","operator":"eq","value":"example.com"}
//   !eq           yes    yes yes  -      {"key":"ClientCountry","operator":"!eq","value":"ca"}
//   lt leq gt geq -      yes -    -      {"key":"BotScore","operator":"lt","value":"30"}
//   startsWith endsWith !startsWith !endsWith
//                 yes    -   -    -      {"key":"ClientRequestPath","operator":"startsWith","value":"/foo"}
//   contains !contains
//                 yes    -   -    yes    {"key":"ClientRequestPath","operator":"contains","value":"/static"}
//   in !in        yes    yes -    -      {"key":"EdgeResponseStatus","operator":"in","value":[200,201]}
//
// - Objects and arrays of objects cannot be filtered on (the partial).
// - A filter must contain `where`; `and`/`or` take lists and nest:
//   X AND (Y OR Z) is {"where":{"and":[{X},{"or":[{Y},{Z}]}]}}.
// - A filter is a pass-through gate: a line is kept when the expression is true.
// - `in` takes a JSON array: the string "200,201" is refused by Cloudflare's API
//   (cloudflare/cloudflare-docs#26491), so it is refused here too.
// - Int values may be written as numbers or as digit strings ("30" in Cloudflare's own examples).
//
// Where Cloudflare says nothing we decide, and docs/shaping.md says so: comparisons are
// case-sensitive; a field absent from a line or null makes every positive operator false and
// every negated one (!eq, !in, ...) true; float fields count as Int.
import type { DatasetSchema } from '../dataset-schema.js'

export type Operator = 'eq' | '!eq' | 'lt' | 'leq' | 'gt' | 'geq' | 'startsWith' | 'endsWith' | '!startsWith' | '!endsWith' | 'contains' | '!contains' | 'in' | '!in'

type Kind = 'string' | 'int' | 'bool' | 'array'

const ALLOWED: Readonly<Record<Operator, readonly Kind[]>> = {
  eq: ['string', 'int', 'bool'],
  '!eq': ['string', 'int', 'bool'],
  lt: ['int'],
  leq: ['int'],
  gt: ['int'],
  geq: ['int'],
  startsWith: ['string'],
  endsWith: ['string'],
  '!startsWith': ['string'],
  '!endsWith': ['string'],
  contains: ['string', 'array'],
  '!contains': ['string', 'array'],
  in: ['string', 'int'],
  '!in': ['string', 'int']
}

export const OPERATORS = Object.keys(ALLOWED) as Operator[]

/**
 * How deep and/or lists may nest. Cloudflare documents no depth (only about 30 operators per job);
 * without a bound a deeply nested filter overflowed the stack at start, a RangeError instead of
 * LPR_ERR_CONFIG_INVALID naming the place. 32 levels is far beyond any filter a person writes.
 */
const MAX_FILTER_DEPTH = 32

/** A field's kind for filtering, from the type Cloudflare's reference gives it; null: not filterable. */
function kindOf(cloudflareType: string | undefined): Kind | null {
  switch (cloudflareType) {
    case 'string': return 'string'
    case 'int': case 'float': return 'int'
    case 'bool': return 'bool'
    case 'array[string]': case 'array[int]': return 'array'
    default: return null
  }
}

export type LineRecord = Record<string, unknown>
export type Predicate = (record: LineRecord) => boolean

/** A filter that cannot apply to a dataset: the message names the dataset, the field or operator, and why. */
export class FilterError extends Error {}

/** The filter as given: an object with `where`, or the JSON string a Logpush job's `filter` holds. */
export function parseFilter(given: unknown, where: string): unknown {
  if (typeof given !== 'string') return given
  try {
    return JSON.parse(given)
  } catch (err) {
    throw new FilterError(`${where}: the filter string is not JSON: ${(err as Error).message}`)
  }
}

/** Checks a filter against a dataset's schema and compiles it; throws FilterError naming what is wrong. */
export function compileFilter(given: unknown, schema: DatasetSchema, where: string): Predicate {
  const filter = parseFilter(given, where)
  if (filter === null || typeof filter !== 'object' || Array.isArray(filter) || !('where' in filter)) {
    throw new FilterError(`${where}: a filter must be an object with "where" (Cloudflare's syntax: {"where":{"and":[...]}})`)
  }
  const extra = Object.keys(filter).filter((k) => k !== 'where')
  if (extra.length > 0) throw new FilterError(`${where}: a filter has only "where", not ${extra.map((k) => `"${k}"`).join(', ')}`)
  return node((filter as { where: unknown }).where, `${where}.where`, 1)

  function node(n: unknown, at: string, depth: number): Predicate {
    if (depth > MAX_FILTER_DEPTH) throw new FilterError(`${at}: and/or nest deeper than ${MAX_FILTER_DEPTH} levels`)
    if (n === null || typeof n !== 'object' || Array.isArray(n)) throw new FilterError(`${at}: expected an object ({"and":[...]}, {"or":[...]} or {"key","operator","value"})`)
    const o = n as Record<string, unknown>
    const keys = Object.keys(o)
    if (keys.length === 1 && (keys[0] === 'and' || keys[0] === 'or')) {
      const list = o[keys[0]]
      if (!Array.isArray(list) || list.length === 0) throw new FilterError(`${at}.${keys[0]}: expected a non-empty list`)
      const parts = list.map((c, i) => node(c, `${at}.${keys[0]}[${i}]`, depth + 1))
      return keys[0] === 'and' ? (r) => parts.every((p) => p(r)) : (r) => parts.some((p) => p(r))
    }
    return clause(o, at)
  }

  function clause(o: Record<string, unknown>, at: string): Predicate {
    const unknownKeys = Object.keys(o).filter((k) => k !== 'key' && k !== 'operator' && k !== 'value')
    if (unknownKeys.length > 0 || typeof o.key !== 'string' || typeof o.operator !== 'string' || !('value' in o)) {
      throw new FilterError(`${at}: a condition is {"key":"<field>","operator":"<operator>","value":<value>}${unknownKeys.length > 0 ? `, not ${unknownKeys.map((k) => `"${k}"`).join(', ')}` : ''}`)
    }
    const key = o.key
    const op = o.operator as Operator
    if (!(op in ALLOWED)) throw new FilterError(`${at}: unknown operator "${o.operator}" (Cloudflare's are ${OPERATORS.join(', ')})`)
    const field = schema.properties[key]
    if (!field) throw new FilterError(`${at}: field "${key}" is not a field of this dataset`)
    const kind = kindOf(field['x-cloudflare-type'])
    if (kind === null || !ALLOWED[op].includes(kind)) {
      throw new FilterError(`${at}: operator "${op}" does not apply to field "${key}" of type ${field['x-cloudflare-type'] ?? 'unknown'} (it takes ${ALLOWED[op].join(', ')})`)
    }
    return compare(key, op, kind, o.value, at)
  }
}

function intValue(v: unknown, at: string): number {
  const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : NaN
  if (!Number.isFinite(n)) throw new FilterError(`${at}: value ${JSON.stringify(v)} is not a number`)
  return n
}

function stringValue(v: unknown, at: string): string {
  if (typeof v !== 'string') throw new FilterError(`${at}: value ${JSON.stringify(v)} is not a string`)
  return v
}

function boolValue(v: unknown, at: string): boolean {
  if (v === true || v === 'true') return true
  if (v === false || v === 'false') return false
  throw new FilterError(`${at}: value ${JSON.stringify(v)} is not true or false`)
}

function compare(key: string, op: Operator, kind: Kind, value: unknown, at: string): Predicate {
  const negated = op.startsWith('!')
  const positive = positiveTest(key, negated ? op.slice(1) as Operator : op, kind, value, at)
  // A missing or null field makes the positive test false, so its negation true.
  return negated ? (r) => !positive(r) : positive
}

function positiveTest(key: string, op: Operator, kind: Kind, value: unknown, at: string): Predicate {
  switch (op) {
    case 'eq':
      if (kind === 'int') { const n = intValue(value, at); return (r) => r[key] === n }
      if (kind === 'bool') { const b = boolValue(value, at); return (r) => r[key] === b }
      { const s = stringValue(value, at); return (r) => r[key] === s }
    case 'lt': { const n = intValue(value, at); return (r) => typeof r[key] === 'number' && (r[key] as number) < n }
    case 'leq': { const n = intValue(value, at); return (r) => typeof r[key] === 'number' && (r[key] as number) <= n }
    case 'gt': { const n = intValue(value, at); return (r) => typeof r[key] === 'number' && (r[key] as number) > n }
    case 'geq': { const n = intValue(value, at); return (r) => typeof r[key] === 'number' && (r[key] as number) >= n }
    case 'startsWith': { const s = stringValue(value, at); return (r) => typeof r[key] === 'string' && (r[key] as string).startsWith(s) }
    case 'endsWith': { const s = stringValue(value, at); return (r) => typeof r[key] === 'string' && (r[key] as string).endsWith(s) }
    case 'contains': {
      if (kind === 'array') {
        // An element equal to the value: a string, or a number for array[int] (written either way).
        const s = typeof value === 'number' ? value : stringValue(value, at)
        const n = typeof s === 'string' && /^-?\d+$/.test(s) ? Number(s) : s
        return (r) => Array.isArray(r[key]) && (r[key] as unknown[]).some((e) => e === s || e === n)
      }
      const s = stringValue(value, at)
      return (r) => typeof r[key] === 'string' && (r[key] as string).includes(s)
    }
    case 'in': {
      if (!Array.isArray(value) || value.length === 0) throw new FilterError(`${at}: "in" takes a non-empty JSON array of values (${JSON.stringify(value)} is not one; Cloudflare refuses "200,201" as well)`)
      const set = new Set<unknown>(value.map((v, i) => (kind === 'int' ? intValue(v, `${at}.value[${i}]`) : stringValue(v, `${at}.value[${i}]`))))
      return (r) => set.has(r[key])
    }
    default: throw new FilterError(`${at}: unknown operator "${op}"`)
  }
}

/** The fields a filter reads (for the one-line description of a destination's shaping). */
export function filterFields(given: unknown): string[] {
  const out = new Set<string>()
  const walk = (n: unknown): void => {
    if (Array.isArray(n)) { for (const c of n) walk(c); return }
    if (n === null || typeof n !== 'object') return
    const o = n as Record<string, unknown>
    if (typeof o.key === 'string') out.add(o.key)
    for (const v of Object.values(o)) if (typeof v === 'object') walk(v)
  }
  try { walk(parseFilter(given, '')) } catch { /* described as given */ }
  return [...out]
}
