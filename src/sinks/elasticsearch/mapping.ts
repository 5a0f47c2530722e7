// Index templates generated from schemas/<dataset>.json: the file that validates a line also
// decides how Elasticsearch indexes it, so the two cannot drift apart.
import type { DatasetSchema, FieldSchema } from '../../dataset-schema.js'
import { ruleTargets, type EcsMapping, type EcsType } from './ecs.js'

type Mapping = Record<string, unknown>

export function dataStreamName(dataset: string, namespace: string): string {
  return `logs-cloudflare.${dataset}-${namespace}`
}

export function templateName(dataset: string): string {
  return `logs-cloudflare.${dataset}`
}

/** Elastic's own data stream for a dataset its Cloudflare Logpush integration covers (ELASTICSEARCH_FORMAT=elastic-integration). */
export function integrationDataStreamName(stream: string, namespace: string): string {
  return `logs-cloudflare_logpush.${stream}-${namespace}`
}

export function fieldMapping(f: FieldSchema): Mapping {
  // Cloudflare sends "" for an IP it does not have (EdgeServerIP without an origin request):
  // such a value is kept in _source and simply not indexed, instead of failing the document.
  if (f['x-es-type'] === 'ip') return { type: 'ip', ignore_malformed: true }
  // A timestamp field comes as an RFC 3339 string or an integer, depending on the job's
  // timestamp_format. Strings and unix seconds index as dates; unixnano (no epoch-nanos format
  // exists) is kept exactly in _source and @timestamp carries it with nanosecond precision.
  if (f['x-es-type'] === 'date') return { type: 'date_nanos', format: 'strict_date_optional_time_nanos||epoch_second', ignore_malformed: true }
  const type = Array.isArray(f.type) ? f.type[0] : f.type
  switch (type) {
    case 'integer': return { type: 'long' }
    case 'number': return { type: 'double' }
    case 'boolean': return { type: 'boolean' }
    case 'string': return { type: 'keyword', ignore_above: 8191 }
    case 'array': return f.items ? fieldMapping(f.items) : { type: 'keyword', ignore_above: 8191 }
    case 'object': {
      // String maps (headers, cookies) and number maps (JA4Signals): keys are the sender's, so
      // they are mapped dynamically by the value type.
      const inner = typeof f.additionalProperties === 'object' ? fieldMapping(f.additionalProperties) : null
      return inner ? { type: 'object', dynamic: true, properties: {} } : { type: 'object', dynamic: true }
    }
    default: return { type: 'keyword', ignore_above: 8191 }
  }
}

/** Fields this service adds to every document, whatever the dataset. */
export const baseEcsMappings: Mapping = {
  '@timestamp': { type: 'date_nanos' },
  ecs: { properties: { version: { type: 'keyword' } } },
  data_stream: { properties: { type: { type: 'keyword' }, dataset: { type: 'keyword' }, namespace: { type: 'keyword' } } },
  event: { properties: { dataset: { type: 'keyword' }, module: { type: 'keyword' }, kind: { type: 'keyword' }, ingested: { type: 'date' } } }
}

function ecsFieldMapping(type: EcsType): Mapping {
  switch (type) {
    // A 40 KB URL or user agent keeps its document: Lucene's term limit is 32 KB.
    case 'keyword': return { type: 'keyword', ignore_above: 8191 }
    case 'ip': return { type: 'ip', ignore_malformed: true }
    case 'date': return { type: 'date_nanos' }
    case 'flattened': return { type: 'flattened' }
    default: return { type }
  }
}

/** How Elasticsearch stores the documents of our data streams (ELASTICSEARCH_INDEX_MODE / _SOURCE_MODE). */
export interface StorageModes {
  readonly indexMode: 'standard' | 'logsdb'
  readonly sourceMode: 'stored' | 'synthetic'
}

/**
 * Set explicitly, always: on a cluster created on Elasticsearch 9 a logs-*-* data stream
 * defaults to logsdb, and with a licence that allows it to synthetic _source, where the stored
 * document is rebuilt from indexed values and is no longer the line as sent (see README).
 * index.mapping.source.mode replaced the deprecated mappings._source.mode in 8.18.
 */
export function storageSettings(modes: StorageModes): Mapping {
  return { 'index.mode': modes.indexMode, 'index.mapping.source.mode': modes.sourceMode }
}

/** The mapping of every ECS field a dataset's schemas/ecs file can write, typed from schemas/ecs/_types.yaml. */
export function ecsMappings(mapping: EcsMapping | undefined, types: ReadonlyMap<string, EcsType>): Mapping {
  const root: Mapping = structuredClone(baseEcsMappings)
  for (const rule of mapping?.rules ?? []) {
    for (const target of ruleTargets(rule)) {
      const keys = target.split('.')
      let props = root
      for (const k of keys.slice(0, -1)) {
        const node = (props[k] ??= { properties: {} }) as { properties?: Mapping }
        props = (node.properties ??= {})
      }
      props[keys[keys.length - 1]!] = ecsFieldMapping(types.get(target)!)
    }
  }
  return root
}

export function indexTemplate(
  dataset: string,
  schema: DatasetSchema,
  ecs?: { mapping: EcsMapping | undefined, types: ReadonlyMap<string, EcsType> },
  modes: StorageModes = { indexMode: 'standard', sourceMode: 'stored' }
): Mapping {
  const properties: Mapping = {}
  for (const [name, f] of Object.entries(schema.properties)) properties[name] = fieldMapping(f)
  return {
    index_patterns: [`${templateName(dataset)}-*`],
    data_stream: {},
    // Above the built-in logs-*-* template (priority 100), so ours wins for our streams.
    priority: 200,
    _meta: { managed_by: 'logpush-receiver', dataset, description: `Generated from schemas/${dataset}.json` },
    template: {
      settings: storageSettings(modes),
      mappings: {
        // New Cloudflare fields (schema drift) still index: strings as keywords, numbers as numbers.
        dynamic: true,
        dynamic_templates: [{ strings_as_keyword: { match_mapping_type: 'string', mapping: { type: 'keyword', ignore_above: 8191 } } }],
        properties: { ...ecsMappings(ecs?.mapping, ecs?.types ?? new Map()), ...properties }
      }
    }
  }
}
