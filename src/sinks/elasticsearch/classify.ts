// Retry decisions as pure functions, so they can be tested with a table and no server.
//
// The question for every failure is whose fault it is. The document's (a mapping or parse
// error): the same line fails the same way every time, so it goes to the dead-letter store and
// the others go on. Ours or the cluster's (credentials, privileges, a missing or closed data
// stream, a read-only or flood-stage block): every line of the stream would fail the same way,
// and dead-lettering them would empty the stream into dead letters over a missing permission, so
// delivery stops, the lines stay spooled and are retried with backoff until an operator fixes it.
// Passing trouble (429, 5xx, no answer): retry.

/**
 * created:   stored.
 * duplicate: 409 on `create` (version_conflict_engine_exception): a document with this _id is
 *            stored already (a re-sent batch, or our own retry), which libbeat counts as success.
 * retry:     the node is busy or failing (429 es_rejected_execution_exception, 5xx).
 * reject:    the document itself is refused for good: dead-letter it.
 * stop:      not the document's fault (credentials, privileges, the data stream, a cluster
 *            block): stop delivering, keep the lines spooled, tell the operator.
 */
export type ItemVerdict = 'created' | 'duplicate' | 'retry' | 'reject' | 'stop'

/** Why delivery stopped: our credentials and privileges, or the cluster and its indices. */
export type StopCause = 'credentials' | 'cluster'

/**
 * Item error types that say nothing about the document. Elasticsearch reports a missing
 * privilege per item as 403 security_exception; a read-only index or the flood-stage watermark
 * as 403 cluster_block_exception (index.blocks.read_only_allow_delete); a data stream that does
 * not exist and may not be created (action.auto_create_index, no matching template, no
 * create_index privilege) as 404 index_not_found_exception; a closed backing index as 400
 * index_closed_exception; a namespace that is not a valid index name as 400
 * invalid_index_name_exception.
 */
const NOT_THE_DOCUMENT: Readonly<Record<string, StopCause>> = {
  security_exception: 'credentials',
  cluster_block_exception: 'cluster',
  index_not_found_exception: 'cluster',
  index_closed_exception: 'cluster',
  invalid_index_name_exception: 'cluster',
  // An ingest pipeline named in index.default_pipeline that does not exist.
  resource_not_found_exception: 'cluster'
}

/** One _bulk item: its status and, when it failed, error.type. */
export function classifyItem(status: number, errorType?: string): ItemVerdict {
  if (status >= 200 && status < 300) return 'created'
  // Passing whatever the type: a 503 cluster_block_exception is "no master" or "state not
  // recovered", which a node gets over by itself.
  if (status === 429 || status >= 500) return 'retry'
  if (errorType !== undefined && errorType in NOT_THE_DOCUMENT) return 'stop'
  if (status === 409) return errorType === undefined || errorType === 'version_conflict_engine_exception' ? 'duplicate' : 'retry'
  // Whatever the type, these statuses are about who we are and what we may touch.
  if (status === 401 || status === 403 || status === 404) return 'stop'
  // 400 and the rest: mapper_parsing_exception, document_parsing_exception,
  // strict_dynamic_mapping_exception, illegal_argument_exception (a value the mapping refuses,
  // an immense term, too many fields): the document's.
  return 'reject'
}

/** For a 'stop': what to tell the operator about. */
export function stopCause(status: number, errorType?: string): StopCause {
  if (errorType !== undefined && errorType in NOT_THE_DOCUMENT) return NOT_THE_DOCUMENT[errorType]!
  return status === 401 || status === 403 ? 'credentials' : 'cluster'
}

export type RequestVerdict = 'retry' | 'split' | 'bisect' | 'stop'

/**
 * A whole _bulk request that failed. 413 means the body is over http.max_content_length: the
 * same body would fail forever, half of it may not (and one document alone over the limit is
 * that document's fault). A 400 with Elasticsearch's own error object (`illegal_argument_exception:
 * Malformed action/metadata line [3]`, `x_content_parse_exception`, ...) means it parsed the body
 * and refused what it holds: halves are sent to find the document responsible (bisect). Whether
 * that document, alone, is to blame is decided by the sink, which knows whether Elasticsearch
 * takes our requests at all. 429/500/502/503/504 and connection failures are passing; everything
 * else (401, 403 including a cluster-wide read-only block, 404 of a wrong URL, a 400 without
 * Elasticsearch's error object: a proxy, "no handler found for uri") needs an operator.
 */
export function classifyRequest(status: number | undefined, errorType?: string): RequestVerdict {
  if (status === undefined) return 'retry'
  if (status === 413) return 'split'
  if (status === 429 || status === 502 || status === 503 || status === 504 || status === 500) return 'retry'
  if (status === 400 && errorType !== undefined && !(errorType in NOT_THE_DOCUMENT)) return 'bisect'
  return 'stop'
}

// Shared by every destination.
export { backoffMs, oneTooLarge } from '../retry.js'
