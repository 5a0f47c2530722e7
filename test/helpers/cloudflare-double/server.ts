/**
 * The Cloudflare API double's core: a real HTTP server on 127.0.0.1 that answers under
 * `/client/v4` the way Cloudflare's API v4 documents it, so no test ever reaches Cloudflare.
 * Route modules beside this file (jobs.ts, audit.ts, logpull.ts, graphql.ts, ...) each add the
 * operations of one area; each cites its own sources. This file holds what every operation shares:
 *
 *   [ENV]  The v4 envelope: `{success, errors: [{code, message}], messages, result, result_info}`.
 *          https://developers.cloudflare.com/fundamentals/api/ ("API response format");
 *          cloudflare/api-schemas openapi.json, schemas `*_api-response-common` and
 *          `*_api-response-common-failure` (success false, errors minItems 1, result null).
 *   [AUTH] Two schemes: `Authorization: Bearer <API token>`, or `X-Auth-Email` + `X-Auth-Key`
 *          (the Global API Key). https://developers.cloudflare.com/fundamentals/api/get-started/keys/ ;
 *          openapi.json `components.securitySchemes` (api_token, api_email, api_key).
 *   [RATE] 429 with a `Retry-After` header (seconds) once a client is over its limit.
 *          https://developers.cloudflare.com/fundamentals/api/reference/limits/
 *
 * Error codes for authentication are in AUTH_ERRORS below, each with its source. Tests change the
 * double's state directly (accounts, zones, credentials, jobs, records) and read what it received
 * from `requests`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import type { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'

export type Auth =
  | { readonly kind: 'token', readonly token: string }
  | { readonly kind: 'key', readonly email: string, readonly key: string }

/** What a credential may do: which accounts and zones, and which permission groups. */
export interface Grant {
  /** Account ids, or '*' for every account the double knows. */
  readonly accounts: readonly string[] | '*'
  /** Zone ids, or '*'. */
  readonly zones: readonly string[] | '*'
  /** Permission names a route may require (e.g. 'logs:read', 'logs:write', 'audit:read', 'analytics:read'); '*' for all. */
  readonly permissions: readonly string[] | '*'
}

export interface DoubleRequest {
  readonly method: string
  /** The path below /client/v4, without the query. */
  readonly path: string
  readonly query: URLSearchParams
  readonly headers: IncomingMessage['headers']
  readonly body: Buffer
  /** The body parsed as JSON, when it is JSON; undefined otherwise. */
  readonly json: unknown
  /** The `:name` parts of the route pattern. */
  readonly params: Readonly<Record<string, string>>
  readonly auth: Auth
  readonly grant: Grant
}

/** What a route answers: a JSON value (sent as is), or a stream (Logpull). */
export type Reply =
  | { readonly status: number, readonly headers?: Record<string, string>, readonly json: unknown }
  | { readonly status: number, readonly headers?: Record<string, string>, readonly stream: Readable }

export interface Route {
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE'
  /** e.g. '/zones/:zone_id/logpush/jobs'; a `:name` matches one path segment. */
  readonly pattern: string
  /** The OpenAPI operationId this route serves (cloudflare/api-schemas), for schema checks; absent for GraphQL. */
  readonly operationId?: string
  /** A permission the credential must hold (Grant.permissions). */
  readonly permission?: string
  handle(req: DoubleRequest, double: CloudflareDouble): Reply | Promise<Reply>
}

export interface RecordedRequest {
  readonly method: string
  readonly path: string
  readonly query: string
  readonly headers: IncomingMessage['headers']
  readonly body: Buffer
  readonly status: number
  readonly operationId?: string
  /** The JSON answer, when the answer was JSON. */
  readonly answer?: unknown
}

/** One answer to give instead of the route's, to the next request(s) that match. */
export interface Injected {
  readonly method?: string
  readonly path: RegExp
  /** How many matching requests get it (default 1). */
  times?: number
  readonly reply: Reply
}

