// What to do with a HEC answer, as pure functions: tested with a table, no server, no timers.
// Codes and statuses follow Splunk's "Possible error codes" table (research/sinks.md B3).

/** A HEC answer body as parsed; anything may be missing when a proxy answered instead of Splunk. */
export type HecAnswer = Readonly<Record<string, unknown>>

/**
 * ok:      every event of the request is in (with ack on: once its ackId reads true).
 * retry:   Splunk is busy or failing, or no answer came: back off and send again whatever is not in.
 * partial: the event at `indexed` is refused for good (its data is bad); the ones before it are in,
 *          the ones after it were not looked at: dead-letter it and send the rest at once.
 * split:   413: the body is over max_content_length (or a proxy's limit); halves may pass.
 * fail:    an operator problem (token, index, channel, URL): the same request fails every time,
 *          and it is not the data's fault, so nothing is dead-lettered.
 */
export type Verdict = 'ok' | 'retry' | 'partial' | 'split' | 'fail'

export interface Classified {
  readonly verdict: Verdict
  /** How many events at the front of the request Splunk took (all of them on 'ok'). */
  readonly indexed: number
}

/**
 * HEC codes that no event can cause: the token (1-4, 21, 22), the index it may write to (7), the
 * channel (10, 11), ack or query-string settings (14, 16). Code 7 comes with an
 * invalid-event-number, but every event of a batch names the same index, so dead-lettering would
 * refuse the whole dataset one event per round trip; failing leaves it spooled until the index
 * setting or the token's allowed indexes are fixed.
 */
const OPERATOR_CODES = new Set([1, 2, 3, 4, 7, 10, 11, 14, 16, 21, 22])

/**
 * `status` is undefined when no answer came (connection refused or reset, timeout). `sent` is the
 * number of events in the request, to check `invalid-event-number` against.
 */
export function classify(status: number | undefined, answer: HecAnswer | undefined, sent: number): Classified {
  if (status === undefined) return { verdict: 'retry', indexed: 0 }
  const code = answer?.code
  // A 200 that is not HEC's {"code":0} (a proxy's page, say) must not count as delivered.
  if (status >= 200 && status < 300) return { verdict: code === 0 ? 'ok' : 'fail', indexed: code === 0 ? sent : 0 }
  if (status === 413) return { verdict: 'split', indexed: 0 }
  // Splunk reports how far it got on busy answers too (503 code 9 after partial indexing), and
  // on a 400 the events before the bad one are indexed: never send those again.
  const n = answer?.['invalid-event-number']
  const named = typeof n === 'number' && Number.isInteger(n) && n >= 0 ? n : undefined
  // A busy answer may name n = sent: Splunk took everything before it gave up.
  if (status === 408 || status === 429 || (status >= 500 && status !== 501)) return { verdict: 'retry', indexed: named !== undefined && named <= sent ? named : 0 }
  // On a refusal the event at n is the refused one, so it must be one of those sent.
  const refused = named !== undefined && named < sent ? named : undefined
  if (typeof code === 'number' && OPERATOR_CODES.has(code)) return { verdict: 'fail', indexed: refused ?? 0 }
  if (status === 400 && refused !== undefined) return { verdict: 'partial', indexed: refused }
  return { verdict: 'fail', indexed: 0 }
}

/** What an operator should check when a request fails for good. */
export function failureHint(status: number, code: unknown): string {
  if (code === 1 || code === 22) return 'the HEC token is disabled: enable it in Splunk'
  if (status === 401 || status === 403 || code === 4 || code === 21) return 'Splunk does not accept the HEC token: check the token setting'
  if (code === 7) return 'the index is not one this token may write to: check the index settings and the token\'s allowed indexes'
  if (code === 10 || code === 11 || code === 14) return 'the token\'s indexer acknowledgement setting and the sink\'s ack setting disagree'
  if (status === 404) return 'no HEC at this URL: give the base URL (e.g. https://splunk:8088) without /services/collector'
  if (status >= 200 && status < 300) return 'the answer is not from HEC (a proxy?)'
  return 'see Splunk\'s HEC error codes'
}

// Shared by every destination.
export { backoffMs, oneTooLarge } from '../retry.js'
