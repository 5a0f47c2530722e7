// The one failure policy of every source (bucket sources and pull collectors): what a failure
// means for the item being read (an object, a window) and for the source as a whole, how long the
// source waits, and how far a peer's Retry-After is believed. A pure module: the table of cases is
// tested without a bucket or an API.
//
// The rule: only what an item itself is (not gzip, not NDJSON, too large, gone) may fail it.
// Our own trouble (the shared line budget full, the spool's disk full or failing, a parse worker
// that died, the spool refusing) pauses the whole source with backoff and never counts against
// the item: the item is read again once the trouble passes. A peer asking us to slow down (429,
// 503 SlowDown) pauses the source too, for its Retry-After when it gives one, never longer than
// the cap. What the peer answers for one item that may pass (5xx, a dropped connection) is retried;
// a source that can fail items (a bucket) counts those attempts, one that cannot (a collector: a
// window failed would be time skipped) retries for ever with backoff.

/** What a failure means for what the source does next. */
export type FailureAction =
  /** The item itself is bad: reading it again cannot help. */
  | 'fail-item'
  /** The peer failed this item for a reason that may pass: read it again later (counts an attempt). */
  | 'retry-item'
  /** Our own trouble: the whole source waits with backoff; no attempt is counted. */
  | 'pause-local'
  /** The peer asked us to slow down: the whole source waits; no attempt is counted. */
  | 'pause-throttled'
  /** Credentials or policy refused: shown until it works. */
  | 'permission'

/** Errno codes of our own disk or process (never a peer's): ENOSPC/EIO on the spool and the like. */
const LOCAL_ERRNO = new Set(['ENOSPC', 'EIO', 'EDQUOT', 'EROFS', 'EMFILE', 'ENFILE', 'ENOMEM', 'EBADF', 'EACCES', 'EPERM', 'ENOENT', 'ENOTDIR', 'EISDIR', 'EEXIST'])
/** Our coded conditions that say nothing of the item. */
const LOCAL_CODES = new Set([
  'LPR_ERR_PIPELINE_LINES_BUSY',
  'LPR_ERR_PIPELINE_WORKER_GONE',
  'LPR_ERR_INTAKE_NOT_READY',
  'LPR_ERR_SPOOL_STATE_UNREADABLE',
  'LPR_ERR_SPOOL_DISK_UNKNOWN'
])
/** Our coded verdicts on an item's content. */
const ITEM_CODES = new Set(['LPR_ERR_SOURCE_BAD_GZIP', 'LPR_ERR_SOURCE_INFLATED_TOO_LARGE', 'LPR_ERR_PIPELINE_NOT_NDJSON', 'LPR_ERR_PIPELINE_LINE_TOO_LONG', 'LPR_ERR_SOURCE_OBJECT_GONE'])

/** Whether a failure is our own local trouble (budget, spool disk, parse worker), never the item's. */
export function isLocal(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  if (typeof code !== 'string') return false
  return LOCAL_CODES.has(code) || LOCAL_ERRNO.has(code)
}

/** Whether a failure is a verdict on the item's own content. */
export function isItemFault(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code
  return typeof code === 'string' && ITEM_CODES.has(code)
}

/**
 * The wait before the next try after `failures` failures in a row: base doubled per failure,
 * never above cap. A Retry-After the peer sent wins, up to `retryAfterMaxMs`: a peer cannot park
 * a source for a day with one header.
 */
export function backoffMs(failures: number, o: { baseMs: number, capMs: number, retryAfterMs?: number | null, retryAfterMaxMs: number }): number {
  if (o.retryAfterMs != null && o.retryAfterMs > 0) return Math.min(o.retryAfterMs, o.retryAfterMaxMs)
  if (failures <= 0) return 0
  return Math.min(o.capMs, o.baseMs * 2 ** Math.min(failures - 1, 30))
}

/**
 * A Retry-After, in ms, from an error that carries one (Cloudflare's API errors: `retryAfter` or
 * headers) or from the header's text; whole seconds only (an HTTP date, or anything else, is
 * taken as absent). Null when there is none.
 */
export function retryAfterMs(errOrHeader: unknown): number | null {
  let v: unknown = errOrHeader
  if (errOrHeader !== null && typeof errOrHeader === 'object' && !Array.isArray(errOrHeader)) {
    const e = errOrHeader as { headers?: unknown, retryAfter?: unknown }
    v = e.retryAfter
    const h = e.headers as { get?: (n: string) => string | null } & Record<string, unknown> | undefined
    if (v == null && h) v = typeof h.get === 'function' ? h.get('retry-after') : h['retry-after']
  }
  if (Array.isArray(v)) v = v[0]
  // Whole seconds only, as HTTP defines it (RFC 9110 10.2.3: 1*DIGIT): a fraction ("0.001"), an
  // exponent, hex or a sign is no Retry-After, so the backoff applies; believing "0.001" let a
  // peer make a source that retries for ever try again every millisecond.
  const text = typeof v === 'number' ? String(v) : typeof v === 'string' ? v.trim() : ''
  if (!/^\d+$/.test(text)) return null
  const s = Number(text)
  return s > 0 ? s * 1000 : null
}
