// CONFIG_FILE `shaping`: a list of rules, each for some destinations and some datasets (all when
// not named). The JSON Schema checks the shape when the file is read; buildShapers checks every
// rule against the datasets' schemas and the environment (keys) before anything starts, and a
// mistake stops the start with LPR_ERR_CONFIG_INVALID naming the rule, dataset and field.
import { readFileSync } from 'node:fs'
import { ConfigInvalid } from '../errors.js'
import type { DatasetSchema } from '../dataset-schema.js'
import { compileFilter, FilterError, filterFields, type Predicate } from './filter.js'
import { fieldGate } from './fields.js'
import { sampler, type Sampler } from './sample.js'
import { hmacSha256, mask, removeQuery, truncateIpTransform, type TransformKind, type ValueTransform } from './transforms.js'
import { Shaper } from './shaper.js'

export interface TransformConfig {
  /** A field name, a list of them, or "@ip": every field the dataset's schema marks as an IP address. */
  readonly field: string | readonly string[]
  readonly type: TransformKind
  /** hmac-sha256: the key, from an environment variable or a file (one of the two). */
  readonly keyEnv?: string
  readonly keyFile?: string
  /** truncate-ip: bits kept; /24 and /48 by default. */
  readonly ipv4Prefix?: number
  readonly ipv6Prefix?: number
  /** mask: the text in place of the value. */
  readonly with?: string
}

export interface ShapingRule {
  /** Names the rule in lpr_shaped_lines_total{rule} and /health. */
  readonly name: string
  /** Destinations (names in SINKS) the rule applies to; all when absent. */
  readonly sinks?: readonly string[]
  /** Datasets the rule applies to; all when absent. */
  readonly datasets?: readonly string[]
  /** Cloudflare's Logpush filter: the object, or the JSON string a job's `filter` holds. */
  readonly filter?: unknown
  readonly sample?: number
  /** The field whose value decides sampling; RayID where the dataset has it, else the whole line. */
  readonly sampleBy?: string
  readonly keep?: readonly string[]
  readonly drop?: readonly string[]
  readonly transforms?: readonly TransformConfig[]
}

const fieldList = { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1, uniqueItems: true }

export const shapingSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
      sinks: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
      datasets: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
      filter: { type: ['object', 'string'] },
      sample: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
      sampleBy: { type: 'string', minLength: 1 },
      keep: fieldList,
      drop: fieldList,
      transforms: {
        type: 'array',
        items: {
          type: 'object',
          additionalProperties: false,
          required: ['field', 'type'],
          properties: {
            field: { anyOf: [{ type: 'string', minLength: 1 }, fieldList] },
            type: { type: 'string', enum: ['hmac-sha256', 'truncate-ip', 'remove-query', 'mask'] },
            keyEnv: { type: 'string', minLength: 1 },
            keyFile: { type: 'string', minLength: 1 },
            ipv4Prefix: { type: 'integer', minimum: 0, maximum: 32 },
            ipv6Prefix: { type: 'integer', minimum: 0, maximum: 128 },
            with: { type: 'string' }
          }
        }
      }
    }
  }
} as const

/** A rule as compiled for one dataset. */
export interface CompiledRule {
  readonly name: string
  readonly filter: Predicate | null
  readonly sample: Sampler | null
  readonly transforms: ReadonlyArray<{ field: string, apply: ValueTransform, kind: TransformKind }>
  readonly keep: ReadonlySet<string> | null
  readonly drop: ReadonlySet<string>
  /** The fields the rule's filter, sample and transforms read. */
  readonly reads: readonly string[]
  /** The one line /health shows for this rule. */
  readonly summary: string
}

/** Fields holding IP addresses (the schema's x-es-type ip): what "@ip" names. */
export function ipFields(schema: DatasetSchema): string[] {
  return Object.entries(schema.properties).filter(([, f]) => f['x-es-type'] === 'ip').map(([k]) => k)
}

function readKey(t: TransformConfig, where: string, env: NodeJS.ProcessEnv): Buffer {
  if ((t.keyEnv === undefined) === (t.keyFile === undefined)) throw new ConfigInvalid(`${where}: hmac-sha256 needs its key from keyEnv or keyFile (one of the two)`)
  let key: string | undefined
  if (t.keyEnv !== undefined) {
    key = env[t.keyEnv]
    if (key === undefined || key === '') throw new ConfigInvalid(`${where}: the environment variable ${t.keyEnv} (keyEnv) is not set`)
  } else {
    try {
      key = readFileSync(t.keyFile!, 'utf8').trim()
    } catch (err) {
      throw new ConfigInvalid(`${where}: keyFile cannot be read: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`)
    }
  }
  // A short key can be found by trying keys: 16 bytes is the least HMAC's security rests on.
  if (Buffer.byteLength(key) < 16) throw new ConfigInvalid(`${where}: the hmac-sha256 key must be at least 16 bytes (it has ${Buffer.byteLength(key)})`)
  return Buffer.from(key)
}

