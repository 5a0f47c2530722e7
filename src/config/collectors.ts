// Pull collectors in CONFIG_FILE (`collectors:`): what the service reads from Cloudflare's API
// itself, for accounts and zones that cannot (or do not yet) push. A list, because one service may
// pull several accounts and zones at once. Secrets never sit in the file: `auth` names the
// environment variables or files that hold them (src/cloudflare-api/client.ts CredentialSpec).
//
// Each type's own fields extend `collectorTypeFields` below and its checks go in `typeChecks`, so
// a new type (Logpull's fields, timestamps, sample) adds a branch without touching the others.
import { ConfigInvalid } from '../errors.js'
import type { CredentialSpec } from '../cloudflare-api/client.js'

export type CollectorType = 'audit_logs' | 'audit_logs_v2' | 'logpull'

/** The dataset a collector type feeds: the Logpush dataset with the same fields. */
export const collectorDataset: Readonly<Record<CollectorType, string>> = {
  audit_logs: 'audit_logs',
  audit_logs_v2: 'audit_logs_v2',
  logpull: 'http_requests'
}

export interface CollectorConfig {
  /** Names the collector in logs, /health, /metrics and its cursor (DATA_DIR/collectors/<name>). */
  readonly name: string
  readonly type: CollectorType
  /** Account id (audit types). */
  readonly account?: string
  /** Zone id (logpull). */
  readonly zone?: string
  readonly auth: CredentialSpec
  /** Seconds between two windows once the collector has caught up. */
  readonly pollSeconds: number
  /** Longest window asked for in one go. */
  readonly windowSeconds: number
  /** How far behind now a window must end: records the API publishes late are read once they are there. */
  readonly delaySeconds: number
  /** On the very first start (no cursor yet), how many hours before now are read. */
  readonly startLookbackHours: number
  /** Records per page (audit logs). */
  readonly perPage: number
  /** Type-specific fields (logpull: fields, timestamps, sample), validated by their type's schema part. */
  readonly [extra: string]: unknown
}

const ENV_NAME = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }
// Cloudflare's ids are 32 hex digits; only what keeps them safe in a URL path is enforced.
const CF_ID = { type: 'string', pattern: '^[A-Za-z0-9]{1,64}$' }

export const collectorAuthSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    tokenEnv: ENV_NAME,
    tokenFile: { type: 'string', minLength: 1 },
    emailEnv: ENV_NAME,
    keyEnv: ENV_NAME,
    keyFile: { type: 'string', minLength: 1 }
  }
} as const

/** Fields only some types take (JSON schema per field); a type's checks in typeChecks refuse them on other types. */
export const collectorTypeFields = {
  // logpull: the fields to ask for (Cloudflare's names; omitted: its default set, which "may change at any time"),
  // the timestamp format (unixnano, Cloudflare's and Logpush's default; the http_requests schema takes all three)
  // and a sample share (0 < x <= 1; a sampled window is not every record).
  fields: { type: 'array', minItems: 1, uniqueItems: true, items: { type: 'string', pattern: '^[A-Za-z][A-Za-z0-9_]*$' } },
  timestamps: { type: 'string', enum: ['unixnano', 'unix', 'rfc3339'] },
  sample: { type: 'number', exclusiveMinimum: 0, maximum: 1 },
  // logpull: Cloudflare's documented rates (15/min per zone, 180/min per user); lower them if other tools use the same zone or user.
  zoneRequestsPerMinute: { type: 'integer', minimum: 1 },
  userRequestsPerMinute: { type: 'integer', minimum: 1 }
} as const

export const collectorSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'type', 'auth'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
    type: { type: 'string', enum: Object.keys(collectorDataset) },
    account: CF_ID,
    zone: CF_ID,
    auth: collectorAuthSchema,
    pollSeconds: { type: 'integer', minimum: 1 },
    windowSeconds: { type: 'integer', minimum: 1 },
    delaySeconds: { type: 'integer', minimum: 0 },
    startLookbackHours: { type: 'integer', minimum: 0, maximum: 24 * 366 },
    perPage: { type: 'integer', minimum: 1, maximum: 1000 },
    ...collectorTypeFields
  }
} as const

export const collectorDefaults = {
  pollSeconds: 60,
  windowSeconds: 3600,
  // Audit logs appear in the API within minutes of the action (see docs/sources.md "Pull instead
  // of push"); five minutes behind now leaves them that time. Logpull's docs ask for an end at
  // least one minute (OpenAPI: five minutes) before now.
  delaySeconds: 300,
  startLookbackHours: 24,
  perPage: 1000
} as const

/** Per type, the checks a schema cannot express (and the type's own defaults), applied after the common ones. */
export const typeChecks: Record<CollectorType, (c: CollectorConfig) => CollectorConfig> = {
  audit_logs: auditChecks,
  audit_logs_v2: auditChecks,
  logpull: (c) => {
    if (c.zone === undefined) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}: type logpull needs zone`)
    if (c.account !== undefined) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}: type logpull takes zone, not account`)
    // Logpull answers at most one hour per request.
    if (c.windowSeconds > 3600) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}.windowSeconds: Logpull allows at most 3600 (one hour)`)
    // Logpull refuses an end less than a minute before now; below that every window would be refused.
    if (c.delaySeconds < 60) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}.delaySeconds: Logpull needs at least 60 (its docs: one minute; its OpenAPI: five, the default 300)`)
    return c
  }
}

/** An API token (tokenEnv or tokenFile), or an email + Global API Key (emailEnv, and keyEnv or keyFile): one way, given once. */
function checkAuth(c: CollectorConfig): void {
  const a = c.auth
  const tokens = [a.tokenEnv, a.tokenFile].filter((v) => v !== undefined).length
  const keys = [a.keyEnv, a.keyFile].filter((v) => v !== undefined).length
  const ok = (tokens === 1 && keys === 0 && a.emailEnv === undefined) || (tokens === 0 && keys === 1 && a.emailEnv !== undefined)
  if (!ok) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}.auth: give tokenEnv or tokenFile (an API token), or emailEnv with keyEnv or keyFile (email + Global API Key)`)
}

function auditChecks(c: CollectorConfig): CollectorConfig {
  if (c.account === undefined) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}: type ${c.type} needs account`)
  if (c.zone !== undefined) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}: type ${c.type} takes account, not zone`)
  for (const k of Object.keys(collectorTypeFields)) if (c[k] !== undefined) throw new ConfigInvalid(`CONFIG_FILE collectors.${c.name}.${k}: only type logpull takes it`)
  return c
}

/** Applies the defaults and the checks a schema cannot express; `taken` holds the bucket sources' names. */
export function normalizeCollectors(raw: ReadonlyArray<Record<string, unknown>>, taken: ReadonlySet<string> = new Set()): CollectorConfig[] {
  const seen = new Set<string>()
  return raw.map((r) => {
    const c = { ...collectorDefaults, ...r } as CollectorConfig
    if (seen.has(c.name)) throw new ConfigInvalid(`CONFIG_FILE collectors: the name "${c.name}" is used twice`)
    if (taken.has(c.name)) throw new ConfigInvalid(`CONFIG_FILE collectors: the name "${c.name}" is already a bucket source's`)
    seen.add(c.name)
    checkAuth(c)
    return typeChecks[c.type](c)
  })
}
