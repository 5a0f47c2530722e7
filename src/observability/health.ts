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
  /** Local folders shown by name only (e.g. ['/var/lib/lpr', '$DATA_DIR']), longest first or not. */
  readonly localRoots?: ReadonlyArray<readonly [path: string, name: string]>
}

/**
 * Every string in `value` with each local root replaced by its name. /health is open to whoever
 * reaches the intake port, and error messages carry paths (`EIO: …, open '/var/lib/…/progress.log'`):
 * the part below the root still says which file, the root no longer tells the host's layout.
 */
export function maskLocalPaths(value: unknown, roots: ReadonlyArray<readonly [string, string]>): unknown {
  const ordered = roots.filter(([p]) => p.length > 1).sort((a, b) => b[0].length - a[0].length)
  if (ordered.length === 0) return value
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return ordered.reduce((text, [p, name]) => text.split(p).join(name), v)
    if (v === null || typeof v !== 'object') return v
    const plain = typeof (v as { toJSON?: unknown }).toJSON === 'function' ? (v as { toJSON: () => unknown }).toJSON() : v
    if (plain !== v) return walk(plain)
    if (Array.isArray(v)) return v.map(walk)
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]))
  }
  return walk(value)
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
    return maskLocalPaths({
      status: r.ready ? 'ok' : 'unavailable',
      reasons: r.reasons,
      version: opts.version,
      uptimeSeconds: Math.round((Date.now() - opts.stats.startedAt) / 1000),
      datasets: opts.stats.toJSON(),
      ...(opts.sinks ? { sinks: opts.sinks() } : {}),
      ...(opts.sources ? { sources: opts.sources() } : {}),
      ...(opts.watchdog ? { watchdog: opts.watchdog() } : {}),
      ...(opts.collectors ? { collectors: opts.collectors() } : {})
    }, opts.localRoots ?? [])
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
