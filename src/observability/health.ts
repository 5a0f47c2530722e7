import type { FastifyInstance } from 'fastify'
import type { Stats } from './stats.js'

export interface Readiness {
  readonly ready: boolean
  readonly reasons: readonly string[]
}

export interface HealthOptions {
  readonly version: string
  readonly stats: Stats
  /** Answers whether the service can accept batches now; a sink being down is not a reason. */
  readonly readiness: () => Promise<Readiness>
  /** Per-sink state, shown as is. */
  readonly sinks?: () => Record<string, unknown>
  /** Per-source state (bucket sources), shown as is. */
  readonly sources?: () => Record<string, unknown>
  /** The Logpush job watchdog's view, shown as is; it never changes the status code (see docs/watchdog.md). */
  readonly watchdog?: () => unknown
  /** Per-collector state (pull collectors), shown as is. */
  readonly collectors?: () => Record<string, unknown>
}

/**
 * GET /health (readiness): 200 when this instance can accept batches, 503 when not (spool above
 * its watermark, disk guard refusing, data directory not writable, shutting down), so a balancer
 * or a kubelet stops sending to it. A destination being down is not a reason: the spool takes it.
 *
 * GET /health/live (liveness): 200 whenever the process answers at all. A replica that refuses
 * or whose destination is down is not helped by a restart, which would only churn; one that does
 * not answer this within the probe's timeout is stuck, and is.
 */
export async function healthPlugin(app: FastifyInstance, opts: HealthOptions): Promise<void> {
  app.get('/health/live', async function live() {
    return { status: 'alive', version: opts.version }
  })
  app.get('/health', async function health(_request, reply) {
    const r = await opts.readiness()
    reply.code(r.ready ? 200 : 503)
    return {
      status: r.ready ? 'ok' : 'unavailable',
      reasons: r.reasons,
      version: opts.version,
      uptimeSeconds: Math.round((Date.now() - opts.stats.startedAt) / 1000),
      datasets: opts.stats.toJSON(),
      ...(opts.sinks ? { sinks: opts.sinks() } : {}),
      ...(opts.sources ? { sources: opts.sources() } : {}),
      ...(opts.watchdog ? { watchdog: opts.watchdog() } : {}),
      ...(opts.collectors ? { collectors: opts.collectors() } : {})
    }
  })
}

/** Caches an expensive check for a few seconds so a busy prober does not become load. */
export function cached<T>(ttlMs: number, check: () => Promise<T>): () => Promise<T> {
  let at = 0
  let last: Promise<T> | null = null
  return () => {
    if (!last || Date.now() - at > ttlMs) {
      at = Date.now()
      last = check()
    }
    return last
  }
}
