// `npm run schemas [-- --reference <datasets.json>]`: writes schemas/<dataset>.json for every
// dataset of Cloudflare's field reference, from the reference and src/datasets/curated.ts.
// Subfolders of schemas/ (other data, e.g. ECS mappings) are left alone.
import { readdirSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { schemasDir } from '../paths.js'
import { curated } from './curated.js'
import { defaultReferencePath, loadReference, type Reference } from './reference.js'
import { datasetSchema } from './schema.js'
import type { DatasetSchema } from '../dataset-schema.js'

/** Every dataset's schema, or an error naming what the reference and curated.ts disagree on. */
export function generateSchemas(reference: Reference): Map<string, DatasetSchema> {
  const ids = Object.keys(reference).sort()
  const uncurated = ids.filter((id) => !(id in curated))
  const stale = Object.keys(curated).filter((id) => !(id in reference))
  if (uncurated.length > 0) throw new Error(`src/datasets/curated.ts has no entry (event-time field) for: ${uncurated.join(', ')}`)
  if (stale.length > 0) throw new Error(`src/datasets/curated.ts names datasets the reference does not have: ${stale.join(', ')}`)
  return new Map(ids.map((id) => [id, datasetSchema(id, reference[id]!, curated[id]!)]))
}

/** The file text: two-space JSON and a final newline, as the files have always been. */
export function schemaText(schema: DatasetSchema): string {
  return JSON.stringify(schema, null, 2) + '\n'
}

/** Writes every dataset's schema into `dir` and removes top-level files of datasets the reference no longer has. */
export function writeSchemas(reference: Reference, dir: string = schemasDir, log: (line: string) => void = () => {}): Map<string, DatasetSchema> {
  const schemas = generateSchemas(reference)
  for (const [id, schema] of schemas) writeFileSync(join(dir, `${id}.json`), schemaText(schema))
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.json')) continue
    const id = entry.name.slice(0, -'.json'.length)
    if (!schemas.has(id)) {
      rmSync(join(dir, entry.name))
      log(`removed schemas/${entry.name}: not a dataset of the reference`)
    }
  }
  return schemas
}

function main(): void {
  const { values } = parseArgs({ options: { reference: { type: 'string', default: defaultReferencePath } } })
  const schemas = writeSchemas(loadReference(values.reference), schemasDir, (line) => process.stdout.write(line + '\n'))
  const fields = [...schemas.values()].reduce((n, s) => n + Object.keys(s.properties).length, 0)
  process.stdout.write(`wrote ${schemas.size} schemas (${fields} fields) to ${schemasDir} from ${values.reference}\n`)
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main()
