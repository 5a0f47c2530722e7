// A request's batch on its way into the spool: its valid lines framed into a staging segment,
// its dead letters beside it, until the spool commits it (spool.ts) or it is discarded.
//
// Invariants
// - Nothing here is durable until seal() (fsync of the staged files) and the spool's commit.
// - discard() never throws: it runs on the way out of a failure, whose coded answer it must not replace.
import { blockHeader } from './format.js'
import { StagedFile, ndjson } from './staged-file.js'
import type { DeadLetter } from './dead-letter.js'
import type { CommitOutcome, Spool } from './spool.js'

export class SpoolBatch {
  private deadLetters: StagedFile | null = null

  constructor (
    private readonly spool: Spool,
    readonly dataset: string,
    readonly requestId: string,
    readonly path: string,
    private readonly events: StagedFile,
    /** The tenant the sender's token named: kept with each dead letter, so a replay keeps it the tenant's. */
    readonly tenant?: string
  ) {}

  get lines(): number { return this.events.lines }
  get bytes(): number { return this.events.bytes }

  private noted<T>(p: Promise<T>): Promise<T> {
    return p.catch((err: unknown) => { this.spool.noteWriteError(err); throw err })
  }

  writeEvent(line: string): boolean {
    return this.events.writeLine(line)
  }

  /**
   * `count` lines, each followed by '\n' (format.ts), as one block; `crc` is blockCrc(count, lines),
   * computed where the lines were checked. False: await drain() before more.
   */
  writeBlock(lines: Buffer, count: number, crc: number): boolean {
    this.events.writeRaw(blockHeader(count, lines, crc), 0)
    return this.events.writeRaw(lines, count)
  }

  drain(): Promise<void> {
    return this.noted(this.events.drain())
  }

  async writeDeadLetter(record: DeadLetter): Promise<void> {
    this.deadLetters ??= await this.noted(StagedFile.create(`${this.path}.dead-letter`, ndjson, this.spool.fs))
    if (!this.deadLetters.writeLine(JSON.stringify(this.tenant === undefined ? record : { ...record, tenant: this.tenant }))) await this.noted(this.deadLetters.drain())
  }

  /** fsyncs the staged files; returns the dead letters' file, if any, for the caller to store. */
  async seal(): Promise<{ deadLetterPath: string | null, deadLetters: number }> {
    const sealing = (async () => {
      await this.noted(this.events.seal())
      if (this.deadLetters) await this.noted(this.deadLetters.seal())
    })()
    // A group commit starting meanwhile waits for it (Spool.gather): this batch commits next.
    this.spool.sealing(sealing)
    await sealing
    return { deadLetterPath: this.deadLetters?.path ?? null, deadLetters: this.deadLetters?.lines ?? 0 }
  }

  commit(digest: string): Promise<CommitOutcome> {
    return this.spool.commit(this, digest)
  }

  /**
   * Removes the staged files. Never throws: it runs on the way out of a failure (a disk turned
   * read-only or failing with EIO), where its own errno, path and all, would replace the coded
   * answer; a staging file left behind means nothing and is removed at the next start.
   */
  async discard(): Promise<void> {
    await this.discardFiles([this.events, this.deadLetters])
  }

  /** The events' staging file only (a batch without lines): its dead letters are still to be stored. */
  async discardEvents(): Promise<void> {
    await this.discardFiles([this.events])
  }

  private async discardFiles(files: ReadonlyArray<StagedFile | null>): Promise<void> {
    for (const f of files) {
      if (!f) continue
      await f.discard().catch((err: unknown) => {
        this.spool.noteWriteError(err)
        this.spool.opts.log.warn({ err, path: f.path }, 'Could not remove a staging file; it is removed at the next start.')
      })
    }
  }

  async releaseDeadLetters(): Promise<void> {
    if (this.deadLetters) await this.spool.fs.rm(this.deadLetters.path, { force: true })
  }
}

