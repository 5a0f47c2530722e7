// Turns a record of a Cloudflare API into a line of a Logpush dataset, by a mapping that is data
// (schemas/collectors/<dataset>.json: Logpush field -> path in the API record) and the dataset's
// own schema (schemas/<dataset>.json) for the types. One mapper for every collector type.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

type FieldSource = string | { readonly object: Readonly<Record<string, string>> }

export interface RecordMapping {
  /** Path of the record's unique id in the API record (de-duplication within a window). */
  readonly id: string
  /** Path of the record's time (RFC 3339) in the API record (the window filter). */
  readonly time: string
  readonly fields: Readonly<Record<string, FieldSource>>
}

type JsonType = 'string' | 'object' | 'boolean' | 'integer' | 'number' | 'array' | 'null'

export class RecordMapper {
  private readonly fields: Array<{ name: string, source: FieldSource, types: readonly JsonType[] }>
  private readonly idPath: string[]
  private readonly timePath: string[]

  constructor (readonly mapping: RecordMapping, schema: { properties?: Record<string, { type?: JsonType | JsonType[] }> }) {
    this.idPath = mapping.id.split('.')
    this.timePath = mapping.time.split('.')
    this.fields = Object.entries(mapping.fields).map(([name, source]) => {
      const t = schema.properties?.[name]?.type
      if (t === undefined) throw new Error(`collector mapping: "${name}" is not a field of the dataset schema`)
      return { name, source, types: Array.isArray(t) ? t : [t] }
    })
  }

  /** Reads schemas/collectors/<dataset>.json and schemas/<dataset>.json. */
  static load(schemasDir: string, dataset: string): RecordMapper {
    const mapping = JSON.parse(readFileSync(join(schemasDir, 'collectors', `${dataset}.json`), 'utf8')) as RecordMapping
    const schema = JSON.parse(readFileSync(join(schemasDir, `${dataset}.json`), 'utf8')) as ConstructorParameters<typeof RecordMapper>[1]
    return new RecordMapper(mapping, schema)
  }

  id(record: unknown): string | undefined {
    const v = at(record, this.idPath)
    return typeof v === 'string' || typeof v === 'number' ? String(v) : undefined
  }

  /** The record's time in ms, NaN when it has none readable. */
  time(record: unknown): number {
    const v = at(record, this.timePath)
    return typeof v === 'string' ? Date.parse(v) : typeof v === 'number' ? v : NaN
  }

  /** The dataset line's object; fields the record lacks are left out (as a job's field_names would). */
  map(record: unknown): Record<string, unknown> {
    const out: Record<string, unknown> = {}
    for (const f of this.fields) {
      let v: unknown
      if (typeof f.source === 'string') v = at(record, f.source.split('.'))
      else {
        const o = Object.fromEntries(Object.entries(f.source.object).map(([k, p]) => [k, at(record, p.split('.'))]).filter(([, x]) => x !== undefined))
        v = Object.keys(o).length > 0 ? o : undefined
      }
      if (v === undefined) continue
      out[f.name] = convert(v, f.types)
    }
    return out
  }
}

function at(record: unknown, path: readonly string[]): unknown {
  let v: unknown = record
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined
    v = (v as Record<string, unknown>)[k]
  }
  return v
}

function typeOf(v: unknown): JsonType {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'array'
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number'
  return typeof v as JsonType
}

/** A value as the schema's type wants it; what cannot be converted stays as it is (validation then says so). */
function convert(v: unknown, types: readonly JsonType[]): unknown {
  const t = typeOf(v)
  if (types.includes(t) || (t === 'integer' && types.includes('number'))) return v
  if (types.includes('object')) {
    // v1's newValue/oldValue are JSON text in the API, objects in the Logpush dataset.
    if (typeof v === 'string') {
      try {
        const parsed: unknown = JSON.parse(v)
        if (typeOf(parsed) === 'object') return parsed
      } catch { /* not JSON: kept under "value" */ }
    }
    return { value: v }
  }
  if (types.includes('string')) return typeof v === 'string' ? v : JSON.stringify(v)
  return v
}
