import { open, rm, type FileHandle } from 'node:fs/promises'

// Lines are gathered into one string and written in large pieces: one write per line would cost
// a syscall each, and one buffer per batch would hold the whole batch in memory.
const FLUSH_CHARS = 256 * 1024

/**
 * An append-only file of newline-terminated lines that belongs to one request. At most one write
 * is in flight and at most about 2 x FLUSH_CHARS wait in memory; `writeLine` answers false when
 * the caller must `await drain()` before it reads more input.
 */
export type Encoder = (lines: string[]) => string | Buffer

/** NDJSON: lines joined by newlines. */
export const ndjson: Encoder = (lines) => lines.join('\n') + '\n'

export class StagedFile {
  private pending: string[] = []
  private pendingChars = 0
  private inflight: Promise<void> | null = null
  private failure: Error | null = null
  lines = 0
  chars = 0
  bytes = 0

  private constructor (readonly path: string, private readonly fh: FileHandle, private readonly encode: Encoder) {}

  static async create(path: string, encode: Encoder = ndjson): Promise<StagedFile> {
    return new StagedFile(path, await open(path, 'wx', 0o600), encode)
  }

  writeLine(line: string): boolean {
    this.pending.push(line)
    this.pendingChars += line.length + 1
    this.lines++
    if (this.pendingChars < FLUSH_CHARS) return true
    if (this.inflight) return false
    this.startFlush()
    return true
  }

  async drain(): Promise<void> {
    while (this.inflight) await this.inflight
    if (this.failure) throw this.failure
    if (this.pendingChars >= FLUSH_CHARS) this.startFlush()
  }

  private startFlush(): void {
    const text = this.encode(this.pending)
    this.chars += this.pendingChars
    this.pending = []
    this.pendingChars = 0
    this.inflight = (typeof text === 'string' ? this.fh.write(text) : this.fh.write(text, 0, text.length)).then(
      ({ bytesWritten }) => { this.bytes += bytesWritten; this.inflight = null },
      (err: Error) => { this.failure ??= err; this.inflight = null }
    )
  }

  /** Writes what is left, fsyncs and closes: after this the lines survive a crash. */
  async seal(): Promise<void> {
    while (this.inflight) await this.inflight
    if (!this.failure && this.pending.length > 0) {
      this.startFlush()
      await this.inflight
    }
    try {
      if (this.failure) throw this.failure
      await this.fh.sync()
    } finally {
      await this.fh.close()
    }
  }

  async discard(): Promise<void> {
    while (this.inflight) await this.inflight
    await this.fh.close().catch(() => {})
    await rm(this.path, { force: true })
  }
}