// [AUTH] error answers. Sources: cloudflare/cloudflare-go errors seen by users
// (cloudflare/cloudflare-go#1154 "Invalid request headers" 6003 with error_chain 6103/6111),
// https://developers.cloudflare.com/fundamentals/api/troubleshooting/ (10000 "Authentication error",
// 9103 "Unknown X-Auth-Key or X-Auth-Email", 9109 "Invalid access token").
export const AUTH_ERRORS = {
  missing: { status: 400, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6103, message: 'Invalid format for X-Auth-Key header' }] }] },
  badBearer: { status: 400, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }] }] },
  unknownToken: { status: 401, errors: [{ code: 9109, message: 'Invalid access token' }] },
  unknownKey: { status: 403, errors: [{ code: 9103, message: 'Unknown X-Auth-Key or X-Auth-Email' }] },
  forbidden: { status: 403, errors: [{ code: 10000, message: 'Authentication error' }] }
} as const

/** A success envelope [ENV]. */
export function ok(result: unknown, resultInfo?: Record<string, unknown>, status = 200): Reply {
  return { status, json: { success: true, errors: [], messages: [], result, ...(resultInfo ? { result_info: resultInfo } : {}) } }
}

/** A failure envelope [ENV]. */
export function fail(status: number, errors: ReadonlyArray<{ code: number, message: string }>, headers?: Record<string, string>): Reply {
  return { status, headers, json: { success: false, errors, messages: [], result: null } }
}

interface Compiled { readonly route: Route, readonly re: RegExp, readonly names: string[] }

export class CloudflareDouble {
  /** Accounts and zones that exist; a zone belongs to an account. */
  readonly accounts = new Set<string>()
  readonly zones = new Map<string, { account: string, name: string }>()
  /** API tokens and global keys (by `email\0key`) the double accepts. */
  readonly tokens = new Map<string, Grant>()
  readonly keys = new Map<string, Grant>()
  readonly requests: RecordedRequest[] = []
  readonly injected: Injected[] = []
  /** Per-area state that route modules keep (by a name of their own). */
  readonly areas = new Map<string, unknown>()
  /** The double's clock (ms); tests may replace it to move time. */
  now: () => number = Date.now
  /** Checks a request/answer against the OpenAPI subset; set by the schema module (openapi.ts). */
  validator: ((r: RecordedRequest & { params: Record<string, string> }) => string[]) | null = null
  /** Schema violations seen, as text; tests assert it stays empty. */
  readonly violations: string[] = []
  private readonly routes: Compiled[] = []
  private server: Server | null = null
  private readonly sockets = new Set<Socket>()
  baseUrl = ''

  use(...routes: Route[]): this {
    for (const route of routes) {
      const names: string[] = []
      const re = new RegExp('^' + route.pattern.replace(/:([a-z_]+)/g, (_m, n: string) => { names.push(n); return '([^/]+)' }) + '$')
      this.routes.push({ route, re, names })
    }
    return this
  }

  /** Area state, created on first use. */
  area<T>(name: string, create: () => T): T {
    if (!this.areas.has(name)) this.areas.set(name, create())
    return this.areas.get(name) as T
  }

  inject(i: Injected): void { this.injected.push({ times: 1, ...i }) }

