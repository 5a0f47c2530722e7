// The service's HTTP listeners: the intake listener (Logpush, HEC, /health) and the admin listener
// (status page, /metrics, /logpush/challenges, /health). Both are fastify instances with the same
// request ids, limits and error handling; each is a part of the service whose start is its listen.
import type { Server as TlsServer } from 'node:tls'
import { randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import Fastify, { type FastifyInstance } from 'fastify'
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import type { Component } from '../lifecycle.js'
import type { Stats } from '../observability/index.js'
import { clip } from '../pipeline/index.js'

const REQUEST_ID = /^[\w.:-]{1,128}$/

export interface Tls { readonly cert: Buffer, readonly key: Buffer }

export interface HttpOptions {
  readonly config: Config
  readonly log: Logger
  readonly tls: Tls | null
  readonly stats: Stats
  /** True once the service is stopping: answers then close their connection. */
  readonly closing: () => boolean
}

function httpReason(status: number): string {
  return STATUS_CODES[status] ?? 'Error'
}

/** A fastify instance as every listener of the service has it; routes are registered by the caller. */
export function createHttpServer(o: HttpOptions): FastifyInstance {
  const { config, tls, stats } = o
  const app = Fastify({
    loggerInstance: o.log,
    // A sender's X-Request-Id is kept with its batch, dead letters and logs: taken only when it
    // is short and plain, otherwise the request gets an id of our own.
    requestIdHeader: false,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const id = req.headers['x-request-id']
      return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID()
    },
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Logpush reuses connections; close idle ones at shutdown instead of waiting for them.
    forceCloseConnections: tls ? true : 'idle',
    return503OnClosing: true,
    // Logpush may speak HTTP/2 (its timeouts name h2 reads/writes); with TLS, ALPN offers h2 and
    // http/1.1 both. Without TLS (behind a balancer) plain HTTP/1.1.
    ...(tls ? { http2: true as const, https: { allowHTTP1: true, ...tls } } : {})
    // pino's Logger type is wider than fastify's base logger type; the instance is the same.
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance

  // Each error is logged once, here: a client's mistake (4xx) as a one-line info with its code,
  // an expected refusal (a coded 503: spool full, disk nearly full) as a one-line warning, our
  // own failure (other 5xx) as an error with its stack.
  app.setErrorHandler(function logOnce(error: Error & { statusCode?: number, code?: string }, request, reply) {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500
    if (status === 503 && error.code) request.log.warn({ code: error.code, statusCode: status }, error.message)
    else if (status >= 500) request.log.error({ err: error }, error.message)
    else request.log.info({ code: error.code, statusCode: status }, error.message)
    return reply.code(status).send({
      statusCode: status,
      code: error.code ?? 'LPR_ERR_INTERNAL',
      error: status >= 500 && !error.code ? 'Internal Server Error' : error.name === 'FastifyError' ? httpReason(status) : error.name,
      message: status >= 500 && !error.code ? 'Internal error; see the service log' : error.message
    })
  })

  // fastify's own 404 logs and answers the whole URL, query string included, where a token may
  // be (destination_conf's header_Authorization=...): ours names the path only, cut short.
  app.setNotFoundHandler(function notFound(request, reply) {
    const path = clip(request.url.split('?', 1)[0]!, 200)
    request.log.info({ statusCode: 404, path }, 'No such route.')
    return reply.code(404).send({ message: `Route ${request.method}:${path} not found`, error: 'Not Found', statusCode: 404 })
  })

  // During a shutdown, answers to requests still in flight close their connection, so the
  // server is not kept waiting on a keep-alive socket that will carry nothing more.
  app.addHook('onSend', async function closeWhenStopping(request, reply) {
    if (o.closing() && request.raw.httpVersionMajor < 2) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async function countRequest(request, reply) {
    stats.countRequest(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
  })
  return app
}

export interface Listener extends Component {
  /** The fastify instance; there once started. */
  readonly app: FastifyInstance
  /** Where it answers, e.g. http://127.0.0.1:8080 (a wildcard address as loopback); there once started. */
  readonly url: string
  /** Takes a renewed certificate for new connections; false without TLS. */
  reloadTls(tls: Tls): boolean
}

export interface ListenerOptions {
  readonly name: string
  readonly port: number
  readonly host: string
  readonly http: HttpOptions
  /** Registers the routes; called at start, when the parts they serve are open. */
  readonly routes: (app: FastifyInstance) => Promise<void>
  readonly onListening?: (url: string) => Promise<void>
}

export function listener(o: ListenerOptions): Listener {
  const tls = o.http.tls !== null
  let app: FastifyInstance | null = null
  let url: string | null = null
  return {
    name: o.name,
    get app() {
      if (!app) throw new Error(`${o.name} has not started`)
      return app
    },
    get url() {
      if (url === null) throw new Error(`${o.name} has not started`)
      return url
    },
    async start() {
      app = createHttpServer(o.http)
      await o.routes(app)
      await app.listen({ port: o.port, host: o.host })
      const a = app.server.address()
      if (a === null || typeof a === 'string') throw new Error(`${o.name}: no TCP address`)
      const host = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address
      url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${a.port}`
      await o.onListening?.(url)
    },
    async close() {
      await app?.close()
    },
    reloadTls(tls) {
      if (!tls || !app) return false
      ;(app.server as unknown as TlsServer).setSecureContext(tls)
      return true
    }
  }
}
