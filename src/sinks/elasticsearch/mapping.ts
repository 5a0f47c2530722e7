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
      request: { properties: { method: { type: 'keyword' }, bytes: { type: 'long' }, referrer: { type: 'keyword', ignore_above: 8191 } } },
      response: { properties: { status_code: { type: 'long' }, bytes: { type: 'long' }, mime_type: { type: 'keyword' } } }
    }
  },
  url: { properties: { original: { type: 'keyword', ignore_above: 8191 }, domain: { type: 'keyword' }, path: { type: 'keyword', ignore_above: 8191 }, scheme: { type: 'keyword' } } },
  user_agent: { properties: { original: { type: 'keyword', ignore_above: 8191 } } },
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

export function indexTemplate(dataset: string, schema: DatasetSchema, modes: StorageModes = { indexMode: 'standard', sourceMode: 'stored' }): Mapping {
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
        properties: { ...ecsMappings, ...properties }
      }
    }
  }
}
