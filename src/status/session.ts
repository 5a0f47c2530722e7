// Who may see the status page: the holder of STATUS_TOKEN (or, without one, of a Logpush token), through
// "Authorization: Bearer <token>" or the cookie the login form sets. The cookie does not hold the
// token: it holds an expiry and an HMAC of it keyed by a digest of the token, so it is valid on
// every replica with the same tokens, and removing a token from the configuration ends its sessions.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto'

export const COOKIE = 'lpr_status'
export const SESSION_SECONDS = 12 * 3600

export class StatusAccess {
  private readonly keys: Buffer[]
  private readonly digests: Buffer[]

  constructor (tokens: readonly string[]) {
    const unique = [...new Set(tokens.filter((t) => t !== ''))]
    if (unique.length === 0) throw new Error('the status page needs at least one token')
    this.keys = unique.map((t) => createHash('sha256').update(`lpr-status-session\0${t}`).digest())
    this.digests = unique.map((t) => createHash('sha256').update(t).digest())
  }

  /** Compares digests, every one of them, so timing tells nothing about which or how much matched. */
  tokenValid(candidate: string): boolean {
    const d = createHash('sha256').update(candidate).digest()
    let found = false
    for (const t of this.digests) found = timingSafeEqual(t, d) || found
    return found
  }

  /** A session cookie value for whoever just presented a valid token. */
  issue(token: string, now = Date.now()): string {
    const exp = String(Math.floor(now / 1000) + SESSION_SECONDS)
    const key = createHash('sha256').update(`lpr-status-session\0${token}`).digest()
    return `${exp}.${createHmac('sha256', key).update(exp).digest('base64url')}`
  }

  sessionValid(value: string, now = Date.now()): boolean {
    const m = /^(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value)
    if (!m || Number(m[1]) * 1000 < now) return false
    const mac = Buffer.from(m[2]!, 'base64url')
    let found = false
    for (const key of this.keys) found = timingSafeEqual(createHmac('sha256', key).update(m[1]!).digest(), mac) || found
    return found
  }

  /** Bearer token in Authorization, or a valid session cookie. */
  allows(headers: { authorization?: string, cookie?: string }): boolean {
    const auth = /^bearer\s+(.+)$/i.exec(headers.authorization?.trim() ?? '')
    if (auth?.[1] && this.tokenValid(auth[1].trim())) return true
    const cookie = readCookie(headers.cookie ?? '', COOKIE)
    return cookie !== undefined && this.sessionValid(cookie)
  }
}

export function readCookie(header: string, name: string): string | undefined {
  for (const part of header.split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}
