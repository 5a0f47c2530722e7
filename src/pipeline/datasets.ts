// A dataset is data, not code: one JSON Schema file in schemas/ named after the Logpush dataset
// id. The same file drives validation here and the Elasticsearch mapping in the sink.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import type { DatasetSchema } from '../dataset-schema.js'
import { planOf } from './validator/plan.js'
import { LineValidator } from './validator/scan.js'

export interface Dataset {
  readonly name: string
  readonly schema: DatasetSchema
  readonly validate: ValidateFunction
  readonly knownFields: ReadonlySet<string>
  readonly eventTimeField: string
  /**
   * The one-pass validator generated from the schema (validator/), with LINE_VALIDATOR=fast;
   * null with ajv, or when the schema uses a keyword the generator does not cover.
   */
  readonly lineValidator: LineValidator | null
}

/** LINE_VALIDATOR: which validator decides a line; Ajv stays the reference either way. */
export type LineValidatorKind = 'ajv' | 'fast'
export const DEFAULT_LINE_VALIDATOR: LineValidatorKind = 'fast'

const DATASET_NAME = /^[a-z][a-z0-9_]*$/

export function loadDatasets(dir: string, lineValidator: LineValidatorKind = DEFAULT_LINE_VALIDATOR): ReadonlyMap<string, Dataset> {
  // Only the files at the top: subfolders hold other per-dataset data (e.g. ECS mappings).
  const files = readdirSync(dir, { withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.json')).map((e) => e.name).sort()
  const schemas: Array<[string, DatasetSchema]> = []
  for (const file of files) {
    const name = file.slice(0, -'.json'.length)
    if (!DATASET_NAME.test(name)) throw new Error(`schemas/${file}: a dataset file is named after its Logpush dataset id (lowercase, digits, _)`)
    schemas.push([name, JSON.parse(readFileSync(join(dir, file), 'utf8')) as DatasetSchema])
  }
  if (schemas.length === 0) throw new Error(`no dataset schema found in ${dir}`)
  return datasetsFromSchemas(schemas, lineValidator)
}

/**
 * The snapshot of the schemas read once at start (name, schema), for handing to the parse
 * workers: every worker validates against exactly what the main thread loaded, never against a
 * file that changed (or is half-written) since.
 */
export function schemaSnapshot(datasets: ReadonlyMap<string, Dataset>): Array<[string, DatasetSchema]> {
  return [...datasets].map(([name, d]) => [name, d.schema])
}

/** Datasets from schemas already read (loadDatasets's files, or a parse worker's snapshot). */
export function datasetsFromSchemas(schemas: ReadonlyArray<readonly [string, DatasetSchema]>, lineValidator: LineValidatorKind = DEFAULT_LINE_VALIDATOR): ReadonlyMap<string, Dataset> {
  // allErrors off: one reason per rejected line is enough, and it keeps validation fast.
  const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true })
  // Annotations for us, not validation keywords: x-event-time, x-es-type, x-scope and whatever
  // x-* a schema carries for a destination (strict mode would refuse an unknown keyword).
  const annotations = new Set<string>()
  const out = new Map<string, Dataset>()
  for (const [name, schema] of schemas) {
    const file = `${name}.json`
    const fresh = [...xKeywords(schema)].filter((k) => !annotations.has(k))
    if (fresh.length > 0) {
      ajv.addVocabulary(fresh)
      for (const k of fresh) annotations.add(k)
    }
    const eventTimeField = schema['x-event-time']
    if (!eventTimeField || !schema.properties?.[eventTimeField]) {
      throw new Error(`schemas/${file}: "x-event-time" must name one of its properties`)
    }
    // Compiled on first use: 37 datasets compiled up front cost seconds at every start (in the
    // main thread and in each parse worker), for datasets most deployments never receive.
    // A schema that is not a JSON Schema still stops the start (a cheap check against the meta-schema).
    if (!ajv.validateSchema(schema)) throw new Error(`schemas/${file}: not a valid JSON Schema: ${ajv.errorsText(ajv.errors)}`)
    let compiled: ValidateFunction | undefined
    let fast: LineValidator | null | undefined
    out.set(name, {
      name,
      schema,
      get validate () { return (compiled ??= ajv.compile(schema)) },
      get lineValidator () {
        if (fast === undefined) {
          const plan = lineValidator === 'fast' ? planOf(schema) : null
          fast = plan ? new LineValidator(plan) : null
        }
        return fast
      },
      knownFields: new Set(Object.keys(schema.properties)),
      eventTimeField
    })
  }
  return out
}

function xKeywords(value: unknown, out = new Set<string>()): Set<string> {
  if (Array.isArray(value)) {
    for (const v of value) xKeywords(v, out)
  } else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      if (k.startsWith('x-')) out.add(k)
      // "properties" maps field names, not keywords: a field called x-foo is not an annotation.
      if (k === 'properties' && v !== null && typeof v === 'object') for (const f of Object.values(v)) xKeywords(f, out)
      else xKeywords(v, out)
    }
  }
  return out
}
