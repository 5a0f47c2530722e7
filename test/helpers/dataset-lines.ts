// Lines for any dataset with EVERY field of Cloudflare's reference filled with a plausible value
// of its documented type, in each of the five timestamp formats a Logpush job can choose. The
// values come from each field's reference type (`x-cloudflare-type` in schemas/<dataset>.json,
// written by `npm run schemas`), never from a per-dataset list, so a new field or dataset is
// covered as soon as the schemas are regenerated.
//
// Lines are built as text: unixnano integers above 2^53 and escapes that JSON.stringify would
// never write (\/, \u00e9) appear exactly as Cloudflare could send them, so "stored byte-exact"
// means something.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { schemasDir } from '../../src/paths.js'
import type { DatasetSchema, FieldSchema } from '../../src/dataset-schema.js'

export const TIMESTAMP_FORMATS = ['unix', 'unixnano', 'rfc3339', 'rfc3339ms', 'rfc3339ns'] as const
export type TimestampFormat = typeof TIMESTAMP_FORMATS[number]

/** Every dataset schema in schemas/ (top-level files only), by dataset id. */
export function loadSchemas(dir: string = schemasDir): Map<string, DatasetSchema> {
  const out = new Map<string, DatasetSchema>()
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.json')) out.set(e.name.slice(0, -5), JSON.parse(readFileSync(join(dir, e.name), 'utf8')) as DatasetSchema)
  }
  return new Map([...out].sort(([a], [b]) => a < b ? -1 : 1))
}

/** 2025-11-28T03:20:00.123456789Z plus a little per line: nine significant fraction digits. */
const BASE_NS = 1_764_300_000_123_456_789n

function instant(i: number): bigint {
  return BASE_NS + BigInt(i) * 1_000_003_001n
}

function isoSeconds(ns: bigint): string {
  return new Date(Number(ns / 1_000_000_000n) * 1000).toISOString().slice(0, 19)
}

/** The timestamp value as it appears in the line (JSON text). */
export function timestampText(format: TimestampFormat, i = 0): string {
  const ns = instant(i)
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  switch (format) {
    case 'unix': return (ns / 1_000_000_000n).toString()
    case 'unixnano': return ns.toString()
    case 'rfc3339': return `"${isoSeconds(ns)}Z"`
    case 'rfc3339ms': return `"${isoSeconds(ns)}.${frac.slice(0, 3)}Z"`
    case 'rfc3339ns': return `"${isoSeconds(ns)}.${frac}Z"`
  }
}

/** The event time a line of this format carries, as ISO 8601 with nine fraction digits. */
export function expectedEventTime(format: TimestampFormat, i = 0, cloudflareType = 'int or string (timestamp)'): string {
  const ns = instant(i)
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  // workers_trace_events' EventTimestampMs: epoch milliseconds whatever the format.
  if (cloudflareType === 'int') return `${isoSeconds(ns)}.${frac.slice(0, 3)}000000Z`
  const kept = format === 'unixnano' || format === 'rfc3339ns' ? 9 : format === 'rfc3339ms' ? 3 : 0
  return `${isoSeconds(ns)}.${frac.slice(0, kept).padEnd(9, '0')}Z`
}

function ipText(i: number, n: number): string {
  return (i + n) % 2 === 0 ? `"198.51.100.${(i * 7 + n) % 254 + 1}"` : `"2001:db8::${((i * 31 + n) % 65535).toString(16)}"`
}

function stringText(name: string, i: number, n: number): string {
  // Every third string has escapes a re-serialiser would rewrite.
  return n % 3 === 0 ? `"${name} caf\\u00e9 \\/ ${i} \\"q\\""` : JSON.stringify(`${name}-${i}`)
}

/** A plausible JSON value (as text) for a field, from its reference type. */
export function valueText(name: string, f: FieldSchema, format: TimestampFormat, i: number, n: number, isEventTime = false): string {
  const ip = f['x-es-type'] === 'ip'
  switch (f['x-cloudflare-type']) {
    case 'int or string (timestamp)': return timestampText(format, i)
    case 'int': return isEventTime ? (instant(i) / 1_000_000n).toString() : String((i * 7919 + name.length * 31 + n) % 65536)
    case 'float': return `0.${(i * 13 + n) % 100 + 1}`
    case 'bool': return (i + n) % 2 === 0 ? 'true' : 'false'
    case 'array[string]': return ip ? `[${ipText(i, n)},${ipText(i, n + 1)}]` : `[${JSON.stringify(`${name}-a`)},${JSON.stringify(`${name}-${i}`)}]`
    case 'array[int]': return `[${i % 100},${(i + n) % 1000}]`
    case 'array[object]': return `[{"type":"A","data":"192.0.2.${i % 254 + 1}","ttl":${n}},{"name":${JSON.stringify(name)},"nested":{"k":"v"}}]`
    case 'object': return `{"key-${n}":${JSON.stringify(`${name}-${i}`)},"count":${i},"nested":{"a":"b"}}`
    case 'string': return ip ? ipText(i, n) : stringText(name, i, n)
    default: throw new Error(`${name}: no x-cloudflare-type; regenerate the schemas (npm run schemas)`)
  }
}

/** One line (no newline) with every field of the dataset, in schema order. */
export function fullLine(schema: DatasetSchema, format: TimestampFormat, i = 0): string {
  const parts: string[] = []
  let n = 0
  for (const [name, f] of Object.entries(schema.properties)) {
    parts.push(`${JSON.stringify(name)}:${valueText(name, f, format, i, n++, name === schema['x-event-time'])}`)
  }
  return `{${parts.join(',')}}`
}

/** The event time `fullLine(schema, format, i)` carries. */
export function fullLineEventTime(schema: DatasetSchema, format: TimestampFormat, i = 0): string {
  return expectedEventTime(format, i, schema.properties[schema['x-event-time']]!['x-cloudflare-type'])
}

/**
 * A full line in which one field (the first whose type the schema checks) has a value of the wrong
 * JSON type: the line must be dead-lettered with that field named.
 */
export function wrongTypeLine(schema: DatasetSchema, format: TimestampFormat = 'unixnano', i = 0): { line: string, field: string } {
  const field = Object.keys(schema.properties).find((k) => schema.properties[k]!.type !== undefined)
  if (!field) throw new Error('no typed field')
  const types = schema.properties[field]!.type
  const wrong = (Array.isArray(types) ? types : [types]).includes('boolean') ? '"yes"' : 'true'
  const line = fullLine(schema, format, i)
  const key = `${JSON.stringify(field)}:`
  const at = line.indexOf(key) + key.length
  const end = at + valueText(field, schema.properties[field]!, format, i, Object.keys(schema.properties).indexOf(field), field === schema['x-event-time']).length
  return { line: line.slice(0, at) + wrong + line.slice(end), field }
}
