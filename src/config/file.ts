// The optional configuration file (CONFIG_FILE, JSON or YAML) for what environment variables
// say badly: which destinations get which dataset, and per-dataset Elasticsearch namespace and
// Splunk index/sourcetype. Any setting may also be given under `settings` by its variable name;
// the environment wins over the file, so a container can still override one value.
import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import { Ajv } from 'ajv'
import { parse as parseYaml } from 'yaml'
import { ConfigInvalid } from '../errors.js'
import { settings, type SettingDef } from './settings.js'
import { bucketSourceSchema, normalizeSources, type BucketSourceConfig } from './sources.js'
import { collectorSchema, normalizeCollectors, type CollectorConfig } from './collectors.js'
import { shapingSchema, type ShapingRule } from '../shaping/config.js'
import { routingSchema, tenantsSchema, tenantTokensSchema, type RoutingRule, type TenantConfig, type TenantToken } from '../shaping/route.js'

export interface DatasetRoute {
  /** Destinations (a subset of SINKS) that get this dataset; all of SINKS when absent. */
  readonly sinks?: readonly string[]
  readonly elasticsearch?: { readonly namespace?: string }
  readonly splunk?: { readonly index?: string, readonly sourcetype?: string, readonly source?: string }
  readonly kafka?: { readonly topic?: string }
}

export interface ConfigFile {
  readonly settings: Readonly<Record<string, string>>
  readonly datasets: Readonly<Record<string, DatasetRoute>>
  /** Buckets Logpush writes to, read by the service (src/sources/bucket). */
  readonly sources: readonly BucketSourceConfig[]
  /** What the service pulls from Cloudflare's API (src/sources/cloudflare). */
  readonly collectors: readonly CollectorConfig[]
  /** The HEC intake's sourcetype -> dataset entries (added to those of schemas/splunk/sourcetypes.json). */
  readonly hecSourcetypes: Readonly<Record<string, string>>
  /** Per-destination shaping rules (src/shaping), checked against the schemas at start. */
  readonly shaping: readonly ShapingRule[]
  /** Tenants routing may send lines to, each with its Elasticsearch namespace, Splunk index and file folder. */
  readonly tenants: Readonly<Record<string, TenantConfig>>
  /** Routing rules: a field of each line chooses its tenant (src/shaping/route.ts). */
  readonly routing: readonly RoutingRule[]
  /** Logpush tokens that name their tenant: all of a batch sent with one goes to that tenant. */
  readonly tenantTokens: readonly TenantToken[]
}

const schema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    settings: {
      type: 'object',
      additionalProperties: false,
      properties: Object.fromEntries(Object.values(settings).map((s: SettingDef) => [s.env, { type: ['string', 'number', 'boolean'] }]))
    },
    datasets: {
      type: 'object',
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        properties: {
          sinks: { type: 'array', items: { type: 'string', enum: ['file', 'elasticsearch', 'splunk', 'opensearch', 'kafka', 'discard'] }, uniqueItems: true },
          elasticsearch: {
            type: 'object',
            additionalProperties: false,
            properties: { namespace: { type: 'string', pattern: settings.elasticsearchNamespace.pattern } }
          },
          splunk: {
            type: 'object',
            additionalProperties: false,
            properties: { index: { type: 'string', minLength: 1 }, sourcetype: { type: 'string', minLength: 1 }, source: { type: 'string', minLength: 1 } }
          },
          kafka: {
            type: 'object',
            additionalProperties: false,
            properties: { topic: { type: 'string', pattern: '^[A-Za-z0-9._{}-]+$' } }
          }
        }
      }
    },
    sources: { type: 'array', items: bucketSourceSchema },
    collectors: { type: 'array', items: collectorSchema },
    shaping: shapingSchema,
    tenants: tenantsSchema,
    routing: routingSchema,
    tokens: tenantTokensSchema,
    hec: {
      type: 'object',
      additionalProperties: false,
      properties: {
        sourcetypes: { type: 'object', additionalProperties: { type: 'string', pattern: '^[a-z][a-z0-9_]*$' } }
      }
    }
  }
}

const validate = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true }).compile(schema)

export function readConfigFile(path: string): ConfigFile {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new ConfigInvalid(`CONFIG_FILE ${path} cannot be read: ${(err as Error).message}`)
  }
  let data: unknown
  try {
    data = ['.yaml', '.yml'].includes(extname(path).toLowerCase()) ? parseYaml(text) : JSON.parse(text)
  } catch (err) {
    throw new ConfigInvalid(`CONFIG_FILE ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(err as Error).message}`)
  }
  data ??= {}
  if (!validate(data)) {
    const why = (validate.errors ?? []).map((e) => {
      const where = e.instancePath || '(top level)'
      const extra = e.keyword === 'additionalProperties' ? ` "${(e.params as { additionalProperty: string }).additionalProperty}"` : ''
      const allowed = e.keyword === 'enum' ? ` (${(e.params as { allowedValues: string[] }).allowedValues.join(', ')})` : ''
      return `${where} ${e.message}${extra}${allowed}`
    }).join('; ')
    throw new ConfigInvalid(`CONFIG_FILE ${path}: ${why}`)
  }
  const file = data as { settings?: Record<string, string | number | boolean>, datasets?: Record<string, DatasetRoute>, sources?: Array<Partial<BucketSourceConfig>>, collectors?: Array<Record<string, unknown>>, hec?: { sourcetypes?: Record<string, string> }, shaping?: ShapingRule[], tenants?: Record<string, TenantConfig>, routing?: RoutingRule[], tokens?: TenantToken[] }
  return {
    settings: Object.fromEntries(Object.entries(file.settings ?? {}).map(([k, v]) => [k, String(v)])),
    datasets: file.datasets ?? {},
    sources: normalizeSources(file.sources ?? []),
    collectors: normalizeCollectors(file.collectors ?? [], new Set((file.sources ?? []).map((s) => s.name!))),
    hecSourcetypes: file.hec?.sourcetypes ?? {},
    shaping: file.shaping ?? [],
    tenants: file.tenants ?? {},
    routing: file.routing ?? [],
    tenantTokens: file.tokens ?? []
  }
}
