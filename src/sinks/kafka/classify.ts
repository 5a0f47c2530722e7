// What a KafkaJS error means for delivery, as pure functions over the protocol error types it
// carries (KafkaJS nests them: a retry error's cause, an aggregate's errors).

export type KafkaVerdict = 'too-large' | 'topic' | 'auth' | 'retry'

/** Every `type` (the protocol error name, e.g. MESSAGE_TOO_LARGE) and error class name in `err` and its causes. */
export function errorTypes (err: unknown, seen = new Set<unknown>()): string[] {
  if (err === null || typeof err !== 'object' || seen.has(err)) return []
  seen.add(err)
  const e = err as { type?: unknown, name?: unknown, cause?: unknown, originalError?: unknown, errors?: unknown }
  const out: string[] = []
  if (typeof e.type === 'string') out.push(e.type)
  if (typeof e.name === 'string') out.push(e.name)
  for (const inner of [e.cause, e.originalError, ...(Array.isArray(e.errors) ? e.errors : [])]) out.push(...errorTypes(inner, seen))
  return out
}

/**
 * too-large: the record batch is over the broker's message.max.bytes (or the topic's
 *            max.message.bytes): smaller sends may pass, one record alone is that record's fault.
 * topic:     the topic does not exist (auto-creation is off): an operator creates it.
 * auth:      SASL refused, or an ACL: an operator fixes credentials or ACLs.
 * retry:     the rest (a broker down or restarting, a leader moving, a timeout).
 */
export function verdictOf (types: readonly string[]): KafkaVerdict {
  if (types.includes('MESSAGE_TOO_LARGE') || types.includes('RECORD_LIST_TOO_LARGE')) return 'too-large'
  if (types.includes('UNKNOWN_TOPIC_OR_PARTITION') || types.includes('UNKNOWN_TOPIC_ID')) return 'topic'
  if (types.some((t) => t === 'KafkaJSSASLAuthenticationError' || t === 'SASL_AUTHENTICATION_FAILED' || t === 'TOPIC_AUTHORIZATION_FAILED' ||
    t === 'CLUSTER_AUTHORIZATION_FAILED' || t === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED' || t === 'ILLEGAL_SASL_STATE' || t === 'UNSUPPORTED_SASL_MECHANISM')) return 'auth'
  return 'retry'
}
