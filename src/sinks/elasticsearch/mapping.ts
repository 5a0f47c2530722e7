// Index templates generated from schemas/<dataset>.json: the file that validates a line also
// decides how Elasticsearch indexes it, so the two cannot drift apart.
import type { DatasetSchema, FieldSchema } from '../../dataset-schema.js'

type Mapping = Record<string, unknown>

export function dataStreamName(dataset: string, namespace: string): string {
  return `logs-cloudflare.${dataset}-${namespace}`
}

export function templateName(dataset: string): string {
  return `logs-cloudflare.${dataset}`
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

/** Fields this service adds to every document (ECS), beside the Cloudflare ones. */
export const ecsMappings: Mapping = {
  '@timestamp': { type: 'date_nanos' },
  ecs: { properties: { version: { type: 'keyword' } } },
  data_stream: { properties: { type: { type: 'keyword' }, dataset: { type: 'keyword' }, namespace: { type: 'keyword' } } },
  event: {
    properties: {
      dataset: { type: 'keyword' },
      module: { type: 'keyword' },
      kind: { type: 'keyword' },
      category: { type: 'keyword' },
      type: { type: 'keyword' },
      outcome: { type: 'keyword' },
      action: { type: 'keyword' },
      id: { type: 'keyword' },
      ingested: { type: 'date' }
    }
  },
  source: { properties: endpoint() },
  destination: { properties: endpoint() },
  network: { properties: { transport: { type: 'keyword' }, direction: { type: 'keyword' }, protocol: { type: 'keyword' }, iana_number: { type: 'keyword' } } },
  http: {
    properties: {
      request: { properties: { method: { type: 'keyword' }, bytes: { type: 'long' }, referrer: keyword() } },
      response: { properties: { status_code: { type: 'long' }, bytes: { type: 'long' }, mime_type: { type: 'keyword' } } }
    }
  },
  url: { properties: { original: keyword(), domain: { type: 'keyword' }, path: keyword(), scheme: { type: 'keyword' } } },
  user_agent: { properties: { original: keyword() } },
  tls: { properties: { version_protocol: { type: 'keyword' }, cipher: { type: 'keyword' } } },
  rule: { properties: { id: { type: 'keyword' }, name: { type: 'keyword' }, ruleset: { type: 'keyword' } } },
  observer: { properties: { name: { type: 'keyword' }, geo: { properties: { country_iso_code: { type: 'keyword' }, city_name: { type: 'keyword' } } } } }
}

function endpoint(): Mapping {
  return {
    ip: { type: 'ip' },
    port: { type: 'long' },
    bytes: { type: 'long' },
    as: { properties: { number: { type: 'long' }, organization: { properties: { name: { type: 'keyword' } } } } },
    geo: { properties: { country_iso_code: { type: 'keyword' }, city_name: { type: 'keyword' }, region_iso_code: { type: 'keyword' } } }
  }
}

export interface TemplateOptions {
  /** Data stream lifecycle retention ("30d"); empty or absent: none (data kept until deleted). */
  readonly dataRetention?: string
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
      // The data stream lifecycle rolls the backing indices over (this template replaces the
      // built-in logs one and its ILM policy); retention only when asked for.
      lifecycle: opts.dataRetention ? { enabled: true, data_retention: opts.dataRetention } : { enabled: true },
      mappings: {
        // New Cloudflare fields (schema drift) still index: strings as keywords, numbers as numbers.
        dynamic: true,
        dynamic_templates: [{ strings_as_keyword: { match_mapping_type: 'string', mapping: keyword() } }],
        properties: { ...ecsMappings, ...properties }
      }
    }
  }
}
