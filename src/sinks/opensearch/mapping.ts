// OpenSearch index templates and the ISM policy. The mappings are the Elasticsearch destination's
// (mapping.ts and ecs.ts there, generated from schemas/ and schemas/ecs), translated where the two
// engines differ, so the field types of a dataset cannot drift apart between the two destinations.
import type { DatasetSchema } from '../../dataset-schema.js'
import { indexTemplate, templateName, type TemplateOptions } from '../elasticsearch/mapping.js'

type Mapping = Record<string, unknown>

export { dataStreamName, templateName } from '../elasticsearch/mapping.js'

/** The ISM policy our data streams' backing indices get (OpenSearch's counterpart of ILM). */
export const ISM_POLICY_ID = 'logpush-receiver-cloudflare'

/**
 * Elasticsearch's `flattened` is OpenSearch's `flat_object` (2.7 and later; it has no
 * ignore_above: every leaf is kept as a keyword-like value). Everything else the Elasticsearch
 * mapping uses (keyword with ignore_above, long, double, boolean, ip with ignore_malformed,
 * date_nanos with strict_date_optional_time_nanos, object with enabled false) OpenSearch has as is.
 */
function translate (node: unknown): unknown {
  if (Array.isArray(node)) return node.map(translate)
  if (node === null || typeof node !== 'object') return node
  const m = node as Mapping
  if (m.type === 'flattened') return { type: 'flat_object' }
  return Object.fromEntries(Object.entries(m).map(([k, v]) => [k, translate(v)]))
}

/**
 * The Elasticsearch template of the dataset, minus what OpenSearch does not have: index.mode and
 * index.mapping.source.mode (OpenSearch always stores _source as sent), and the data stream
 * lifecycle (the ISM policy rolls over and deletes instead, see ismPolicy).
 */
export function openSearchTemplate (dataset: string, schema: DatasetSchema, opts: Pick<TemplateOptions, 'ecs'> = {}): Mapping {
  const es = indexTemplate(dataset, schema, opts)
  const template = es.template as Mapping
  return {
    index_patterns: es.index_patterns,
    data_stream: {},
    priority: es.priority,
    _meta: es._meta,
    template: { mappings: translate(template.mappings) }
  }
}

/**
 * Rolls a backing index over at 50 GB per primary shard or 30 days, and deletes it `retention`
 * after its rollover (empty: never). Attached to new backing indices by its ism_template.
 */
export function ismPolicy (retention: string): Mapping {
  const hot = {
    name: 'hot',
    actions: [{ rollover: { min_primary_shard_size: '50gb', min_index_age: '30d' } }],
    transitions: retention ? [{ state_name: 'delete', conditions: { min_rollover_age: retention } }] : []
  }
  const states: Mapping[] = [hot]
  if (retention) states.push({ name: 'delete', actions: [{ delete: {} }], transitions: [] })
  return {
    policy: {
      description: 'logpush-receiver: rollover of the logs-cloudflare.* data streams' + (retention ? `, deleted ${retention} after rollover` : ''),
      default_state: 'hot',
      states,
      ism_template: [{ index_patterns: [`.ds-${templateName('*')}`], priority: 100 }]
    }
  }
}
