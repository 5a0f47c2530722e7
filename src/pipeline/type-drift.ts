// Type drift: a field whose value has a JSON type its schema does not allow. Cloudflare changing
// a field's type turns every line carrying it into a dead letter; counting the offending field
// per dataset names the change at a glance (/health, /metrics) instead of in the dead letters.
// Only top-level fields are looked at, and only on lines that failed their schema (a valid line
// has no such field by definition), so this costs nothing on the hot path.
import type { FieldSchema } from '../dataset-schema.js'
import type { Dataset } from './datasets.js'

type JsonType = 'string' | 'integer' | 'number' | 'boolean' | 'null' | 'object' | 'array'

interface Composite { type?: string | string[], anyOf?: Composite[], oneOf?: Composite[] }

/** The JSON types a field schema allows, or null when it allows any (no `type` anywhere). */
function allowedTypes(schema: FieldSchema): ReadonlySet<string> | null {
  const out = new Set<string>()
  let open = false
  const visit = (s: Composite): void => {
    const branches = [...(s.anyOf ?? []), ...(s.oneOf ?? [])]
    if (s.type === undefined && branches.length === 0) { open = true; return }
    if (s.type !== undefined) for (const t of Array.isArray(s.type) ? s.type : [s.type]) out.add(t)
    for (const b of branches) visit(b)
  }
  visit(schema as Composite)
  return open ? null : out
}

function jsonType(value: unknown): JsonType {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'array'
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number'
  return typeof value as JsonType
}

const cache = new WeakMap<Dataset, Map<string, ReadonlySet<string> | null>>()

function allowedByField(dataset: Dataset): Map<string, ReadonlySet<string> | null> {
  let m = cache.get(dataset)
  if (!m) {
    m = new Map(Object.entries(dataset.schema.properties).map(([field, s]) => [field, allowedTypes(s)]))
    cache.set(dataset, m)
  }
  return m
}

/** The schema's fields whose value in `record` has a JSON type the schema does not allow. */
export function typeMismatches(dataset: Dataset, record: Record<string, unknown>): string[] {
  const allowed = allowedByField(dataset)
  const out: string[] = []
  for (const field in record) {
    const types = allowed.get(field)
    if (!types) continue // unknown field, or any type allowed
    const t = jsonType(record[field])
    if (types.has(t) || (t === 'integer' && types.has('number'))) continue
    out.push(field)
  }
  return out
}
