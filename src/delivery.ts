// What the spool hands a destination and what a destination answers: a leaf both rooms import,
// so that neither imports the other (app.ts wires them).

/** A committed batch (one spool segment), from line `from` on. */
export interface DeliveryBatch {
  readonly seq: number
  readonly dataset: string
  /** The digest of the body the batch was received as (what a re-send is recognised by); absent from test doubles. */
  readonly digest?: string
  /** Lines of the segment already delivered before (a replay after a crash or a failure). */
  readonly from: number
  /** Lines in the whole segment. */
  readonly count: number
  lines(): AsyncIterable<string>
  /** The same lines as their UTF-8 bytes, for destinations that copy them as they are. */
  payloads(): AsyncIterable<Buffer>
  /** The same lines as stored, many at a time, for destinations that write NDJSON. */
  blocks(): AsyncIterable<LineBlock>
  /**
   * Set when the destination gets the lines shaped (src/shaping): the line as stored behind the
   * line lines() gave last, for what must not change with the shaping (Elasticsearch's _id).
   */
  originalOf?(line: string): string
  /**
   * Set when routing (src/shaping/route.ts) gives these lines a tenant's target: the Elasticsearch
   * namespace, Splunk index and file folder, in place of the destination's own (and the tenant's
   * name, Kafka's `{tenant}` in a topic).
   */
  readonly route?: { readonly tenant?: string, readonly namespace: string, readonly index: string, readonly folder: string } | null
}

/**
 * Lines as the spool keeps them: each line's bytes as received, followed by '\n'; a line never
 * holds a line break of its own (one-line.ts). A view into a read buffer, valid until the next
 * block is asked for.
 */
export interface LineBlock {
  readonly lines: number
  readonly data: Buffer
}

/** Each line of blocks, without its newline. */
export async function * linesOf(blocks: AsyncIterable<LineBlock>): AsyncGenerator<Buffer> {
  for await (const b of blocks) {
    const { data } = b
    let start = 0
    while (start < data.length) {
      const nl = data.indexOf(0x0a, start)
      yield data.subarray(start, nl)
      start = nl + 1
    }
  }
}

/**
 * Each line of a batch, decoded, to `take`, in order. A batch as stored (no originalOf: not a
 * shaped or routed view, whose lines() are not the stored ones) is read a block at a time and
 * split here: through lines() each line cost two async-generator steps and their promises, ~0.8
 * of the ~1.1 µs it took to get a 2 KB line. `take` answers a promise only when it must wait (a
 * request to send), false to stop reading.
 */
export async function eachLine(batch: DeliveryBatch, take: (line: string) => Promise<void> | boolean | undefined): Promise<void> {
  if (batch.originalOf) {
    for await (const line of batch.lines()) {
      const r = take(line)
      if (r === false) return
      if (r instanceof Promise) await r
    }
    return
  }
  for await (const { lines, data } of batch.blocks()) {
    // The block's count says where its lines are: the last one ends at the block's last byte.
    let start = 0
    for (let n = 1; n <= lines; n++) {
      const end = n === lines ? data.length - 1 : data.indexOf(0x0a, start)
      const r = take(data.toString('utf8', start, end))
      start = end + 1
      if (r === false) return
      if (r instanceof Promise) await r
    }
  }
}

/** One line a destination refused for good (e.g. an Elasticsearch mapping error). */
export interface Rejection {
  readonly dataset: string
  readonly sink: string
  readonly code: string
  readonly reason: string
  readonly raw: string
}

export interface DeliveryResult {
  readonly delivered: number
  /** Lines the destination already had (Elasticsearch 409 on a deterministic _id). */
  readonly duplicates: number
  readonly rejected: readonly Rejection[]
  /** Destination state to checkpoint with the batch (the file sink's file sizes). */
  readonly state?: unknown
}

/**
 * Lets a destination checkpoint part of a batch: `lines` lines from the start of the segment are
 * delivered, and `rejected` (since the last call) must be dead-lettered first.
 */
export type Progress = (lines: number, rejected: readonly Rejection[]) => Promise<void>

/**
 * A destination refuses for a reason no line causes (credentials, privileges, the target index
 * or data stream, a cluster block, a size limit lowered): nothing is dead-lettered, the lines
 * stay spooled and the spool retries them with backoff. `code` is a stable SinkStopCode.
 */
export class DeliveryStopped extends Error {
  constructor (readonly code: string, message: string) {
    super(message)
    this.name = 'DeliveryStopped'
  }
}

/** What a destination's health() shows while it is stopped (DeliveryStopped), null otherwise. */
export interface StoppedState {
  readonly code: string
  readonly reason: string
  /** ISO time of the first refusal in a row. */
  readonly since: string
}

/** Every destination behind one interface. `deliver` resolves when the batch is durably delivered, or throws. */
export interface Sink {
  readonly name: string
  /**
   * Recovers from the state last checkpointed with a delivered batch (undefined on a fresh start)
   * and sets the destination up. Runs in the background after the service listens; `signal`
   * aborts at shutdown what it waits for outside the process.
   */
  init(state: unknown, signal?: AbortSignal): Promise<void>
  deliver(batch: DeliveryBatch, progress: Progress, signal: AbortSignal): Promise<DeliveryResult>
  /**
   * What to checkpoint before the first delivery when there is no checkpoint yet. A destination
   * that recovers by cutting back to its checkpointed state needs one: without it, what the very
   * first delivery wrote before a crash is kept, and the spool delivers that batch again.
   */
  startState?(): unknown
  /**
   * True when a replay from an older checkpoint than the last delivered batch gives this
   * destination no duplicate (the files cut back to the checkpointed size; Elasticsearch and
   * OpenSearch know a line by its _id): its checkpoints may then be written in groups, lagging
   * by up to SPOOL_CHECKPOINT_INTERVAL_MS (src/spool/checkpoints.ts). Absent: each is written
   * before the next batch.
   */
  readonly replaysWithoutDuplicates?: boolean
  /** Called with the state of each checkpoint once it is durable (the files compress what it no longer names). */
  checkpointed?(state: unknown): void
  /** Whatever operators should see about this destination in /health. */
  health?(): Record<string, unknown>
  close(): Promise<void>
}
