// Damaged segments: found by a checksum, by a length other than the committed one, or missing
// although committed (commit-record.ts).
//
// Invariants
// - The bytes of a damaged segment are never deleted: before the spool cuts it to its whole
//   records, it is copied whole into damaged/ and fsync'd; a copy once made is never overwritten
//   (a later start sees the cut file, not the damage).
// - Each damaged segment is reported once per start: one log line with its name and the byte
//   range that cannot be read, and an entry in list() (/health, lpr_spool_damaged_segments).
import { basename, join } from 'node:path'
import type { Logger } from 'pino'
import { fsyncDir, type SpoolFileHandle, type SpoolFs } from './fs.js'
import { errorCode } from './disk-guard.js'

/** A segment found damaged: bytes [fromByte, toByte) (the first of `ranges`) could not be read; a copy is kept. */
export interface DamagedSegment {
  readonly segment: string
  readonly fromByte: number
  readonly toByte: number
  /** Every range that holds no whole record; the intact blocks between them are delivered. */
  readonly ranges: ReadonlyArray<{ readonly fromByte: number, readonly toByte: number }>
  /** Null for a missing segment (commit-record.ts): its name, which held the count, is gone too. */
  readonly committedLines: number | null
  /** Committed lines no intact block holds; null where not known (a segment found short at start). */
  readonly linesLost: number | null
  readonly reason: string
  /** Under DATA_DIR/spool; null for a missing segment (nothing to keep). */
  readonly keptAs: string | null
  readonly at: string
}

export class DamageKeeper {
  private readonly found: DamagedSegment[] = []

  constructor (private readonly dir: string, private readonly fs: SpoolFs, private readonly log: Logger) {}

  list(): readonly DamagedSegment[] {
    return this.found
  }

  /** Keeps a damaged segment's bytes, all of them, in damaged/ and reports it. */
  async note(path: string, ranges: ReadonlyArray<{ fromByte: number, toByte: number }>, lines: number, linesLost: number | null, why: string): Promise<void> {
    const name = basename(path)
    if (this.found.some((d) => d.segment === name)) return
    await this.fs.mkdir(this.dir, { recursive: true })
    const dst = await this.fs.open(join(this.dir, name), 'wx', 0o600).catch((err: unknown) => { if (errorCode(err) === 'EEXIST') return null; throw err })
    if (dst) {
      try {
        await this.copyInto(path, dst)
        await dst.sync()
      } finally {
        await dst.close()
      }
      await fsyncDir(this.fs, this.dir)
    }
    const first = ranges[0] ?? { fromByte: 0, toByte: 0 }
    const d: DamagedSegment = { segment: name, fromByte: first.fromByte, toByte: first.toByte, ranges, committedLines: lines, linesLost, reason: why, keptAs: join('damaged', name), at: new Date().toISOString() }
    this.found.push(d)
    const where = ranges.map((r) => `${r.fromByte}-${r.toByte}`).join(', ')
    this.log.error(d, `Damaged spool segment ${name}: bytes ${where} cannot be read (${linesLost ?? 'unknown number of'} lines lost); every intact block before and after is delivered, the file is kept in spool/damaged/.`)
  }

  /**
   * Committed segments [from, to] whose files are gone (commit-record.ts): nothing to copy; their
   * lines are lost, how many is not known (the name that said so is gone with the file).
   */
  async noteMissing(from: number, to: number): Promise<void> {
    const pad = (n: number): string => String(n).padStart(12, '0')
    const name = from === to ? pad(from) : `${pad(from)}-${pad(to)}`
    if (this.found.some((d) => d.segment === name)) return
    const count = to - from + 1
    const d: DamagedSegment = { segment: name, fromByte: 0, toByte: 0, ranges: [], committedLines: null, linesLost: null, reason: count === 1 ? 'committed, and its file is missing' : `${count} segments committed, and their files are missing`, keptAs: null, at: new Date().toISOString() }
    this.found.push(d)
    this.log.error(d, `Missing spool segment${count === 1 ? '' : 's'} ${name}: committed, and the file is gone (deleted or lost with the disk); its lines are lost, every other segment is delivered.`)
  }

  private async copyInto(path: string, dst: SpoolFileHandle): Promise<void> {
    const size = (await this.fs.stat(path)).size
    const src = await this.fs.open(path, 'r')
    try {
      const buf = Buffer.alloc(1024 * 1024)
      for (let at = 0; at < size;) {
        const { bytesRead } = await src.read(buf, 0, buf.length, at)
        if (bytesRead === 0) break
        for (let off = 0; off < bytesRead;) off += (await dst.write(buf, off, bytesRead - off)).bytesWritten
        at += bytesRead
      }
    } finally {
      await src.close()
    }
  }
}
