/** Exponential backoff with jitter, shared by the destinations: 2^attempt x base, capped, times 0.5-1. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 5000, random = Math.random): number {
  return Math.round(Math.min(capMs, baseMs * 2 ** attempt) * (0.5 + random() / 2))
}

/**
 * A request of one event answered 413, after halving a larger request down to it. The event is
 * over the destination's size limit and refused for good (dead-letter it, deliver the others),
 * unless the evidence says the limit is not about this event's size:
 *   - the destination took a body at least as large before (`largestAccepted`): the limit was
 *     lowered since (a proxy's), and every event would be refused one by one;
 *   - it took nothing at all, though the request held other events (`alone` false): a limit
 *     smaller than any event is a setting to fix, not bad data.
 * Both stop delivery instead, the events staying spooled. `largestAccepted` counts bodies this
 * destination took since the process started, this request's other halves included.
 */
export function oneTooLarge(bodyBytes: number, largestAccepted: number, alone: boolean): 'reject' | 'stop' {
  if (largestAccepted >= bodyBytes) return 'stop'
  if (largestAccepted === 0 && !alone) return 'stop'
  return 'reject'
}
