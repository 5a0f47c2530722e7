// One request's lines on their way in. Valid lines and dead letters are staged in files of the
// request's own, so that a batch that fails half-way (413, corrupt gzip, client gone) leaves no
// trace, and a batch that succeeds is whole on disk before anyone is told so.
import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { StagedFile } from './staged-file.js'

export interface DeadLetter {
  readonly time: string
  readonly dataset: string
  readonly stage: 'validation' | 'delivery'
  readonly code: string
  readonly reason: string
  readonly line?: number
  readonly requestId?: string
  readonly sink?: string
  readonly raw: string
}

export interface SealedBatch {
  readonly dataset: string
  readonly requestId: string
  readonly eventsPath: string
  readonly eventLines: number
  readonly eventChars: number
  readonly deadLetterPath: string | null
  readonly deadLetters: number
  /** Removes the staging files once every consumer has what it needs. */
  release(): Promise<void>
}

let sequence = 0

export class Staging {
  constructor (readonly dir: string) {}

  /** Staging files are meaningless after a restart: they belonged to requests nobody answered. */
  async init(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    for (const f of await readdir(this.dir)) await rm(join(this.dir, f), { force: true })
  }

  async open(dataset: string, requestId: string): Promise<StagedBatch> {
    const base = join(this.dir, `${process.pid}-${++sequence}-${dataset}`)
    return new StagedBatch(dataset, requestId, base, await StagedFile.create(`${base}.events.ndjson`))
  }
}

export class StagedBatch {
  private deadLetters: StagedFile | null = null
  private deadLettersOpening: Promise<StagedFile> | null = null

  constructor (
    readonly dataset: string,
    readonly requestId: string,
    private readonly base: string,
    private readonly events: StagedFile
  ) {}

  get eventLines(): number { return this.events.lines }

  /** The exact text of one valid line, without its newline. False: await drain() before more. */
  writeEvent(line: string): boolean {
    return this.events.writeLine(line)
  }

  /** Dead letters are rare, so their file is created on the first one. */
  async writeDeadLetter(record: DeadLetter): Promise<void> {
    if (!this.deadLetters) {
      this.deadLettersOpening ??= StagedFile.create(`${this.base}.dead-letter.ndjson`)
      this.deadLetters = await this.deadLettersOpening
    }
    if (!this.deadLetters.writeLine(JSON.stringify(record))) await this.deadLetters.drain()
  }

  drain(): Promise<void> {
    return this.events.drain()
  }

  async seal(): Promise<SealedBatch> {
    await this.events.seal()
    if (this.deadLetters) await this.deadLetters.seal()
    const dl = this.deadLetters
    const events = this.events
    return {
      dataset: this.dataset,
      requestId: this.requestId,
      eventsPath: events.path,
      eventLines: events.lines,
      eventChars: events.chars,
      deadLetterPath: dl?.path ?? null,
      deadLetters: dl?.lines ?? 0,
      release: async () => {
        await rm(events.path, { force: true })
        if (dl) await rm(dl.path, { force: true })
      }
    }
  }

  async abort(): Promise<void> {
    await this.events.discard()
    if (this.deadLetters) await this.deadLetters.discard()
  }
}
