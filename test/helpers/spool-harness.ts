// An in-process service around the spool for fault and power-cut tests: a spool on a FaultFs, a
// forwarder, and a destination that outlives restarts (it stands for Elasticsearch or the files)
// and, like the file destination, keeps exactly what was checkpointed with the last batch.
import { Spool, Forwarder } from '../../src/spool/index.js'
import type { DeliveryBatch, DeliveryResult, Rejection, Sink } from '../../src/delivery.js'
import { createLogger } from '../../src/observability/index.js'
import type { Logger } from 'pino'
import type { FaultFs } from './fault-fs.js'

export const DATASET = 'http_requests'
export const SPOOL_DIR = '/data/spool'

export class MemoryDestination implements Sink {
  readonly name = 'memory'
  // Cuts back to its checkpointed count, as the files do: its checkpoints are written in groups.
  readonly replaysWithoutDuplicates = true
  readonly delivered: string[] = []

  /** Lines past the checkpointed count were delivered by a batch whose checkpoint was lost: the spool sends them again. */
  async init(state: unknown): Promise<void> {
    this.delivered.length = Math.min(this.delivered.length, (state as { count?: number } | undefined)?.count ?? 0)
  }

  async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    const before = this.delivered.length
    try {
      for await (const line of batch.lines()) this.delivered.push(line)
    } catch (err) {
      this.delivered.length = before // whole or nothing, as the file destination's cut-back
      throw err
    }
    return { delivered: this.delivered.length - before, duplicates: 0, rejected: [], state: { count: this.delivered.length } }
  }

  /** How many times each body's lines arrived (every line of a body the same count, or an error). */
  copies(body: Body): number {
    const counts = body.lines.map((l) => this.delivered.filter((d) => d === l).length)
    if (counts.some((c) => c !== counts[0])) throw new Error(`body ${body.digest} delivered in part: ${counts.join(',')}`)
    return counts[0]!
  }

  async close(): Promise<void> {}
}

export interface Body {
  readonly digest: string
  readonly lines: readonly string[]
}

export function bodies(n: number, linesEach = 3, tag = 'b'): Body[] {
  return Array.from({ length: n }, (_, i) => ({
    digest: `${tag}${i}`,
    lines: Array.from({ length: linesEach }, (_, j) => `{"body":"${tag}${i}","line":${j}}`)
  }))
}

export interface Service {
  readonly spool: Spool
  readonly forwarder: Forwarder
  stop(): Promise<void>
}

export interface ServiceOptions {
  readonly minFreeBytes?: number
  readonly dedupeSeconds?: number
  readonly highWatermarkBytes?: number
  /** SPOOL_CHECKPOINT_INTERVAL_MS; 0 here, so that a walk's short load reaches the grouped writes and the clean-up. */
  readonly checkpointIntervalMs?: number
  /** Where refused lines go; dropped unless given. */
  readonly deadLetter?: (rejected: readonly Rejection[]) => Promise<void>
  /** Silent unless given. */
  readonly log?: Logger
}

/** Starts the spool and one forwarder on `fs`, as buildApp does. */
export async function startService(fs: FaultFs, destination: Sink, o: ServiceOptions = {}): Promise<Service> {
  const log = o.log ?? createLogger('silent')
  const spool = new Spool({
    dir: SPOOL_DIR,
    highWatermarkBytes: o.highWatermarkBytes ?? 1e12,
    lowWatermarkBytes: 0,
    minFreeBytes: o.minFreeBytes ?? 0,
    dedupeSeconds: o.dedupeSeconds ?? 3600,
    checkpointIntervalMs: o.checkpointIntervalMs ?? 0,
    log,
    fs
  })
  await spool.init()
  const forwarder = new Forwarder({ spool, sink: destination, log, deadLetter: o.deadLetter ?? (async () => {}), retryMaxMs: 1 })
  spool.expectConsumers([forwarder.name])
  await forwarder.prepare()
  forwarder.start()
  return { spool, forwarder, stop: () => forwarder.stop(1000) }
}

export type Answer = 'stored' | 'duplicate' | 'refused' | 'error'

/** 200 to Logpush: stored, or recognised as a re-send of a stored batch. */
export const answered200 = (a: Answer): boolean => a === 'stored' || a === 'duplicate'

/** One request, in the order receive.ts takes it: refusal check, staging, re-send check, seal, commit. */
export async function send(spool: Spool, body: Body): Promise<Answer> {
  if (spool.refusal()) return 'refused'
  let batch
  try {
    batch = await spool.open(DATASET, `req-${body.digest}`)
    for (const line of body.lines) batch.writeEvent(line)
    if (spool.isDuplicate(DATASET, body.digest)) {
      await batch.discard()
      return 'duplicate'
    }
    await batch.seal()
    return (await batch.commit(body.digest)).duplicate ? 'duplicate' : 'stored'
  } catch {
    await batch?.discard().catch(() => {})
    return 'error'
  }
}

export const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

/** Waits until the forwarder has nothing left to deliver. */
export async function drained(service: Service): Promise<void> {
  const end = Date.now() + 10_000
  while (service.spool.backlog(service.forwarder.name).segments > 0) {
    if (Date.now() > end) throw new Error(`not drained: ${JSON.stringify(service.forwarder.status())}`)
    await new Promise((resolve) => setTimeout(resolve, 1))
  }
}
