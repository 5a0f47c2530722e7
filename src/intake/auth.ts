import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { IncomingHttpHeaders } from 'node:http'
import { IntakeTokenInvalid, IntakeTokenMissing } from '../errors.js'

const digest = (s: string): Buffer => createHash('sha256').update(s).digest()

/**
 * The shared secrets a sender may present. Comparing SHA-256 digests makes every comparison the
 * same length, and every token is compared, so timing tells nothing about which or how much matched.
 */
export class TokenSet {
  private readonly digests: Buffer[]

  constructor (tokens: readonly string[]) {
    if (tokens.length === 0) throw new Error('at least one token is required')
    this.digests = tokens.map(digest)
  }

  has(candidate: string): boolean {
    const d = digest(candidate)
    let found = false
    for (const t of this.digests) found = timingSafeEqual(t, d) || found
    return found
  }
}

const SCHEME = /^(?:bearer|splunk)\s+(.+)$/i

/** Authorization: Bearer|Splunk <token>, or the whole value of the configured extra header. */
export function presentedToken(headers: IncomingHttpHeaders, extraHeader: string): string | undefined {
  const auth = headers.authorization
  if (typeof auth === 'string') {
    const m = SCHEME.exec(auth.trim())
    if (m?.[1]) return m[1].trim()
  }
  if (extraHeader) {
    const v = headers[extraHeader.toLowerCase()]
    if (typeof v === 'string' && v.trim() !== '') return v.trim()
  }
  return undefined
}

export function checkToken(tokens: TokenSet, headers: IncomingHttpHeaders, extraHeader: string): void {
  const token = presentedToken(headers, extraHeader)
  if (token === undefined) throw new IntakeTokenMissing()
  if (!tokens.has(token)) throw new IntakeTokenInvalid()
}

export function parseTokens(list: string): string[] {
  return list.split(',').map((t) => t.trim()).filter((t) => t !== '')
}

/**
 * The tokens the service accepts, as it reads them: LOGPUSH_TOKENS, else DATA_DIR/token; none
 * when neither has one (the CLI reads them this way and never creates the file).
 */
export async function readTokens(configured: string, dataDir: string): Promise<{ tokens: string[], path: string | null }> {
  const tokens = parseTokens(configured)
  if (tokens.length > 0) return { tokens, path: null }
  const path = join(dataDir, 'token')
  try {
    return { tokens: parseTokens((await readFile(path, 'utf8')).replace(/\n/g, ',')), path }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
    return { tokens: [], path }
  }
}

/**
 * With no token configured, the first start makes one and keeps it (0600) in the data directory,
 * so that a fresh install is never an open endpoint and a restart keeps the job's token valid.
 */
export async function ensureTokens(configured: string, dataDir: string): Promise<{ tokens: string[], generated: boolean, path: string | null }> {
  const found = await readTokens(configured, dataDir)
  if (found.tokens.length > 0) return { ...found, generated: false }
  const path = join(dataDir, 'token')
  await mkdir(dataDir, { recursive: true })
  const token = newToken()
  await writeFile(path, token + '\n', { mode: 0o600, flag: 'wx' })
  return { tokens: [token], generated: true, path }
}

/** A new shared secret: 256 random bits, base64url (nothing to URL-encode in destination_conf). */
export function newToken(): string {
  return randomBytes(32).toString('base64url')
}

export function destinationConf(publicUrl: string, dataset: string, token: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/logpush/${dataset}?header_Authorization=${encodeURIComponent(`Bearer ${token}`)}`
}

/** The Cloudflare API path that creates Logpush jobs for a dataset of these scopes. */
export function logpushJobsPath(scopes: readonly string[] = ['zone']): string {
  const paths = scopes.map((s) => s === 'account' ? '/accounts/{account_id}/logpush/jobs' : '/zones/{zone_id}/logpush/jobs')
  return `POST ${paths.join(' or ')}`
}

/** One start-up hint per dataset: where its job is created, and the destination_conf to paste. */
export function destinationConfHints(publicUrl: string, datasets: Iterable<readonly [string, readonly string[] | undefined]>, token: string): string[] {
  return [...datasets].map(([d, scopes]) => `  ${d} (${logpushJobsPath(scopes)}): ${destinationConf(publicUrl, d, token)}`)
}
