import { Ajv } from 'ajv'
import { ConfigInvalid } from '../errors.js'
import { redactDestinationSecrets } from '../cloudflare-api/redact.js'
import { settings, type SettingDef, type SettingKey } from './settings.js'
import { readConfigFile, type DatasetRoute } from './file.js'
import type { BucketSourceConfig } from './sources.js'
import type { CollectorConfig } from './collectors.js'
import type { ShapingRule } from '../shaping/config.js'
import { tenantTokens, type RoutingRule, type TenantConfig } from '../shaping/route.js'

type ValueOf<D extends SettingDef> = D['type'] extends 'integer' ? number : D['type'] extends 'boolean' ? boolean : string

export type Config = { readonly [K in SettingKey]: ValueOf<(typeof settings)[K]> } & {
  /** Per-dataset routing from CONFIG_FILE; empty without one. */
  readonly routes: Readonly<Record<string, DatasetRoute>>
  /** Bucket sources from CONFIG_FILE; empty without one. */
  readonly sources: readonly BucketSourceConfig[]
  /** Pull collectors from CONFIG_FILE; empty without one. */
  readonly collectors: readonly CollectorConfig[]
  /** CONFIG_FILE hec.sourcetypes: sourcetype -> dataset for the HEC intake; empty without one. */
  readonly hecSourcetypes: Readonly<Record<string, string>>
  /** CONFIG_FILE shaping rules (src/shaping); empty without any. */
  readonly shaping: readonly ShapingRule[]
  /** CONFIG_FILE tenants and routing rules (src/shaping/route.ts); empty without any. */
  readonly tenants: Readonly<Record<string, TenantConfig>>
  readonly routing: readonly RoutingRule[]
  /** CONFIG_FILE tokens: Logpush tokens naming their tenant, read from the environment at load. */
  readonly tenantTokens: ReadonlyArray<{ readonly token: string, readonly tenant: string }>
}

const schema = {
  type: 'object',
  additionalProperties: true,
  properties: Object.fromEntries(
    Object.values(settings).map((s: SettingDef) => [
      s.env,
      {
        type: s.type,
        ...(s.default !== undefined ? { default: s.default } : {}),
        ...(s.minimum !== undefined ? { minimum: s.minimum } : {}),
        ...(s.maximum !== undefined ? { maximum: s.maximum } : {}),
        ...(s.enum ? { enum: s.enum } : {}),
        ...(s.pattern ? { pattern: s.pattern } : {})
      }
    ])
  )
}

const validate = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true, strict: true }).compile(schema)

