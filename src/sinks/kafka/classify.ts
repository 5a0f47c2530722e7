// What a @platformatic/kafka error means for delivery, as pure functions over the protocol error
// ids it carries (it nests them: a response error's `errors`, a retry's `cause`). A ProtocolError's
// `apiId` is the protocol error name (MESSAGE_TOO_LARGE); `code` is the library's (PLT_KFK_*).

export type KafkaVerdict = 'too-large' | 'topic' | 'auth' | 'tls' | 'retry'

/** Every `apiId` (the protocol error name, e.g. MESSAGE_TOO_LARGE), library `code` and error class name in `err` and its causes. */
export function errorTypes (err: unknown, seen = new Set<unknown>()): string[] {
  if (err === null || typeof err !== 'object' || seen.has(err)) return []
  seen.add(err)
  const e = err as { apiId?: unknown, code?: unknown, name?: unknown, message?: unknown, cause?: unknown, errors?: unknown }
  const out: string[] = []
  // A metadata request for a missing topic comes back as a UserError "Unknown topic <name>." with
  // the protocol error (UNKNOWN_TOPIC_OR_PARTITION, code 3) dropped: it is that error.
  if (e.code === 'PLT_KFK_USER' && typeof e.message === 'string' && e.message.startsWith('Unknown topic ')) out.push('UNKNOWN_TOPIC_OR_PARTITION')
  if (typeof e.apiId === 'string') out.push(e.apiId)
  if (typeof e.code === 'string') out.push(e.code)
  if (typeof e.name === 'string') out.push(e.name)
  for (const inner of [e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) out.push(...errorTypes(inner, seen))
  return out
}

/**
 * too-large: the record batch is over the broker's message.max.bytes (or the topic's
 *            max.message.bytes): smaller sends may pass, one record alone is that record's fault.
 * topic:     the topic does not exist (auto-creation is off): an operator creates it.
 * auth:      SASL refused, or an ACL: an operator fixes credentials or ACLs.
 * tls:       the broker's certificate is not one we trust (not signed by KAFKA_CA_FILE's CA, for
 *            another host, expired): an operator fixes the CA file or the broker names. Retrying
 *            cannot make it pass, so it is a stop, not a retry loop.
 * retry:     the rest (a broker down or restarting, a leader moving, a timeout).
 */
export function verdictOf (types: readonly string[]): KafkaVerdict {
  if (types.includes('MESSAGE_TOO_LARGE') || types.includes('RECORD_LIST_TOO_LARGE')) return 'too-large'
  if (types.includes('UNKNOWN_TOPIC_OR_PARTITION') || types.includes('UNKNOWN_TOPIC_ID')) return 'topic'
  if (types.some((t) => t === 'PLT_KFK_AUTHENTICATION' || t === 'SASL_AUTHENTICATION_FAILED' || t === 'TOPIC_AUTHORIZATION_FAILED' ||
    t === 'CLUSTER_AUTHORIZATION_FAILED' || t === 'TRANSACTIONAL_ID_AUTHORIZATION_FAILED' || t === 'ILLEGAL_SASL_STATE' || t === 'UNSUPPORTED_SASL_MECHANISM')) return 'auth'
  if (certificateRefusal(types) !== undefined) return 'tls'
  return 'retry'
}

/** The code of Node's refusal of the broker's certificate among `types`, if it is there. */
export function certificateRefusal (types: readonly string[]): string | undefined {
  return types.find((t) => CERTIFICATE_REFUSED.has(t))
}

/** Node's codes (OpenSSL's verify results and its own host check) for a certificate it refused. */
const CERTIFICATE_REFUSED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY', 'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE', 'CERT_NOT_YET_VALID', 'CERT_HAS_EXPIRED', 'CERT_UNTRUSTED', 'CERT_REJECTED',
  'INVALID_CA', 'HOSTNAME_MISMATCH', 'ERR_TLS_CERT_ALTNAME_INVALID'
])
