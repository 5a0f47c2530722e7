// How this service talks to Cloudflare's API v4: which credentials, which base URL, and what an
// API error says. A leaf: the pull collectors (sources), the watchdog and the CLI all use it.
//
// The official SDK (`cloudflare` on npm) makes the calls it covers (jobs, ownership, validation,
// audit logs). Logpull's gzip NDJSON stream and GraphQL analytics do not fit it; those use
// apiFetch below, with the same credentials, base URL and error shape.
import { readFileSync } from 'node:fs'
import { setTimeout as sleep } from 'node:timers/promises'
import Cloudflare, { APIError } from 'cloudflare'
import { CloudflareApiFailed, ConfigInvalid } from '../errors.js'

export type CloudflareCredentials =
  | { readonly kind: 'token', readonly token: string }
  | { readonly kind: 'key', readonly email: string, readonly key: string }

/**
 * Where credentials come from in CONFIG_FILE: names of environment variables or of files (a
 * mounted secret); never the secret itself, so the file can be shared and logged.
 */
export interface CredentialSpec {
  readonly tokenEnv?: string
  readonly tokenFile?: string
  readonly emailEnv?: string
  readonly keyEnv?: string
  readonly keyFile?: string
}

function fromEnvOrFile(what: string, env: string | undefined, file: string | undefined): string | undefined {
  if (env !== undefined) {
    const v = process.env[env]
    if (v === undefined || v.trim() === '') throw new ConfigInvalid(`${what}: the environment variable ${env} is not set`)
    return v.trim()
  }
  if (file !== undefined) {
    try {
      return readFileSync(file, 'utf8').trim()
    } catch (err) {
      throw new ConfigInvalid(`${what}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
  }
  return undefined
}

/** Reads the secret a spec names. `what` names the spec in errors (never the secret). */
export function readCredentials(what: string, spec: CredentialSpec): CloudflareCredentials {
  const token = fromEnvOrFile(what, spec.tokenEnv, spec.tokenFile)
  const key = fromEnvOrFile(what, spec.keyEnv, spec.keyFile)
  const email = spec.emailEnv !== undefined ? fromEnvOrFile(what, spec.emailEnv, undefined) : undefined
  if (token !== undefined && key !== undefined) throw new ConfigInvalid(`${what}: give an API token or an email + Global API Key, not both`)
  if (token !== undefined) return { kind: 'token', token }
  if (key !== undefined && email !== undefined) return { kind: 'key', email, key }
  throw new ConfigInvalid(`${what}: needs an API token (tokenEnv or tokenFile) or an email + Global API Key (emailEnv and keyEnv or keyFile)`)
}

export function authHeaders(c: CloudflareCredentials): Record<string, string> {
  return c.kind === 'token' ? { authorization: `Bearer ${c.token}` } : { 'x-auth-email': c.email, 'x-auth-key': c.key }
}

export { redactDestinationSecrets } from './redact.js'

export const DEFAULT_API_URL = 'https://api.cloudflare.com/client/v4'

/**
 * The SDK client. Every credential field is given explicitly (null when unused) so the SDK does
 * not pick up CLOUDFLARE_* variables of the environment behind the configuration's back.
 */
export function sdkClient(baseUrl: string, c: CloudflareCredentials, opts: { maxRetries?: number, timeoutMs?: number } = {}): Cloudflare {
  return new Cloudflare({
    baseURL: baseUrl,
    apiToken: c.kind === 'token' ? c.token : null,
    apiEmail: c.kind === 'key' ? c.email : null,
    apiKey: c.kind === 'key' ? c.key : null,
    userServiceKey: null,
    maxRetries: opts.maxRetries ?? 2,
    timeout: opts.timeoutMs ?? 60_000
  })
}

export interface ApiErrorItem { readonly code: number, readonly message: string }

/** The API's own errors, verbatim, from an SDK error, our error, or a raw envelope. */
export function apiErrors(err: unknown): ApiErrorItem[] {
  if (err instanceof APIError) return (err.errors ?? []).map((e) => ({ code: Number(e.code), message: String(e.message) }))
  const items = (err as { apiErrors?: unknown })?.apiErrors
  return Array.isArray(items) ? items as ApiErrorItem[] : []
}

/** The HTTP status of an API failure, when there was an answer. */
export function apiStatus(err: unknown): number | undefined {
  if (err instanceof APIError) return err.status
  const s = (err as { status?: unknown })?.status
  return typeof s === 'number' ? s : undefined
}

/**
 * An authentication or permission failure: retrying will not help, the operator must fix the
 * credential. 401/403 answers, and the 400 "Invalid request headers" (6003) a malformed credential gets.
 */
export function isAuthFailure(err: unknown): boolean {
  const status = apiStatus(err)
  if (status === 401 || status === 403) return true
  return status === 400 && apiErrors(err).some((e) => e.code === 6003)
}

/** One line for logs, /health and the CLI: the API's messages verbatim, with their codes. */
export function describeApiError(err: unknown): string {
  const items = apiErrors(err)
  const status = apiStatus(err)
  if (items.length > 0) return `${status !== undefined ? `HTTP ${status}: ` : ''}${items.map((e) => `${e.message} (code ${e.code})`).join('; ')}`
  return (err as Error)?.message ?? String(err)
}

export interface ApiFetchOptions {
  readonly method?: 'GET' | 'POST'
  readonly body?: string
  readonly headers?: Record<string, string>
  readonly signal?: AbortSignal
  /** Attempts for 429, 5xx and connection errors before the error is thrown. */
  readonly attempts?: number
  /** First backoff; doubles per attempt, capped at maxBackoffMs; a Retry-After wins. */
  readonly backoffMs?: number
  readonly maxBackoffMs?: number
  /** The longest Retry-After obeyed (default 300 s): one header must not park a caller for a day. */
  readonly retryAfterMaxMs?: number
}

/**
 * A raw API request for what the SDK does not cover (Logpull's stream, GraphQL). Retries 429
 * (honouring Retry-After, in seconds per Cloudflare's API limits page), 5xx and connection errors
 * with backoff; any other non-2xx is thrown as CloudflareApiFailed with the envelope's errors.
 * The caller owns the body of the answer it gets.
 */
export async function apiFetch(baseUrl: string, path: string, c: CloudflareCredentials, opts: ApiFetchOptions = {}): Promise<Response> {
  const attempts = opts.attempts ?? 5
  let backoff = opts.backoffMs ?? 1000
  for (let attempt = 1; ; attempt++) {
    let res: Response
    try {
      res = await fetch(baseUrl.replace(/\/$/, '') + path, {
        method: opts.method ?? 'GET',
        headers: { ...authHeaders(c), ...opts.headers },
        body: opts.body,
        signal: opts.signal
      })
    } catch (err) {
      if (opts.signal?.aborted === true || attempt >= attempts) throw err
      await sleep(backoff, undefined, { signal: opts.signal })
      backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 60_000)
      continue
    }
    if (res.ok) return res
    const retryable = res.status === 429 || res.status >= 500
    const text = await res.text().catch(() => '')
    if (!retryable || attempt >= attempts) throw apiFailure(res.status, text, res.headers.get('retry-after'))
    const after = Number(res.headers.get('retry-after'))
    await sleep(Number.isFinite(after) && after > 0 ? Math.min(after * 1000, opts.retryAfterMaxMs ?? 300_000) : backoff, undefined, { signal: opts.signal })
    backoff = Math.min(backoff * 2, opts.maxBackoffMs ?? 60_000)
  }
}

/** A failed answer as a typed error carrying the API's errors (or the first bytes of a non-JSON body). */
export function apiFailure(status: number, text: string, retryAfter: string | null = null): Error {
  let items: ApiErrorItem[] = []
  try {
    const env = JSON.parse(text) as { errors?: Array<{ code?: unknown, message?: unknown }> }
    items = (env.errors ?? []).map((e) => ({ code: Number(e.code), message: String(e.message) }))
  } catch { /* not an envelope: shown cut below */ }
  const said = items.length > 0 ? items.map((e) => `${e.message} (code ${e.code})`).join('; ') : text.slice(0, 200).replace(/\s+/g, ' ')
  return Object.assign(new CloudflareApiFailed(status, said), { status, apiErrors: items, retryAfter })
}
