/** Exponential backoff with jitter, shared by the destinations: 2^attempt x base, capped, times 0.5-1. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 5000, random = Math.random): number {
  return Math.round(Math.min(capMs, baseMs * 2 ** attempt) * (0.5 + random() / 2))
}
