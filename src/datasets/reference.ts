// Cloudflare's Logpush field reference as data (schemas/reference/datasets.json, its source and
// date in schemas/reference/README.md): 37 dataset ids, every field with its documented type. Read
// by the schema generator, `schemas check` and the test that holds schemas/ to it; the service
// itself never reads it.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { schemasDir } from '../paths.js'

/** The type words the reference uses, verbatim from Cloudflare's field tables. */
export type ReferenceType =
  | 'string' | 'int' | 'float' | 'bool'
  | 'array[string]' | 'array[int]' | 'array[object]' | 'object'
  | 'int or string (timestamp)'

export const REFERENCE_TYPES: readonly ReferenceType[] = [
  'string', 'int', 'float', 'bool', 'array[string]', 'array[int]', 'array[object]', 'object', 'int or string (timestamp)'
]

export interface ReferenceField {
  readonly name: string
  readonly type: ReferenceType
  readonly description: string
  readonly deprecated: boolean
  /** The type is inferred (a late addition, or undocumented): see `note`. */
  readonly type_unverified?: boolean
  readonly note?: string
  /** The date (YYYY-MM-DD) `schemas check --write` found it gone from Cloudflare's field list. */
  readonly removed?: string
}

export type Scope = 'zone' | 'account'

export interface ReferenceDataset {
  readonly scope: Scope
  /** Only on the datasets that exist in both scopes. */
  readonly scopes?: readonly Scope[]
  readonly source: string
  readonly in_api_enum: boolean
  readonly field_count?: number
  readonly fields: readonly ReferenceField[]
}

export type Reference = Readonly<Record<string, ReferenceDataset>>

/** The reference kept in the repository, next to the schemas it generates. */
export const defaultReferencePath = join(schemasDir, 'reference', 'datasets.json')

export function loadReference(path: string = defaultReferencePath): Reference {
  const ref = JSON.parse(readFileSync(path, 'utf8')) as Reference
  for (const [id, d] of Object.entries(ref)) {
    for (const f of d.fields) {
      if (!REFERENCE_TYPES.includes(f.type)) throw new Error(`${path}: ${id}.${f.name} has type "${f.type}", which the generator does not know`)
    }
  }
  return ref
}

/** The file text, as the reference has always been written (one-space JSON, no final newline). */
export function referenceText(reference: Reference): string {
  return JSON.stringify(reference, null, 1)
}

export function scopesOf(d: ReferenceDataset): readonly Scope[] {
  return d.scopes ?? [d.scope]
}
