import type { DeliveryBatch, DeliveryResult, Sink } from '../sink.js'

/**
 * Reads every line and keeps none: for measuring the intake and the spool without a destination's
 * cost (npm run bench), and for load tests of a deployment.
 */
export class DiscardSink implements Sink {
  readonly name = 'discard'
  readonly replaysWithoutDuplicates = true

  async init(): Promise<void> {}

  async deliver(batch: DeliveryBatch): Promise<DeliveryResult> {
    let delivered = 0
    // Blocks are read whole (and their checksums checked); their lines are counted, not split.
    for await (const block of batch.blocks()) delivered += block.lines
    return { delivered, duplicates: 0, rejected: [] }
  }

  async close(): Promise<void> {}
}
