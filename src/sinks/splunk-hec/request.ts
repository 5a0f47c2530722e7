// A Cloudflare line becomes a HEC envelope by text: the line is spliced in as `event`, never
// parsed and re-serialised, so an unixnano integer above 2^53 reaches Splunk with all 19 digits.
import { promisify } from 'node:util'
import { gzip as gzipCb } from 'node:zlib'
import { epochSeconds, eventTime } from '../event-time.js'

const gzip = promisify(gzipCb)

export interface EnvelopeFields {
  /** '' leaves the field out (Splunk then uses the token's or the input's default). */
  readonly host: string
  readonly source: string
  readonly sourcetype: string
  readonly index: string
}

/** The metadata every envelope of one dataset shares, as text ending in a comma; made once per batch. */
export function envelopeMeta(fields: EnvelopeFields): string {
  let meta = ''
  for (const key of ['host', 'source', 'sourcetype', 'index'] as const) {
    if (fields[key] !== '') meta += `"${key}":${JSON.stringify(fields[key])},`
  }
  return meta
}

/**
 * `{"time":<epoch seconds>,<meta>"event":<line>}`; `time` is left out when the line has no event
 * time, and Splunk then stamps the event when it indexes it.
 */
export function envelope(line: string, meta: string, timeField: string | undefined): string {
  let record: unknown
  try {
    record = JSON.parse(line)
  } catch {
    // The spool holds validated JSON only, but spliced text that is not JSON would run into the
    // next envelope and corrupt it: such a line goes as a string instead, its bytes intact.
    return `{${meta}"event":${JSON.stringify(line)}}`
  }
  const iso = timeField !== undefined && typeof record === 'object' && record !== null && !Array.isArray(record)
    ? eventTime(line, record as Record<string, unknown>, timeField)
    : undefined
  return `{${iso === undefined ? '' : `"time":${epochSeconds(iso)},`}${meta}"event":${line}}`
}

/** One /services/collector/event body: envelopes one after another, newline-separated, no array. */
export async function requestBody(envelopes: readonly string[], compress: boolean): Promise<Buffer> {
  const body = Buffer.from(envelopes.join('\n'), 'utf8')
  return compress ? await gzip(body) : body
}