function compileRule(rule: ShapingRule, dataset: string, schema: DatasetSchema, env: NodeJS.ProcessEnv, keys: Map<string, Buffer>): CompiledRule {
  const where = `CONFIG_FILE shaping rule "${rule.name}" for dataset ${dataset}`
  const has = (field: string, what: string): void => {
    if (!schema.properties[field]) throw new ConfigInvalid(`${where}: ${what} names field "${field}", which dataset ${dataset} does not have`)
  }
  let filter: Predicate | null = null
  if (rule.filter !== undefined) {
    try {
      filter = compileFilter(rule.filter, schema, `${where}: filter`)
    } catch (err) {
      if (err instanceof FilterError) throw new ConfigInvalid(err.message)
      throw err
    }
  }
  let sample: Sampler | null = null
  let sampleBy: string | null = null
  if (rule.sample !== undefined && rule.sample < 1) {
    if (rule.sampleBy !== undefined) has(rule.sampleBy, 'sampleBy')
    sampleBy = rule.sampleBy ?? (schema.properties.RayID ? 'RayID' : null)
    sample = sampler(rule.sample, sampleBy)
  }
  for (const f of rule.keep ?? []) has(f, 'keep')
  for (const f of rule.drop ?? []) has(f, 'drop')
  const transforms: Array<{ field: string, apply: ValueTransform, kind: TransformKind }> = []
  for (const [i, t] of (rule.transforms ?? []).entries()) {
    const at = `${where}: transforms[${i}] (${t.type})`
    const fields = t.field === '@ip' ? ipFields(schema) : typeof t.field === 'string' ? [t.field] : [...t.field]
    for (const f of fields) has(f, `transforms[${i}]`)
    let apply: ValueTransform
    switch (t.type) {
      case 'hmac-sha256': {
        const id = `${t.keyEnv ?? ''}\n${t.keyFile ?? ''}`
        if (!keys.has(id)) keys.set(id, readKey(t, at, env))
        apply = hmacSha256(keys.get(id)!)
        break
      }
      case 'truncate-ip': apply = truncateIpTransform(t.ipv4Prefix ?? 24, t.ipv6Prefix ?? 48); break
      case 'remove-query': apply = removeQuery(); break
      case 'mask': apply = mask(t.with ?? 'REDACTED'); break
    }
    for (const field of fields) transforms.push({ field, apply, kind: t.type })
  }
  const parts: string[] = []
  if (rule.filter !== undefined) parts.push(`filter on ${filterFields(rule.filter).join(', ')}`)
  if (sample) parts.push(`sample ${rule.sample}`)
  if (rule.keep) parts.push(`keep ${rule.keep.length} fields`)
  if (rule.drop) parts.push(`drop ${rule.drop.length} fields`)
  for (const t of rule.transforms ?? []) parts.push(`${t.type} ${t.field === '@ip' ? `@ip (${ipFields(schema).join(', ') || 'none'})` : [t.field].flat().join(', ')}`)
  return {
    name: rule.name,
    filter,
    sample,
    transforms,
    reads: [...(rule.filter !== undefined ? filterFields(rule.filter) : []), ...(sampleBy !== null ? [sampleBy] : []), ...transforms.map((t) => t.field)],
    keep: rule.keep ? new Set(rule.keep) : null,
    drop: new Set(rule.drop ?? []),
    summary: `${rule.name}: ${parts.join('; ') || 'nothing'}`
  }
}

/** Shapers per destination and dataset; a destination or dataset without any rule has none (its lines go out as stored). */
export type Shapers = ReadonlyMap<string, ReadonlyMap<string, Shaper>>

export function buildShapers(rules: readonly ShapingRule[], sinks: readonly string[], datasets: ReadonlyMap<string, { schema: DatasetSchema, eventTimeField: string }>, env: NodeJS.ProcessEnv = process.env): Shapers {
  const names = new Set<string>()
  for (const rule of rules) {
    // One list says what goes out: both would leave a reader to guess which wins.
    if (rule.keep && rule.drop) throw new ConfigInvalid(`CONFIG_FILE shaping rule "${rule.name}" has keep and drop: give one of the two`)
    if (names.has(rule.name)) throw new ConfigInvalid(`CONFIG_FILE shaping: two rules are named "${rule.name}"`)
    names.add(rule.name)
    for (const s of rule.sinks ?? []) if (!sinks.includes(s)) throw new ConfigInvalid(`CONFIG_FILE shaping rule "${rule.name}" names destination "${s}", which is not in SINKS (${sinks.join(',')})`)
    for (const d of rule.datasets ?? []) if (!datasets.has(d)) throw new ConfigInvalid(`CONFIG_FILE shaping rule "${rule.name}" names dataset "${d}", which has no schema`)
  }
  const keys = new Map<string, Buffer>()
  const out = new Map<string, Map<string, Shaper>>()
  for (const sink of sinks) {
    const bySet = new Map<string, Shaper>()
    for (const [name, d] of datasets) {
      const applying = rules.filter((r) => (r.sinks?.includes(sink) ?? true) && (r.datasets?.includes(name) ?? true))
      if (applying.length === 0) continue
      const compiled = applying.map((r) => compileRule(r, name, d.schema, env, keys))
      bySet.set(name, new Shaper(compiled, fieldGate(intersect(compiled.map((c) => c.keep)), new Set(compiled.flatMap((c) => [...c.drop])), d.eventTimeField)))
    }
    if (bySet.size > 0) out.set(sink, bySet)
  }
  return out
}

function intersect(sets: ReadonlyArray<ReadonlySet<string> | null>): ReadonlySet<string> | null {
  const given = sets.filter((s): s is ReadonlySet<string> => s !== null)
  if (given.length === 0) return null
  return new Set([...given[0]!].filter((f) => given.every((s) => s.has(f))))
}

/** Schemas as the Elasticsearch destination should map them: a field it gets hashed or masked is no IP any more (a keyword). */
export function schemasForElasticsearch<T extends { schema: DatasetSchema }>(datasets: ReadonlyMap<string, T>, shapers: Shapers | undefined, sink = 'elasticsearch'): Map<string, DatasetSchema> {
  const bySet = shapers?.get(sink)
  return new Map([...datasets].map(([name, d]) => {
    const changed = bySet?.get(name)?.nonIpFields() ?? []
    if (changed.length === 0) return [name, d.schema]
    const schema = structuredClone(d.schema)
    for (const f of changed) if (schema.properties[f]) delete schema.properties[f]['x-es-type']
    return [name, schema]
  }))
}
