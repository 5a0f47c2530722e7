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
/**
 * Longest keyword indexed, in characters. Lucene refuses a term above 32766 bytes and a UTF-8
 * character takes up to 4, so 8191 characters always fit: a 40 KB ClientRequestURI or a 100 KB
 * RequestHeaders value is kept in _source and simply not indexed, instead of failing the document.
 */
export const KEYWORD_IGNORE_ABOVE = 8191

const keyword = (): Mapping => ({ type: 'keyword', ignore_above: KEYWORD_IGNORE_ABOVE })

export function fieldMapping(f: FieldSchema): Mapping {
  // Cloudflare sends "" for an IP it does not have (EdgeServerIP without an origin request):
  // such a value is kept in _source and simply not indexed, instead of failing the document.
  if (f['x-es-type'] === 'ip') return { type: 'ip', ignore_malformed: true }
  // A timestamp field comes as an RFC 3339 string or an integer, depending on the job's
  // timestamp_format. Strings and unix seconds index as dates; unixnano (no epoch-nanos format
  // exists) is kept exactly in _source and @timestamp carries it with nanosecond precision.
  if (f['x-es-type'] === 'date') return { type: 'date_nanos', format: 'strict_date_optional_time_nanos||epoch_second', ignore_malformed: true }
  // A field whose type the reference only infers takes any value in the schema; every concrete
  // mapping refuses some shape (flattened a string, long an object), so it is kept in _source
  // and not indexed until Cloudflare documents its type.
  if (f['x-unverified'] === true) return { type: 'object', enabled: false }
  const cf = f['x-cloudflare-type']
  if (cf !== undefined) {
    // The reference's own type decides.
    switch (cf) {
      case 'int': case 'array[int]': return { type: 'long' }
      case 'float': return { type: 'double' }
      case 'bool': return { type: 'boolean' }
      // Free-form maps and arrays of objects: one field, every leaf searchable as a keyword,
      // instead of one mapped field per header name or record key.
      case 'object': case 'array[object]': return { type: 'flattened', ignore_above: KEYWORD_IGNORE_ABOVE }
      default: return keyword()
    }
  }
  // A schema written by hand (no x-cloudflare-type): its JSON type decides.
  const type = Array.isArray(f.type) ? f.type[0] : f.type
  switch (type) {
    case 'integer': return { type: 'long' }
    case 'number': return { type: 'double' }
    case 'boolean': return { type: 'boolean' }
    case 'array': return f.items ? fieldMapping(f.items) : keyword()
    case 'object': return { type: 'flattened', ignore_above: KEYWORD_IGNORE_ABOVE }
    default: return keyword()
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
    case 'keyword': return keyword()
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
 * document is rebuilt from indexed values and is no longer the line as sent (see docs/elasticsearch.md).
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

export interface TemplateOptions {
  /** Data stream lifecycle retention ("30d"); empty or absent: none (data kept until deleted). */
  readonly dataRetention?: string
  /** The dataset's ECS mapping (schemas/ecs) and the ECS field types; absent: only the fields every document gets. */
  readonly ecs?: { readonly mapping: EcsMapping | undefined, readonly types: ReadonlyMap<string, EcsType> }
  /** index.mode and index.mapping.source.mode; standard and stored when absent. */
  readonly modes?: StorageModes
}

export function indexTemplate(dataset: string, schema: DatasetSchema, opts: TemplateOptions = {}): Mapping {
  const properties: Mapping = {}
  for (const [name, f] of Object.entries(schema.properties)) properties[name] = fieldMapping(f)
  return {
    index_patterns: [`${templateName(dataset)}-*`],
    data_stream: {},
    // Above the built-in logs-*-* template (priority 100), so ours wins for our streams.
    priority: 200,
    _meta: { managed_by: 'logpush-receiver', dataset, description: `Generated from schemas/${dataset}.json` },
    template: {
      settings: storageSettings(opts.modes ?? { indexMode: 'standard', sourceMode: 'stored' }),
      // The data stream lifecycle rolls the backing indices over (this template replaces the
      // built-in logs one and its ILM policy); retention only when asked for.
      lifecycle: opts.dataRetention ? { enabled: true, data_retention: opts.dataRetention } : { enabled: true },
      mappings: {
        // New Cloudflare fields (schema drift) still index: strings as keywords, numbers as numbers.
        dynamic: true,
        dynamic_templates: [{ strings_as_keyword: { match_mapping_type: 'string', mapping: keyword() } }],
        properties: { ...ecsMappings(opts.ecs?.mapping, opts.ecs?.types ?? new Map()), ...properties }
      }
    }
  }
}
