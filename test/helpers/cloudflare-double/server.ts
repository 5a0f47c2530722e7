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
 *   [RATE] 429 with a `Retry-After` header (seconds) once a client is over its limit (rateLimited()).
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
  /** When the answer was ready (Date.now()): for tests of waits between requests. */
  readonly at: number
}

/** One answer to give instead of the route's, to the next request(s) that match. */
export interface Injected {
  readonly method?: string
  readonly path: RegExp
  /** How many matching requests get it (default 1). */
  times?: number
  readonly reply: Reply
}

// [AUTH] error answers, as Cloudflare's API gateway gives them (the operations' schemas only say
// "4XX: the failure envelope"). Each as observed in public reports of real answers:
//   missing      400 9106: no credential at all. cloudflare/cloudflare-python#2678 ("Error code: 400 -
//                {'success': False, 'errors': [{'code': 9106, 'message': 'Missing X-Auth-Key, X-Auth-Email or
//                Authorization headers'}]}"); xiaotianxt/bypass-cloudflare-for-github-action#2.
//   badKeyFormat 400 6003 + error_chain 6103: an X-Auth-Key no Global API Key can look like, most often an
//                API token sent as a key. cloudflare/cloudflare-typescript#161 (the whole answer, status 400),
//                undefinedplayer/cloudflare-ddns#18 ("common when you use your API Token instead of API Key"),
//                rmbolger/Posh-ACME#126 ("asdf" reproduces it; a real key is 37 characters of digits and
//                lowercase letters); NewFuture/DDNS#152 (a bad X-Auth-Email adds 6102 to the chain).
//   badBearer    400 6003 + error_chain 6111: an Authorization header that is not `Bearer <token>`.
//                Ultimate-Multisite/ultimate-multisite#73 (the whole answer).
//   unknownToken 403 9109 "Invalid access token": a well-formed token Cloudflare does not know (revoked,
//                expired, made up). 9109 comes with 403 in jeessy2/ddns-go#1341 (same code, an IP-restricted
//                token) and in the recorded answers of several public clients' tests; /user/tokens/verify,
//                which the double does not serve, answers 401 1000 "Invalid API Token" instead.
//   unknownKey   403 9103 "Unknown X-Auth-Key or X-Auth-Email": a well-formed key/email pair that does not
//                match. Message: netcccyun/dnsmgr#245; status 403 like the other refusals of a credential
//                (no public report shows the status of this one).
//   forbidden    403 10000 "Authentication error": a valid credential without access to this account/zone or
//                without the permission. cloudflare/terraform-provider-cloudflare#1533 ("HTTP status 403:
//                Authentication error (10000)"), hieunc229/mailflare#1; the Workers API docs of the time:
//                "If you are unable to match your AccountID or ZoneID with the authorization header".
// Real answers from the gateway sometimes omit `messages` and `result` (cloudflare-python#2678 above); the
// double always sends the full failure envelope [ENV], which the operations' schemas require.
export const AUTH_ERRORS = {
  missing: { status: 400, errors: [{ code: 9106, message: 'Missing X-Auth-Key, X-Auth-Email or Authorization headers' }] },
  badKeyFormat: { status: 400, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6103, message: 'Invalid format for X-Auth-Key header' }] }] },
  badEmailFormat: { status: 400, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6102, message: 'Invalid format for X-Auth-Email header' }] }] },
  badBearer: { status: 400, errors: [{ code: 6003, message: 'Invalid request headers', error_chain: [{ code: 6111, message: 'Invalid format for Authorization header' }] }] },
  unknownToken: { status: 403, errors: [{ code: 9109, message: 'Invalid access token' }] },
  unknownKey: { status: 403, errors: [{ code: 9103, message: 'Unknown X-Auth-Key or X-Auth-Email' }] },
  forbidden: { status: 403, errors: [{ code: 10000, message: 'Authentication error' }] }
} as const

/**
 * Whether a string can be a Global API Key: 37 lowercase hex characters (rmbolger/Posh-ACME#126), or
 * the newer `cfk_` keys (byJoey/xray-cf-lite#5: "cfk_ 这种新版 key", 2026). Only unregistered keys are
 * judged: a key a test registers in `keys` is always taken as well-formed.
 */
export function looksLikeGlobalKey(key: string): boolean {
  return /^[0-9a-f]{37}$/.test(key) || /^cfk_[A-Za-z0-9_-]+$/.test(key)
}

/**
 * A 429 [RATE] with `Retry-After` in seconds and the API's own words: code 971 "Please wait and
 * consider throttling your request speed" (cloudflare/workers-sdk#10025; lablabs/cloudflare-exporter#74
 * "HTTP status 429: More than 1200 requests per 300 seconds reached. Please wait and consider
 * throttling your request speed").
 */
export function rateLimited(retryAfterSeconds: number): Reply {
  return fail(429, [{ code: 971, message: 'Please wait and consider throttling your request speed' }], { 'retry-after': String(retryAfterSeconds) })
}

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

  /** The routes registered so far, in order (tests check them against the OpenAPI subset). */
  get routeTable(): readonly Route[] { return this.routes.map((c) => c.route) }

  /** Area state, created on first use. */
  area<T>(name: string, create: () => T): T {
    if (!this.areas.has(name)) this.areas.set(name, create())
    return this.areas.get(name) as T
  }

  inject(i: Injected): void { this.injected.push({ times: 1, ...i }) }

  /** The requests the double received for one operation, in order. */
  requestsTo(operationId: string): RecordedRequest[] {
    return this.requests.filter((r) => r.operationId === operationId)
  }

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
      if (grant) return { auth: { kind: 'key', email, key }, grant }
      if (!looksLikeGlobalKey(key)) return fail(AUTH_ERRORS.badKeyFormat.status, AUTH_ERRORS.badKeyFormat.errors)
      if (!email.includes('@')) return fail(AUTH_ERRORS.badEmailFormat.status, AUTH_ERRORS.badEmailFormat.errors)
      return fail(AUTH_ERRORS.unknownKey.status, AUTH_ERRORS.unknownKey.errors)
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
        // [ROUTE] A path no route knows: 7003 + 7000, as the Workers API docs of the time show the answer
        // ("Could not route to /zones/notazone/workers/script/bindings, perhaps your object identifier is
        // invalid?" then "No route for that URI"; cloudflare/serverless-cloudflare-workers#32 for 7000).
        // A known path with another method: 7001 "Method PUT not available for that URI." (the words of
        // real answers quoted in public clients' FAQs and tests; 405 as those tests record it).
        reply = found.length > 0
          ? fail(405, [{ code: 7001, message: `Method ${req.method ?? ''} not available for that URI.` }])
          : fail(404, [{ code: 7003, message: 'Could not route to ' + path + ', perhaps your object identifier is invalid?' }, { code: 7000, message: 'No route for that URI' }])
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
      answer: 'json' in reply ? reply.json : undefined,
      at: Date.now()
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