  async start(): Promise<string> {
    this.server = createServer((req, res) => { void this.serve(req, res) })
    this.server.on('connection', (s) => { this.sockets.add(s); s.on('close', () => this.sockets.delete(s)) })
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve))
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/client/v4`
    return this.baseUrl
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy()
    await new Promise<void>((resolve) => this.server ? this.server.close(() => resolve()) : resolve())
  }

  /** The grant of a credential, or the error answer [AUTH]. */
  authenticate(headers: IncomingMessage['headers']): { auth: Auth, grant: Grant } | Reply {
    const authz = headers.authorization
    const email = headers['x-auth-email']
    const key = headers['x-auth-key']
    if (typeof authz === 'string') {
      const m = /^Bearer ([A-Za-z0-9_-]+)$/.exec(authz)
      if (!m) return fail(AUTH_ERRORS.badBearer.status, AUTH_ERRORS.badBearer.errors)
      const grant = this.tokens.get(m[1])
      if (!grant) return fail(AUTH_ERRORS.unknownToken.status, AUTH_ERRORS.unknownToken.errors)
      return { auth: { kind: 'token', token: m[1] }, grant }
    }
    if (typeof email === 'string' && typeof key === 'string') {
      const grant = this.keys.get(`${email}\0${key}`)
      if (!grant) return fail(AUTH_ERRORS.unknownKey.status, AUTH_ERRORS.unknownKey.errors)
      return { auth: { kind: 'key', email, key }, grant }
    }
    return fail(AUTH_ERRORS.missing.status, AUTH_ERRORS.missing.errors)
  }

  /** Whether the grant covers the account/zone named in the params and the route's permission. */
  allows(grant: Grant, params: Readonly<Record<string, string>>, permission?: string): boolean {
    if (params.account_id !== undefined && grant.accounts !== '*' && !grant.accounts.includes(params.account_id)) return false
    if (params.zone_id !== undefined && grant.zones !== '*' && !grant.zones.includes(params.zone_id)) return false
    if (permission !== undefined && grant.permissions !== '*' && !grant.permissions.includes(permission)) return false
    return true
  }

  private async serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    const url = new URL(req.url ?? '/', 'http://double')
    const path = url.pathname.replace(/^\/client\/v4/, '')
    let json: unknown
    if (body.length > 0) { try { json = JSON.parse(body.toString('utf8')) } catch { json = undefined } }
    let reply: Reply
    let operationId: string | undefined
    let params: Record<string, string> = {}
    try {
      const found = this.routes.map((c) => ({ c, m: c.re.exec(path) })).filter((x) => x.m !== null)
      const match = found.find((x) => x.c.route.method === req.method)
      if (!match) {
        reply = found.length > 0
          ? fail(405, [{ code: 10405, message: 'Method not allowed' }])
          : fail(404, [{ code: 7003, message: 'Could not route to ' + path + ', perhaps your object identifier is invalid?' }])
      } else {
        operationId = match.c.route.operationId
        params = Object.fromEntries(match.c.names.map((n, i) => [n, decodeURIComponent(match.m![i + 1])]))
        const injected = this.injected.find((i) => (i.method === undefined || i.method === req.method) && i.path.test(path) && (i.times ?? 1) > 0)
        if (injected) {
          injected.times = (injected.times ?? 1) - 1
          reply = injected.reply
        } else {
          const who = this.authenticate(req.headers)
          if ('status' in who) reply = who
          else if (!this.allows(who.grant, params, match.c.route.permission)) reply = fail(AUTH_ERRORS.forbidden.status, AUTH_ERRORS.forbidden.errors)
          else reply = await match.c.route.handle({ method: req.method!, path, query: url.searchParams, headers: req.headers, body, json, params, auth: who.auth, grant: who.grant }, this)
        }
      }
    } catch (err) {
      reply = fail(500, [{ code: 10001, message: 'double: ' + (err as Error).message }])
    }
    const recorded: RecordedRequest = {
      method: req.method!, path, query: url.search, headers: req.headers, body, status: reply.status, operationId,
      answer: 'json' in reply ? reply.json : undefined
    }
    this.requests.push(recorded)
    if (this.validator && operationId !== undefined) {
      // A validator that throws is a broken check, not a passing one: it shows up as a violation.
      try { this.violations.push(...this.validator({ ...recorded, params })) } catch (err) { this.violations.push(`${operationId}: the OpenAPI check failed: ${(err as Error).message}`) }
    }
    if ('json' in reply) {
      const text = JSON.stringify(reply.json)
      res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers })
      res.end(text)
    } else {
      res.writeHead(reply.status, reply.headers)
      await pipeline(reply.stream, res).catch(() => res.destroy())
    }
  }
}
