// How an accepted batch becomes durable: its segment in the spool, then its dead letters.
import type { Logger } from 'pino'
import type { CommitResult } from '../intake/index.js'
import { UNRECOGNISED_DATASET, type SpoolBatch } from '../spool/index.js'
import type { RotatingFiles } from '../sinks/index.js'
import type { RecentDeadLetters } from '../status/index.js'

export interface CommitDeps {
  readonly deadLetters: RotatingFiles
  readonly recentDeadLetters: RecentDeadLetters
  readonly log: Logger
}

/**
 * The segment first, the dead letters only once it is durable and new. The other order (dead
 * letters first, never taken back) stored them twice whenever the segment was not stored: a
 * re-send racing its original (a duplicate) and a failed commit (answered 503, "nothing stored",
 * then sent again). Taking appended dead letters back is not possible in general: other batches
 * of the dataset may have appended after them. The price of this order: a kill -9 between the
 * segment's commit and the dead-letter append loses that batch's dead letters (its valid lines
 * are safe, and the re-send is a duplicate); the other order doubled them in the same window,
 * and also without any crash.
 */
export function committer(deps: CommitDeps): (batch: SpoolBatch, digest: string) => Promise<CommitResult> {
  const { deadLetters, recentDeadLetters, log } = deps
  const store = async (batch: SpoolBatch, path: string): Promise<void> => {
    await deadLetters.appendFile(batch.dataset, path)
    // For the status page only: its failure must not fail a batch that is safely stored.
    await recentDeadLetters.noteFile(batch.dataset, path).catch((err: unknown) => log.warn({ err }, 'Could not read the latest dead letters for the status page.'))
  }
  return async function commit(batch, digest) {
    const sealed = await batch.seal()
    // A batch whose dataset could not be told lives in the dead-letter store only.
    if (batch.dataset === UNRECOGNISED_DATASET) {
      if (sealed.deadLetterPath) await store(batch, sealed.deadLetterPath)
      await batch.discard()
      return { stored: true }
    }
    const outcome = await batch.commit(digest)
    if (outcome.duplicate) return { stored: false } // commit() discarded the staged files
    if (sealed.deadLetterPath) {
      // The segment is durable and will be answered 200: a 503 now would only bring a re-send,
      // a duplicate that stores nothing. The error names how many dead letters are missing.
      await store(batch, sealed.deadLetterPath).catch((err: unknown) => log.error({ err, dataset: batch.dataset, lines: sealed.deadLetters }, 'Could not store the dead letters of a stored batch.'))
    }
    await batch.releaseDeadLetters().catch(() => {})
    return { stored: true }
  }
}
