// What the one-pass validator (scan.ts) checks for a dataset, derived from its schema at start-up:
// one entry per top-level field (the JSON types its schema allows, its pattern, the types of its
// items). Knowledge about datasets stays in schemas/: nothing here names a dataset or a field.
//
// The plan covers only the JSON Schema keywords our schemas use (npm run schemas writes them):
// a top-level object with properties and additionalProperties true, fields with type, pattern
// and items (with type). A schema using anything else has no plan and its dataset is checked by
// Ajv alone, so a keyword we did not translate can never be silently ignored.
import type { DatasetSchema, FieldSchema } from '../../dataset-schema.js'

/** JSON types as bits; a number is an integer when Ajv says so (finite, no fraction). */
export const T = { string: 1, integer: 2, number: 4, boolean: 8, null: 16, object: 32, array: 64 } as const
export const ANY = 127

export interface FieldPlan {
  readonly name: string
  /** Allowed types (T bits); ANY when the schema names none. */
  readonly types: number
  /** Tested on string values only, as Ajv does (with its 'u' flag). */
  readonly pattern: RegExp | null
  /** Allowed types of the items of an array value; ANY when the schema has no items type. */
  readonly items: number
  /** The name can be compared with the line's text as it is (no quote, backslash or control character). */
  readonly plain: boolean
}

export interface Plan {
  readonly fields: readonly FieldPlan[]
  readonly index: ReadonlyMap<string, number>
}

// Words of a field schema that only annotate it (Ajv is told of the x-* ones as a vocabulary).
const ANNOTATIONS = new Set(['description', 'deprecated', 'title', '$comment'])
const TOP_ANNOTATIONS = new Set(['$schema', '$id', 'title', 'description', 'type', 'additionalProperties', 'properties'])
const JSON_TYPES = new Set(Object.keys(T))

function typeBits(type: string | string[] | undefined): number | null {
  if (type === undefined) return ANY
  let bits = 0
  for (const t of Array.isArray(type) ? type : [type]) {
    if (!JSON_TYPES.has(t)) return null
    bits |= T[t as keyof typeof T]
  }
  return bits
}

function fieldPlan(name: string, f: FieldSchema): FieldPlan | null {
  for (const k of Object.keys(f)) {
    if (k.startsWith('x-') || ANNOTATIONS.has(k) || k === 'type' || k === 'pattern' || k === 'items') continue
    return null
  }
  const types = typeBits(f.type)
  if (types === null) return null
  let items = ANY
  if (f.items !== undefined) {
    if (f.items === null || typeof f.items !== 'object') return null
    for (const k of Object.keys(f.items)) {
      if (k !== 'type' && !k.startsWith('x-') && !ANNOTATIONS.has(k)) return null
    }
    const bits = typeBits(f.items.type)
    if (bits === null) return null
    items = bits
  }
  if (f.pattern !== undefined && typeof f.pattern !== 'string') return null
  const plain = !/["\\\u0000-\u001f]/.test(name)
  return { name, types, pattern: f.pattern === undefined ? null : new RegExp(f.pattern, 'u'), items, plain }
}

/** The plan for a schema, or null when it uses a keyword the plan does not cover (Ajv alone checks it). */
export function planOf(schema: DatasetSchema): Plan | null {
  for (const k of Object.keys(schema)) {
    if (!k.startsWith('x-') && !TOP_ANNOTATIONS.has(k)) return null
  }
  if (schema.type !== 'object' || (schema.additionalProperties !== undefined && schema.additionalProperties !== true)) return null
  const fields: FieldPlan[] = []
  const index = new Map<string, number>()
  for (const [name, f] of Object.entries(schema.properties)) {
    // Ajv reads a field as data.Name !== undefined: a name Object.prototype also has would be
    // "present" on every line for it. No schema has one; such a schema stays with Ajv.
    if (name in Object.prototype) return null
    const plan = fieldPlan(name, f)
    if (!plan) return null
    index.set(name, fields.length)
    fields.push(plan)
  }
  return { fields, index }
}
