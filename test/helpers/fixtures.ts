// Realistic Logpush lines for tests and benchmarks, generated from the same schemas/ files that
// the service validates against, so "every documented field" stays true when a schema grows.
// Lines are built as text, not with JSON.stringify of a whole object, so that unixnano integers
// above 2^53 and escapes JSON.stringify would never write (\/, \u00fc) appear exactly as sent.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Readable } from 'node:stream'
import { schemasDir } from '../../src/paths.js'
import type { DatasetSchema, FieldSchema } from '../../src/pipeline/index.js'

export type TimestampFormat = 'unixnano' | 'unix' | 'rfc3339'

export function loadSchema(dataset: string): DatasetSchema {
  return JSON.parse(readFileSync(join(schemasDir, `${dataset}.json`), 'utf8')) as DatasetSchema
}

/** The unixnano value from the issue: above 2^53, JSON.parse alone would round it. */
export const BIG_UNIXNANO = '1652295571783000123'

function timestamp(i: number, format: TimestampFormat): string {
  const ns = BigInt(BIG_UNIXNANO) + BigInt(i) * 1_000_003n
  if (format === 'unixnano') return ns.toString()
  if (format === 'unix') return (ns / 1_000_000_000n).toString()
  const ms = Number(ns / 1_000_000n)
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  return JSON.stringify(new Date(ms).toISOString().replace(/\.\d{3}Z$/, `.${frac}Z`))
}

function ip(i: number, field: string): string {
  if (i % 5 === 4) return JSON.stringify(`2001:db8:${(i % 65535).toString(16)}::${field.length.toString(16)}`)
  return JSON.stringify(`198.51.${i % 256}.${(i * 7 + field.length) % 254 + 1}`)
}

function value(name: string, f: FieldSchema, i: number, format: TimestampFormat): string {
  if (f['x-es-type'] === 'date') return timestamp(i, format)
  if (f['x-es-type'] === 'ip') return ip(i, name)
  const type = Array.isArray(f.type) ? f.type[0] : f.type
  switch (type) {
    case 'integer': return String((i * 7919 + name.length * 31) % 65536)
    case 'number': return String(1 + (i % 97) / 8)
    case 'boolean': return i % 2 === 0 ? 'true' : 'false'
    case 'array':
      if (f.items?.type === 'object') return `[{"type":"A","data":${JSON.stringify(`${name}-${i}`)}}]`
      return f.items?.type === 'integer' ? `[${i % 100},${(i + 1) % 100}]` : `[${JSON.stringify(`${name}-a`)},${JSON.stringify(`${name}-${i}`)}]`
    case 'object': {
      const inner = f.additionalProperties
      if (typeof inner === 'object' && inner.type === 'number') return `{"h2h3_ratio_1h":0.${i % 10}5,"reqs_quantile_1h":${i % 100}}`
      return `{"x-sample":${JSON.stringify(`v${i}`)},"accept":"text/html"}`
    }
    default:
      if (name === 'ClientRequestPath' || name === 'ClientRequestURI') return `"\\/path\\/${i}\\/caf\\u00e9?q=${i}"`
      if (name === 'ClientRequestUserAgent') return `"Mozilla/5.0 (X11; Linux x86_64) \\"quoted\\" ü 😀 ${i}"`
      return JSON.stringify(`${name}-${i}`)
  }
}

/** One line with every field of the dataset's schema, in schema order, without the newline. */
export function recordLine(schema: DatasetSchema, i: number, format: TimestampFormat = 'unixnano'): string {
  const parts: string[] = []
  for (const [name, f] of Object.entries(schema.properties)) parts.push(`${JSON.stringify(name)}:${value(name, f, i, format)}`)
  return `{${parts.join(',')}}`
}

export function batchText(dataset: string, count: number, format: TimestampFormat = 'unixnano', start = 0): string {
  const schema = loadSchema(dataset)
  let out = ''
  for (let i = start; i < start + count; i++) out += recordLine(schema, i, format) + '\n'
  return out
}

/** A stream of about `bytes` of NDJSON, made as it is read, so a test never holds the batch. */
export function batchStream(dataset: string, bytes: number, format: TimestampFormat = 'unixnano'): { stream: Readable, stats: { lines: number, bytes: number } } {
  const schema = loadSchema(dataset)
  const stats = { lines: 0, bytes: 0 }
  let i = 0
  const stream = new Readable({
    read () {
      if (stats.bytes >= bytes) return this.push(null)
      let chunk = ''
      while (chunk.length < 256 * 1024) chunk += recordLine(schema, i++, format) + '\n'
      const buf = Buffer.from(chunk)
      stats.bytes += buf.length
      stats.lines = i
      this.push(buf)
    }
  })
  return { stream, stats }
}
