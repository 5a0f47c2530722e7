// What a failure while listing or reading a bucket means for what we do next: a pure function,
// so the table of cases is tested without a bucket.
import { SourceAccessDenied, SourceThrottled, SourceUnavailable } from '../../errors.js'

export interface Failure {
  /** Stable LPR_ERR_* code for /health, /metrics and the log. */
  readonly code: string
  readonly message: string
  /** The object itself is bad (not gzip, not NDJSON, too large): reading it again cannot help. */
  readonly permanent: boolean
  /** The store asked us to slow down (503 SlowDown, 429): back off the whole source. */
  readonly throttled: boolean
  /** Credentials or policy: shown in /health until it works. */
  readonly permission: boolean
}

const THROTTLE_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable'])
const PERMISSION_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled', 'CredentialsProviderError', 'Forbidden', 'Unauthorized'])
const PERMANENT_CODES = new Set(['LPR_ERR_SOURCE_BAD_GZIP', 'LPR_ERR_SOURCE_INFLATED_TOO_LARGE', 'LPR_ERR_PIPELINE_NOT_NDJSON', 'LPR_ERR_PIPELINE_LINE_TOO_LONG'])

/** `doing` says what failed ("list s3://bucket/prefix", "read s3://bucket/key"). */
export function classify(err: unknown, doing: string): Failure {
  const e = err as { name?: string, code?: string, message?: string, $metadata?: { httpStatusCode?: number } }
  const message = e?.message ?? String(err)
  if (typeof e?.code === 'string' && PERMANENT_CODES.has(e.code)) {
    return { code: e.code, message, permanent: true, throttled: false, permission: false }
  }
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name ?? ''
  if (THROTTLE_NAMES.has(name) || status === 503 || status === 429) {
    const x = new SourceThrottled(name || String(status))
    return { code: x.code, message: x.message, permanent: false, throttled: true, permission: false }
  }
  if (PERMISSION_NAMES.has(name) || status === 403 || status === 401) {
    const x = new SourceAccessDenied(doing, name || String(status))
    return { code: x.code, message: x.message, permanent: false, throttled: false, permission: true }
  }
  const x = new SourceUnavailable(doing, `${name && name !== 'Error' ? name + ': ' : ''}${message}`)
  return { code: x.code, message: x.message, permanent: false, throttled: false, permission: false }
}
