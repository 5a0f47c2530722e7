import { Ajv } from 'ajv'
import { ConfigInvalid } from '../errors.js'
import { settings, type SettingDef, type SettingKey } from './settings.js'
import { readConfigFile, type DatasetRoute } from './file.js'

type ValueOf<D extends SettingDef> = D['type'] extends 'integer' ? number : D['type'] extends 'boolean' ? boolean : string

export type Config = { readonly [K in SettingKey]: ValueOf<(typeof settings)[K]> } & {
  /** Per-dataset routing from CONFIG_FILE; empty without one. */
  readonly routes: Readonly<Record<string, DatasetRoute>>
  /** CONFIG_FILE hec.sourcetypes: sourcetype -> dataset for the HEC intake; empty without one. */
  readonly hecSourcetypes: Readonly<Record<string, string>>
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
        ...(s.enum ? { enum: s.enum } : {}),
        ...(s.pattern ? { pattern: s.pattern } : {})
      }
    ])
  )
}

const validate = new Ajv({ coerceTypes: true, useDefaults: true, allErrors: true, strict: true }).compile(schema)

/** Reads the settings from an environment (process.env by default), validated once and frozen. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const file = env.CONFIG_FILE ? readConfigFile(env.CONFIG_FILE) : { settings: {}, datasets: {}, hecSourcetypes: {} }
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
  out.hecSourcetypes = file.hecSourcetypes
  const config = out as Config
  const sinks = new Set(config.sinks.split(','))
  for (const [dataset, route] of Object.entries(config.routes)) {
    for (const sink of route.sinks ?? []) {
      if (!sinks.has(sink)) throw new ConfigInvalid(`CONFIG_FILE datasets.${dataset}.sinks names "${sink}", which is not in SINKS (${config.sinks})`)
    }
  }
  if (config.spoolLowWatermarkBytes >= config.spoolHighWatermarkBytes) {
    throw new ConfigInvalid(`SPOOL_LOW_WATERMARK_BYTES (${config.spoolLowWatermarkBytes}) must be below SPOOL_HIGH_WATERMARK_BYTES (${config.spoolHighWatermarkBytes})`)
  }
  if (sinks.has('splunk') && config.splunkHecToken === '') {
    throw new ConfigInvalid('SINKS names splunk: set SPLUNK_HEC_TOKEN (and SPLUNK_HEC_URL)')
  }
  if ((config.tlsCertFile === '') !== (config.tlsKeyFile === '')) {
    throw new ConfigInvalid('TLS_CERT_FILE and TLS_KEY_FILE go together: set both or neither')
  }
  return Object.freeze(config)
}

/** The configuration as it may be logged: secrets masked. */
export function describeConfig(config: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [key, s] of Object.entries(settings) as [SettingKey, SettingDef][]) {
    out[s.env] = s.secret ? (config[key] === '' ? '(unset)' : '(set)') : config[key]
  }
  if (Object.keys(config.routes).length > 0) out.routes = config.routes
  if (Object.keys(config.hecSourcetypes).length > 0) out.hecSourcetypes = config.hecSourcetypes
  return out
}
