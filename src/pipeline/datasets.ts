// A dataset is data, not code: one JSON Schema file in schemas/ named after the Logpush dataset
// id. The same file drives validation here and the Elasticsearch mapping in the sink.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Ajv, type ValidateFunction } from 'ajv'
import type { DatasetSchema } from '../dataset-schema.js'

export interface Dataset {
  readonly name: string
  readonly schema: DatasetSchema
  readonly validate: ValidateFunction
  readonly knownFields: ReadonlySet<string>
  readonly eventTimeField: string
}

const DATASET_NAME = /^[a-z][a-z0-9_]*$/

export function loadDatasets(dir: string): ReadonlyMap<string, Dataset> {
  // allErrors off: one reason per rejected line is enough, and it keeps validation fast.
  const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: true })
  ajv.addVocabulary(['x-event-time', 'x-es-type'])
  const out = new Map<string, Dataset>()
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.json')).sort()) {
    const name = file.slice(0, -'.json'.length)
    if (!DATASET_NAME.test(name)) throw new Error(`schemas/${file}: a dataset file is named after its Logpush dataset id (lowercase, digits, _)`)
    const schema = JSON.parse(readFileSync(join(dir, file), 'utf8')) as DatasetSchema
    const eventTimeField = schema['x-event-time']
    if (!eventTimeField || !schema.properties?.[eventTimeField]) {
      throw new Error(`schemas/${file}: "x-event-time" must name one of its properties`)
    }
    out.set(name, {
      name,
      schema,
      validate: ajv.compile(schema),
      knownFields: new Set(Object.keys(schema.properties)),
      eventTimeField
    })
  }
  if (out.size === 0) throw new Error(`no dataset schema found in ${dir}`)
  return out
}
