// What the keys of a Logpush bucket mean to us: UTC days as YYYYMMDD, the {DATE} prefix, and the
// ownership-challenge file. Cloudflare does not document the object names beyond {DATE}; the
// part after the date folder is treated as opaque.

const DAY_MS = 86_400_000

/** The UTC day of a time, as Logpush writes it in {DATE}. */
export function dayOf(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10).replace(/-/g, '')
}

/** Start of a YYYYMMDD day, ms since the epoch (UTC). */
export function dayStart(day: string): number {
  return Date.UTC(Number(day.slice(0, 4)), Number(day.slice(4, 6)) - 1, Number(day.slice(6, 8)))
}

export function addDays(day: string, n: number): string {
  return dayOf(dayStart(day) + n * DAY_MS)
}

/** The days after `after` up to and including `last`, oldest first. */
export function daysBetween(after: string, last: string): string[] {
  const out: string[] = []
  for (let d = addDays(after, 1); d <= last; d = addDays(d, 1)) out.push(d)
  return out
}

/** When a day's prefix closes: `closeAfterHours` after the day ended. */
export function closesAt(day: string, closeAfterHours: number): number {
  return dayStart(day) + DAY_MS + closeAfterHours * 3_600_000
}

/** The listing prefix of one day. */
export function datePrefix(prefix: string, day: string): string {
  return prefix.replace('{DATE}', day)
}

/**
 * Where Logpush puts the ownership challenge: in the destination path, i.e. the folder part of
 * the prefix before {DATE} (and, to be safe, any file of that name inside a date folder too).
 */
export function challengePrefix(prefix: string): string {
  const fixed = prefix.slice(0, prefix.indexOf('{DATE}'))
  return fixed.slice(0, fixed.lastIndexOf('/') + 1) + 'ownership-challenge'
}

const CHALLENGE = /(^|\/)ownership-challenge[^/]*\.txt$/

/** The ownership-challenge file (ownership-challenge.txt, ownership-challenge-<hex>.txt): not a log. */
export function isChallenge(key: string): boolean {
  return CHALLENGE.test(key)
}

/** S3 returns ETags in quotes; R2 and others sometimes not. The identity is the bare value. */
export function bareEtag(etag: string | undefined): string {
  return (etag ?? '').replace(/^W\//, '').replace(/^"|"$/g, '')
}
