// The order of a stop on SIGTERM, so that a balancer in front loses no request:
//   1. /health answers 503 ("shutting down") while the listener still takes uploads, for
//      SHUTDOWN_HEALTH_DELAY_MS: the balancer's checks (fall x inter) or Kubernetes' endpoint
//      removal see the replica leave and send new batches elsewhere; answers carry
//      `Connection: close` so kept-alive connections end with them;
//   2. the listener closes, idle connections with it; requests in flight finish (at most
//      SHUTDOWN_GRACE_MS, then connections are cut); destinations flush; the process exits.
// Closing the listener at once (as before) meant no new connection ever saw the 503: a balancer
// learnt of the stop only from refused connections, and without `option redispatch` answered
// senders 503 "no server available" meanwhile.
import type { Logger } from 'pino'

export interface Stoppable {
  /** /health and the status page say "shutting down"; uploads are still served. */
  beginShutdown(): void
  /** Closes the listener, finishes what is in flight, flushes the destinations. */
  close(): Promise<void>
  /** Cuts the connections still open (the grace period is over). */
  cutConnections(): void
}

export interface ShutdownTimes {
  /** How long /health answers 503 before the listener closes; 0 for an interactive stop. */
  readonly healthDelayMs: number
  /** How long requests in flight may take once the listener is closed. */
  readonly graceMs: number
}

export async function shutdown(app: Stoppable, times: ShutdownTimes, log: Logger): Promise<void> {
  app.beginShutdown()
  if (times.healthDelayMs > 0) {
    log.info({ healthDelayMs: times.healthDelayMs }, 'Shutting down: /health answers 503, uploads still served until the balancer has taken this replica out.')
    await new Promise((resolve) => setTimeout(resolve, times.healthDelayMs))
  }
  log.info({ graceMs: times.graceMs }, 'Stopping: no new requests, finishing those in flight.')
  const force = setTimeout(() => {
    log.warn('Grace period over: cutting the remaining connections.')
    app.cutConnections()
  }, times.graceMs)
  force.unref()
  try {
    await app.close()
  } finally {
    clearTimeout(force)
  }
}
