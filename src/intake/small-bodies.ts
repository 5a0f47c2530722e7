// Logpush sends bodies that are not log batches: the validation upload when a job is created or
// updated, and (by analogy with Sumo Logic, undocumented for https://) an ownership-challenge
// token. Neither may be ingested, and the validation upload must get a 200.

export type SmallBody = { kind: 'validation' } | { kind: 'challenge', token: string } | null

// A JWT: three base64url parts. Cloudflare's ownership challenge token is one.
const JWT = /^[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$/

/**
 * The validation upload has changed shape over time: `test` (OTel receiver), `{"content":"tests"}`
 * (Cloudflare's docs), `{"content":"test","filename":"test.txt"}` (community Workers). Accept any
 * JSON object whose keys are only content/filename with string values, and the bare words.
 */
export function classifySmallBody(body: Buffer): SmallBody {
  const text = body.toString('utf8').trim()
  if (text === 'test' || text === 'tests') return { kind: 'validation' }
  if (JWT.test(text)) return { kind: 'challenge', token: text }
  if (!text.startsWith('{')) return null
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return null
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return null
  const entries = Object.entries(value)
  if (entries.length === 0 || !entries.every(([k, v]) => (k === 'content' || k === 'filename') && typeof v === 'string')) return null
  const content = (value as { content?: string }).content?.trim() ?? ''
  if (JWT.test(content)) return { kind: 'challenge', token: content }
  return { kind: 'validation' }
}

export interface Challenge {
  readonly dataset: string
  readonly receivedAt: string
  readonly requestId: string
  readonly token: string
}

/** The last few challenge bodies, for the operator to paste into the job's ownership_challenge. */
export class ChallengeLog {
  private readonly items: Challenge[] = []
  constructor (private readonly keep: number) {}

  add(c: Challenge): void {
    this.items.push(c)
    while (this.items.length > this.keep) this.items.shift()
  }

  list(): readonly Challenge[] {
    return [...this.items].reverse()
  }
}
