/**
 * Where a batch whose dataset cannot be told is kept, whole, as dead letters: not a dataset id
 * (those start with a letter), so it never meets a schema's name.
 */
export const UNRECOGNISED_DATASET = '_unknown'

/** A line that could not be taken, as stored in the dead-letter store (one JSON object per line). */
export interface DeadLetter {
  readonly time: string
  readonly dataset: string
  readonly stage: 'validation' | 'delivery'
  readonly code: string
  readonly reason: string
  readonly line?: number
  readonly requestId?: string
  readonly sink?: string
  /** The tenant the sender's token named (CONFIG_FILE tokens): a replay sends the line back as that tenant's only. */
  readonly tenant?: string
  /** The line as text; absent when its bytes are not UTF-8 (then they are in rawBase64, untouched). */
  readonly raw?: string
  readonly rawBase64?: string
}