/** Reads the settings from an environment (process.env by default), validated once and frozen. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE) : { settings: {}, datasets: {}, sources: [], collectors: [], hecSourcetypes: {}, shaping: [], tenants: {}, routing: [], tenantTokens: [] }
  // Empty strings mean "unset" for every setting, the way shells and compose files write them.
  const input: Record<string, unknown> = {}
  for (const s of Object.values(settings) as SettingDef[]) {
    const v = env[s.env] !== undefined && env[s.env] !== '' ? env[s.env] : file.settings[s.env]
    if (v !== undefined && v !== '') input[s.env] = v
  }
  if (!validate(input)) {
    const why = (validate.errors ?? []).map((e) => `${e.instancePath.slice(1) || 'environment'} ${e.message}`).join('; ')
    throw new ConfigInvalid(why)
  }
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(settings) as [SettingKey, SettingDef][]) out[key] = input[s.env]
  out.routes = file.datasets
  out.sources = file.sources
  out.collectors = file.collectors
  out.hecSourcetypes = file.hecSourcetypes
  out.shaping = file.shaping
  out.tenants = file.tenants
  out.routing = file.routing
  out.tenantTokens = tenantTokens(file.tenantTokens, file.tenants, env)
  const config = out as Config
  const sinks = new Set(config.sinks.split(','))
  for (const [dataset, route] of Object.entries(config.routes)) {
    for (const sink of route.sinks ?? []) {
      if (!sinks.has(sink)) throw new ConfigInvalid(`CONFIG_FILE datasets.${dataset}.sinks names "${sink}", which is not in SINKS (${config.sinks})`)
    }
  }
  // 0 < low < high: at 0 the spool could never drop below it, and once full would refuse for ever.
  if (config.spoolLowWatermarkBytes === 0) {
    throw new ConfigInvalid('SPOOL_LOW_WATERMARK_BYTES must be above 0: the spool accepts again once it drains below it, and it never holds less than 0 bytes')
  }
  if (config.spoolLowWatermarkBytes >= config.spoolHighWatermarkBytes) {
    throw new ConfigInvalid(`SPOOL_LOW_WATERMARK_BYTES (${config.spoolLowWatermarkBytes}) must be below SPOOL_HIGH_WATERMARK_BYTES (${config.spoolHighWatermarkBytes})`)
  }
  if (config.sources.length > 0 && config.dedupeWindowSeconds === 0) {
    // A bucket object re-read after a crash is recognised by its (bucket, key, ETag) digest in the spool.
    throw new ConfigInvalid('CONFIG_FILE has sources: DEDUPE_WINDOW_SECONDS must not be 0 (it keeps objects read again after a crash from being stored twice)')
  }
  if (config.collectors.length > 0 && config.dedupeWindowSeconds === 0) {
    // A staged window ingested again after a crash is recognised by its digest in the spool.
    throw new ConfigInvalid('CONFIG_FILE has collectors: DEDUPE_WINDOW_SECONDS must not be 0 (it keeps a window ingested again after a crash from being stored twice)')
  }
  if (sinks.has('splunk') && config.splunkHecToken === '') {
    throw new ConfigInvalid('SINKS names splunk: set SPLUNK_HEC_TOKEN (and SPLUNK_HEC_URL)')
  }
  if (sinks.has('opensearch') && config.opensearchAuth === 'basic' && config.opensearchUsername === '') {
    throw new ConfigInvalid('OPENSEARCH_AUTH=basic: set OPENSEARCH_USERNAME and OPENSEARCH_PASSWORD')
  }
  if (sinks.has('opensearch') && config.opensearchAuth === 'aws-sigv4' && config.opensearchAwsRegion === '' && !process.env.AWS_REGION) {
    throw new ConfigInvalid('OPENSEARCH_AUTH=aws-sigv4: set OPENSEARCH_AWS_REGION (or AWS_REGION) to the region of the domain or collection')
  }
  if (sinks.has('kafka') && config.kafkaSaslMechanism !== 'none' && config.kafkaUsername === '') {
    throw new ConfigInvalid(`KAFKA_SASL_MECHANISM=${config.kafkaSaslMechanism}: set KAFKA_USERNAME and KAFKA_PASSWORD`)
  }
  if ((config.tlsCertFile === '') !== (config.tlsKeyFile === '')) {
    throw new ConfigInvalid('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither')
  }
  return Object.freeze(config)
}

/** Every string in a value through the one redactor: a URL setting may carry credentials (https://user:password@host). */
function redacted(value: unknown): unknown {
  if (typeof value === 'string') return redactDestinationSecrets(value)
  if (Array.isArray(value)) return value.map(redacted)
  if (typeof value === 'object' && value !== null) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, redacted(v)]))
  return value
}

/** The configuration as it may be logged: secret settings shown as (set), secrets inside any other value masked. */
export function describeConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(settings) as [SettingKey, SettingDef][]) {
    out[s.env] = s.secret ? (config[key] === '' ? '(unset)' : '(set)') : redacted(config[key])
  }
  if (Object.keys(config.routes).length > 0) out.routes = redacted(config.routes)
  // Sources name the variables that hold their keys, never the keys (an endpoint URL may still carry some).
  if (config.sources.length > 0) out.sources = redacted(config.sources)
  // Collectors name the variables or files that hold their credentials, never the credentials.
  if (config.collectors.length > 0) out.collectors = redacted(config.collectors)
  if (Object.keys(config.hecSourcetypes).length > 0) out.hecSourcetypes = config.hecSourcetypes
  // Rules name the variables or files that hold hmac keys, never the keys.
  if (config.shaping.length > 0) out.shaping = config.shaping
  if (config.routing.length > 0) out.routing = { tenants: config.tenants, rules: config.routing }
  return out
}

/**
 * The one line a failed start prints: the stable code first (docs/errors.md promises it, operators grep
 * for it), then the message. Configuration errors are the operator's to fix, so no stack.
 */
export function startupErrorLine(err: unknown): string {
  const e = err as { code?: unknown, message?: unknown, stack?: unknown }
  if (typeof e?.code === 'string' && e.code.startsWith('LPR_ERR_')) return `logpush-receiver: ${e.code}: ${String(e.message)}`
  return `logpush-receiver: could not start: ${typeof e?.stack === 'string' ? e.stack : String(err)}`
}
