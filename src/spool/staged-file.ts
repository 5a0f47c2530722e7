import { realFs, type SpoolFileHandle, type SpoolFs } from './fs.js'
import { writeAll } from '../write-all.js'

// Lines are gathered into one string and written in large pieces: one write per line would cost
// a syscall each, and one buffer per batch would hold the whole batch in memory.
const FLUSH_CHARS = 256 * 1024
// What may wait for the disk before writers are asked to pause.
const QUEUE_LIMIT = 2 * FLUSH_CHARS

export type Encoder = (lines: string[]) => string | Buffer

/** NDJSON: lines joined by newlines. */
export const ndjson: Encoder = (lines) => lines.join('\n') + '\n'

/**
 * An append-only file that belongs to one request. Writes go out one at a time, in order; at
 * most about QUEUE_LIMIT bytes wait in memory, and `writeLine`/`writeRaw` answer false when the
 * caller must `await drain()` before it reads more input.
 */
export class StagedFile {
  private pending: string[] = []
  private pendingChars = 0
  private readonly queue: Array<string | Buffer> = []
  private queued = 0
  private inflight: Promise<void> | null = null
  private failure: Error | null = null
  lines = 0
  chars = 0
  bytes = 0

  private constructor (readonly path: string, private readonly fh: SpoolFileHandle, private readonly encode: Encoder, private readonly fs: SpoolFs) {}

  static async create(path: string, encode: Encoder = ndjson, fs: SpoolFs = realFs): Promise<StagedFile> {
    return new StagedFile(path, await fs.open(path, 'wx', 0o600), encode, fs)
  }

  writeLine(line: string): boolean {
    this.pending.push(line)
    this.pendingChars += line.length + 1
    this.lines++
    if (this.pendingChars >= FLUSH_CHARS) this.flushPending()
    return this.queued < QUEUE_LIMIT
  }

  /** Bytes already encoded elsewhere (a parse worker's framed records) holding `lines` lines. */
  writeRaw(data: Buffer, lines: number): boolean {
    this.flushPending()
    this.lines += lines
    this.enqueue(data)
    return this.queued < QUEUE_LIMIT
  }

  async drain(): Promise<void> {
    while (this.queued >= QUEUE_LIMIT && this.inflight) await this.inflight
    if (this.failure) throw this.failure
  }

  private flushPending(): void {
    if (this.pending.length === 0) return
    this.chars += this.pendingChars
    const data = this.encode(this.pending)
    this.pending = []
    this.pendingChars = 0
    this.enqueue(data)
  }

  private enqueue(data: string | Buffer): void {
    this.queue.push(data)
    this.queued += data.length
    if (!this.inflight) this.pump()
  }

  private pump(): void {
    const data = this.queue.shift()
    if (data === undefined) { this.inflight = null; return }
    const bytes = typeof data === 'string' ? Buffer.from(data) : data
    this.inflight = writeAll(this.fh, bytes).then(
      () => { this.bytes += bytes.length; this.queued -= data.length; this.pump() },
      (err: Error) => { this.failure ??= err; this.queue.length = 0; this.queued = 0; this.inflight = null }
    )
  }

  /** Writes what is left, fsyncs and closes: after this the lines survive a crash. */
  async seal(): Promise<void> {
    this.flushPending()
    while (this.inflight) await this.inflight
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
    await this.fs.rm(this.path, { force: true })
  }
}
