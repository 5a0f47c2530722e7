// One small lifecycle for every part of the service (the data-directory lock, the spool, the parse
// workers, the destinations, sources, collectors, the watchdog, the listeners). A part is created
// from validated configuration without opening anything; all parts are created before any starts,
// so a configuration error leaves nothing behind. Then they start in list order, and close in the
// reverse order: what started last (the listeners) stops first. A leaf: it imports no room.
import type { Logger } from 'pino'

export interface Component {
  readonly name: string
  /**
   * Opens what the part needs (files, locks, workers, timers, sockets). Nothing outside the process
   * may be waited on here: what depends on another system sets itself up in the background.
   */
  start(): Promise<void>
  /**
   * Releases everything start took. Called once, also after a start that threw part-way, so it
   * must cope with a part that is only half open.
   */
  close(): Promise<void>
  /** What operators see about the part in /health, when it has something to say. */
  health?(): unknown
}

export class Lifecycle {
  /** Parts whose start was called, in order (a failed start included: its close cleans up). */
  private readonly opened: Component[] = []
  private closing: Promise<void> | null = null

  constructor (readonly components: readonly Component[], private readonly log: Logger) {
    const names = components.map((c) => c.name)
    const twice = names.filter((n, i) => names.indexOf(n) !== i)
    if (twice.length > 0) throw new Error(`lifecycle: ${twice.join(', ')} listed twice`)
  }

  /** Starts each part in turn; when one fails, closes what was opened (in reverse) and throws its error. */
  async start(): Promise<void> {
    if (this.opened.length > 0 || this.closing) throw new Error('lifecycle: started twice')
    for (const c of this.components) {
      this.opened.push(c)
      try {
        await c.start()
      } catch (err) {
        await this.close().catch(() => { /* each failure was logged; the start's error is the one to show */ })
        throw err
      }
    }
  }

  /** Closes the opened parts, last started first; one that fails to close does not keep the others open. */
  close(): Promise<void> {
    this.closing ??= (async () => {
      let first: unknown = null
      for (const c of [...this.opened].reverse()) {
        try {
          await c.close()
        } catch (err) {
          this.log.error({ err, component: c.name }, 'Could not close this part cleanly.')
          first ??= err
        }
      }
      if (first !== null) throw first
    })()
    return this.closing
  }
}
