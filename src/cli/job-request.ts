// What `jobs create` sends to Cloudflare, built from data: the dataset's scope and fields come from
// its schema (schemas/<dataset>.json), the destination from the service's own settings.
import type { DatasetSchema, DatasetScope } from '../dataset-schema.js'
import { destinationConf } from '../intake/auth.js'
import { redactDestinationSecrets } from '../cloudflare-api/redact.js'

export class UsageError extends Error {}
/** The command printed its own outcome; exit 1 without another message. */
export class Quiet extends Error {}

export type Scope = { readonly kind: 'zones', readonly id: string } | { readonly kind: 'accounts', readonly id: string }

export const TIMESTAMP_FORMATS = ['unixnano', 'unix', 'rfc3339'] as const
export type TimestampFormat = typeof TIMESTAMP_FORMATS[number]

/**
 * Batch limits for jobs that push to this service: Cloudflare's own example values for HTTP
 * destinations (enable-destinations/http.mdx; research §1.3). Logpush gives up on an upload that
 * makes no progress for about 10 s; 5 MB / 1000 records is answered well inside that, and both are
 * the smallest values the API accepts, so a slow destination costs the least re-sending.
 */
export const MAX_UPLOAD_BYTES = 5_000_000
export const MAX_UPLOAD_RECORDS = 1000

/** The one scope a command works on, from --zone / --account, checked against the dataset's x-scope. */
export function scopeFor(dataset: string | null, schema: DatasetSchema | null, zone: string | undefined, account: string | undefined): Scope {
  if (zone !== undefined && account !== undefined) throw new UsageError('give --zone or --account, not both')
  if (zone === undefined && account === undefined) throw new UsageError('give --zone <zone id> or --account <account id>')
  const scope: Scope = zone !== undefined ? { kind: 'zones', id: zone } : { kind: 'accounts', id: account! }
  const allowed: readonly DatasetScope[] = schema?.['x-scope'] ?? ['zone', 'account']
  const asked: DatasetScope = scope.kind === 'zones' ? 'zone' : 'account'
  if (dataset !== null && !allowed.includes(asked)) {
    const other = allowed.includes('zone') ? '--zone <zone id>' : '--account <account id>'
    throw new UsageError(`${dataset} is ${allowed.length === 1 ? (allowed[0] === 'zone' ? 'a zone' : 'an account') : 'a'} dataset: its jobs live under /${allowed[0]}s/{id}/logpush/jobs, use ${other}`)
  }
  return scope
}

/**
 * field_names: the names given, or every field our schema knows but the deprecated ones (Cloudflare
 * removes those in time, and a name it no longer knows makes job creation fail). Logpush has no
 * "all fields" value: every name must be listed (log-output-options.mdx).
 */
export function fieldNames(schema: DatasetSchema, fields: string | undefined): { names: string[], unknown: string[] } {
  if (fields === undefined) {
    return { names: Object.entries(schema.properties).filter(([, f]) => f.deprecated !== true).map(([name]) => name), unknown: [] }
  }
  const names = [...new Set(fields.split(',').map((f) => f.trim()).filter((f) => f !== ''))]
  if (names.length === 0) throw new UsageError('--fields needs at least one field name')
  return { names, unknown: names.filter((n) => schema.properties[n] === undefined) }
}

export interface CreateRequest {
  readonly dataset: string
  readonly destination_conf: string
  readonly name: string
  readonly enabled: boolean
  readonly output_options: { readonly output_type: 'ndjson', readonly field_names: readonly string[], readonly timestamp_format: TimestampFormat }
  readonly max_upload_bytes: number
  readonly max_upload_records: number
  ownership_challenge?: string
}

export function createRequest(o: { dataset: string, destination: string, name?: string, enabled: boolean, fieldNames: readonly string[], timestampFormat: TimestampFormat }): CreateRequest {
  return {
    dataset: o.dataset,
    destination_conf: o.destination,
    // Job names: letters, digits, '-' and '.' are safe everywhere Cloudflare shows them.
    name: o.name ?? `logpush-receiver-${o.dataset.replace(/_/g, '-')}`,
    enabled: o.enabled,
    // Only what this service reads: the default NDJSON framing (no prefixes, suffixes or template).
    output_options: { output_type: 'ndjson', field_names: o.fieldNames, timestamp_format: o.timestampFormat },
    max_upload_bytes: MAX_UPLOAD_BYTES,
    max_upload_records: MAX_UPLOAD_RECORDS
  }
}

/** destination_conf for this service: PUBLIC_URL/logpush/<dataset>?header_Authorization=Bearer%20<token>. */
export function serviceDestination(publicUrl: string, dataset: string, token: string): string {
  return destinationConf(publicUrl, dataset, token)
}

/** destination_conf with its secrets replaced by REDACTED, every other byte kept (one redactor, shared with the watchdog). */
export function redactConf(conf: string): string {
  return redactDestinationSecrets(conf)
}

/**
 * Whether Cloudflare asks for an ownership challenge before a job may push to this destination:
 * the table of logpush-ownership-challenge.mdx (S3, GCS, Azure, Sumo Logic yes; S3-compatible
 * with endpoint=, R2, HTTP, Datadog, Splunk, New Relic no).
 */
export function needsOwnership(conf: string): boolean {
  const scheme = conf.slice(0, Math.max(0, conf.indexOf(':'))).toLowerCase()
  if (scheme === 's3') return !/[?&]endpoint=/.test(conf)
  return scheme === 'gs' || scheme === 'azure' || scheme === 'sumo'
}

/** The bucket, key path and parameters of an s3:// destination_conf. */
export function parseS3Conf(conf: string): { bucket: string, path: string, params: URLSearchParams } {
  const rest = conf.slice('s3://'.length)
  const q = rest.indexOf('?')
  const loc = q < 0 ? rest : rest.slice(0, q)
  const slash = loc.indexOf('/')
  return {
    bucket: slash < 0 ? loc : loc.slice(0, slash),
    path: slash < 0 ? '' : loc.slice(slash + 1),
    params: new URLSearchParams(q < 0 ? '' : rest.slice(q + 1))
  }
}
