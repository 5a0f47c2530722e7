// Retry decisions as pure functions, so they can be tested with a table and no server.

export type ItemVerdict = 'created' | 'duplicate' | 'retry' | 'reject'

/**
 * One _bulk item. 409 on `create` means a document with this _id is already stored: the line was
 * delivered before (a re-sent batch, or our own retry), which is success, as libbeat counts it.
 * 429 and 5xx are the node being busy or failing: retry. Any other 4xx (mapping and parse errors)
 * will fail the same way every time: the line goes to the dead-letter store.
 */
export function classifyItem(status: number): ItemVerdict {
  if (status >= 200 && status < 300) return 'created'
  if (status === 409) return 'duplicate'
  if (status === 429 || status >= 500) return 'retry'
  return 'reject'
}

export type RequestVerdict = 'retry' | 'split' | 'fail'

/**
 * A whole _bulk request that failed. 413 means the body is over http.max_content_length: the
 * same body would fail forever, half of it may not. 429/502/503/504 and connection failures are
 * passing; everything else (401, 403, 400 on the request itself) needs an operator.
 */
export function classifyRequest(status: number | undefined): RequestVerdict {
  if (status === undefined) return 'retry'
  if (status === 413) return 'split'
  if (status === 429 || status === 502 || status === 503 || status === 504 || status === 500) return 'retry'
  return 'fail'
}

// Shared by every destination.
export { backoffMs } from '../retry.js'
