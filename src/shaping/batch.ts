// A spooled batch as one destination gets it after shaping. The spool keeps its lines as they
// came; this view shapes them as the destination reads, so nothing shaped is ever stored.
//
// Positions stay those of the segment: a line kept back is read as an empty line (lines()), which
// every line-reading destination skips but counts, so their checkpoints (progress) still name the
// segment's lines and a retry resumes at the same place. Block readers (the files, discard) get
// only the lines that go out.
import type { DeliveryBatch, Rejection } from '../delivery.js'
import { LineRejectCode } from '../errors.js'
import { Tally, type Shaper } from './shaper.js'
import { LineView } from './blocks.js'

export class ShapedBatch extends LineView {
  /** The counts of the last full read of lines() (routing reads a batch more than once). */
  tally: Tally
  /**
   * Lines the shaping could not handle, by position in the segment: each is read as an empty line
   * (the destination skips it, the rest of the batch goes out) and dead-lettered for this
   * destination only, so one such line never holds the batch back in an endless retry.
   */
  private readonly failed = new Map<number, Rejection>()
  /** Positions below this one were handed to the dead letters already (takeFailed). */
  private taken = 0

  constructor (source: DeliveryBatch, private readonly shaper: Shaper, private readonly sink: string) {
    super(source)
    this.tally = new Tally(shaper.ruleNames.length)
  }

  get route(): DeliveryBatch['route'] { return this.source.route }

  async * lines(): AsyncGenerator<string> {
    this.tally = new Tally(this.shaper.ruleNames.length)
    let pos = this.source.from
    for await (const line of this.source.lines()) {
      // A blank line is skipped by every destination as it is; nothing to shape.
      const shaped = line.length === 0 ? '' : this.shapeOne(line, pos)
      pos++
      this.last = { line: shaped, original: line }
      yield shaped
    }
  }

  private shapeOne(line: string, pos: number): string {
    try {
      return this.shaper.shape(line, this.tally) ?? ''
    } catch (err) {
      if (!this.failed.has(pos)) {
        this.failed.set(pos, { dataset: this.source.dataset, sink: this.sink, code: LineRejectCode.shaping, reason: `shaping could not handle the line: ${(err as Error).message}`, raw: line })
      }
      return ''
    }
  }

  /**
   * The lines before position `upTo` the shaping could not handle and that were not taken yet:
   * the forwarder dead-letters them before its checkpoint passes them.
   */
  takeFailed(upTo: number): Rejection[] {
    const out: Rejection[] = []
    for (const [pos, r] of this.failed) if (pos >= this.taken && pos < upTo) out.push(r)
    this.taken = Math.max(this.taken, upTo)
    return out
  }
}
