// What a failure while listing or reading a bucket means for what we do next: the sources'
// failure policy (../failure-policy.ts) applied to what S3 answers. A pure function, so the table
// of cases is tested without a bucket.
import { SourceAccessDenied, SourceLocalTrouble, SourceObjectGone, SourceThrottled, SourceUnavailable } from '../../errors.js'
import { isItemFault, isLocal, type FailureAction } from '../failure-policy.js'

export interface Failure {
  /** Stable LPR_ERR_* code for /health, /metrics and the log. */
  readonly code: string
  readonly message: string
  readonly action: FailureAction
  /** The object itself is bad (not gzip, not NDJSON, too large, gone): reading it again cannot help. */
  readonly permanent: boolean
  /** The store asked us to slow down (503 SlowDown, 429): back off the whole source. */
  readonly throttled: boolean
  /** Credentials or policy: shown in /health until it works. */
  readonly permission: boolean
  /** Our own trouble (line budget, spool disk, parse worker): the source pauses; the object is not charged. */
  readonly local: boolean
}

const THROTTLE_NAMES = new Set(['SlowDown', 'Throttling', 'ThrottlingException', 'TooManyRequests', 'TooManyRequestsException', 'RequestLimitExceeded', 'ServiceUnavailable'])
const PERMISSION_NAMES = new Set(['AccessDenied', 'InvalidAccessKeyId', 'SignatureDoesNotMatch', 'ExpiredToken', 'InvalidToken', 'AllAccessDisabled', 'CredentialsProviderError', 'Forbidden', 'Unauthorized'])
/** The object was deleted between the listing and the read: it is not there to read again. */
const GONE_NAMES = new Set(['NoSuchKey'])

function failure(code: string, message: string, action: FailureAction): Failure {
  return { code, message, action, permanent: action === 'fail-item', throttled: action === 'pause-throttled', permission: action === 'permission', local: action === 'pause-local' }
}

/** `doing` says what failed ("list s3://bucket/prefix", "read s3://bucket/key"). */
export function classify(err: unknown, doing: string): Failure {
  const e = err as { name?: string, code?: string, message?: string, $metadata?: { httpStatusCode?: number } }
  const message = e?.message ?? String(err)
  // Ours first: an errno or a code of ours is never the store's answer.
  if (isLocal(err)) {
    if (e.code!.startsWith('LPR_ERR_')) return failure(e.code!, message, 'pause-local')
    const x = new SourceLocalTrouble(e.code!, message)
    return failure(x.code, x.message, 'pause-local')
  }
  if (isItemFault(err)) return failure(e.code!, message, 'fail-item')
  const status = e?.$metadata?.httpStatusCode
  const name = e?.name ?? ''
  if (GONE_NAMES.has(name)) {
    const x = new SourceObjectGone(doing)
    return failure(x.code, x.message, 'fail-item')
  }
  if (THROTTLE_NAMES.has(name) || status === 503 || status === 429) {
    const x = new SourceThrottled(name || String(status))
    return failure(x.code, x.message, 'pause-throttled')
  }
  if (PERMISSION_NAMES.has(name) || status === 403 || status === 401) {
    const x = new SourceAccessDenied(doing, name || String(status))
    return failure(x.code, x.message, 'permission')
  }
  const x = new SourceUnavailable(doing, `${name && name !== 'Error' ? name + ': ' : ''}${message}`)
  return failure(x.code, x.message, 'retry-item')
}
