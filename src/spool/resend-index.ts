// The re-send index: which bodies (dataset + digest) were stored within the dedupe window, so that
// a byte-identical re-send is answered "duplicate" instead of being stored twice.
//
// Invariants
// - A key is in the index only once its segment is durable (the spool adds it after the fsync of
//   the segments directory). While the segment exists, its file name carries the key, so the
//   index is rebuilt from segment names at start; the key is written to a bucket file, and that
//   file fsync'd, before the segment is deleted (record()).
// - Memory and start-up time are bounded by maxEntries, not by uptime or traffic: the in-memory
//   table holds at most maxEntries keys (20 bytes each, at most 4/3 slots per key), and a start
//   reads bucket files newest first only until that many keys are in. When more bodies than
//   that arrive within the window, the window is shortened to the newest maxEntries (logged;
//   Logpush re-sends within minutes, objects and collector windows are re-read within one start).
// - Bucket files are appended to and dropped whole once they leave the window; the newest file is
//   always kept, as it carries the highest sequence number given out.
//
// Why this structure: the earlier digests.log (text, read whole into one string, every key in a
// Map) could not start past ~7 M lines (V8's string limit) and held ~160 bytes of heap per key.
// Fixed-size binary records (32 bytes: key, time, seq, CRC) in time buckets are read in pieces and
// dropped without rewriting; 16-byte keys in one typed-array open-addressing table cost 20 bytes
// per slot and no garbage collector work per key.
//
// Layout: spool/resend/<bucket start, ms>.bin := record*
//   record := key (16: SHA-256 of "dataset:digest", first 16 bytes) | committed at, ms (u48le) |
//             segment seq (u48le) | CRC-32 (zlib's) of the 28 bytes before (u32le)
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import type { Logger } from 'pino'
import { SpoolStateUnreadable } from '../errors.js'
import { fsyncDir, type SpoolFs } from './fs.js'

export const RECORD_BYTES = 32
const MAX_LOAD = 0.75
const READ_CHUNK = 1 << 20

export interface ResendEntry {
  readonly dataset: string
  readonly digest: string
  readonly committedAt: number
  readonly seq: number
}

export function resendKey(dataset: string, digest: string): Buffer {
  return createHash('sha256').update(`${dataset}:${digest}`).digest().subarray(0, 16)
}

export function encodeRecord(key: Uint8Array, at: number, seq: number, out = Buffer.alloc(RECORD_BYTES), offset = 0): Buffer {
  out.set(key.subarray(0, 16), offset)
  out.writeUIntLE(Math.max(0, Math.floor(at)), offset + 16, 6)
  out.writeUIntLE(seq, offset + 22, 6)
  out.writeUInt32LE(recordCrc(out, offset), offset + 28)
  return out
}

// CRC-32 (the zlib polynomial) of a record's 28 bytes, in JS: a native call per 28 bytes costs
// more than the sum itself, and a start checks millions of records.
const CRC_TABLE = new Int32Array(256)
for (let n = 0; n < 256; n++) {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  CRC_TABLE[n] = c
}

export function recordCrc(buf: Uint8Array, offset: number): number {
  let c = -1
  for (let i = offset; i < offset + 28; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

function errorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code
  return typeof code === 'string' ? code : undefined
}


/**
 * Open addressing over 16-byte keys in typed arrays (linear probing; a key's first word is
 * already uniformly distributed). Each slot holds the key and its commit time in seconds; 0 is
 * an empty slot. No deletion: expired keys are dropped by rebuilding.
 */
export class KeyTable {
  private keys: Uint32Array
  private at: Uint32Array
  private mask: number
  size = 0

  constructor (capacity = 1024) {
    this.keys = new Uint32Array(capacity * 4)
    this.at = new Uint32Array(capacity)
    this.mask = capacity - 1
  }

  get capacity(): number { return this.mask + 1 }

  /** Seconds of the key's commit, or 0 when absent. */
  get(key: Buffer, offset = 0): number {
    return this.at[this.slot(key.readUInt32LE(offset), key.readUInt32LE(offset + 4), key.readUInt32LE(offset + 8), key.readUInt32LE(offset + 12))]!
  }

  /** Slot of the key, or of the empty slot where it would go, as a number >= 0. */
  private slot(a: number, b: number, c: number, d: number): number {
    for (let i = a & this.mask; ; i = (i + 1) & this.mask) {
      if (this.at[i] === 0) return i
      const o = i * 4
      if (this.keys[o] === a && this.keys[o + 1] === b && this.keys[o + 2] === c && this.keys[o + 3] === d) return i
    }
  }

  /** Whether one more key fits without passing the load limit. */
  fits(): boolean {
    return this.size + 1 <= this.capacity * MAX_LOAD
  }

  /** Sets the key's time (the later of the two when present). The caller checks fits() first. */
  set(key: Buffer, seconds: number, offset = 0): void {
    this.setWords(key.readUInt32LE(offset), key.readUInt32LE(offset + 4), key.readUInt32LE(offset + 8), key.readUInt32LE(offset + 12), Math.max(1, seconds))
  }

  private setWords(a: number, b: number, c: number, d: number, seconds: number): void {
    const i = this.slot(a, b, c, d)
    if (this.at[i] === 0) {
      const o = i * 4
      this.keys[o] = a; this.keys[o + 1] = b; this.keys[o + 2] = c; this.keys[o + 3] = d
      this.size++
      this.at[i] = seconds
    } else if (this.at[i]! < seconds) {
      this.at[i] = seconds
    }
  }

  /** A table of `capacity` slots holding this one's keys at or after `minSeconds`. */
  rebuilt(capacity: number, minSeconds: number): KeyTable {
    const t = new KeyTable(capacity)
    for (let i = 0; i <= this.mask; i++) {
      const s = this.at[i]!
      if (s === 0 || s < minSeconds) continue
      const o = i * 4
      t.setWords(this.keys[o]!, this.keys[o + 1]!, this.keys[o + 2]!, this.keys[o + 3]!, s)
    }
    return t
  }

  /** The time (seconds) below which about `fraction` of the keys lie. */
  quantile(fraction: number): number {
    const times = new Uint32Array(this.size)
    let n = 0
    for (let i = 0; i <= this.mask; i++) if (this.at[i] !== 0) times[n++] = this.at[i]!
    times.sort()
    return times[Math.min(n - 1, Math.floor(n * fraction))] ?? 0
  }
}

export interface ResendIndexOptions {
  readonly dir: string
  readonly windowSeconds: number
  readonly maxEntries: number
  readonly fs: SpoolFs
  readonly log: Logger
}

export class ResendIndex {
  readonly bucketsDir: string
  private readonly legacyPath: string
  private table = new KeyTable()
  private readonly maxCapacity: number
  // Keys committed before this (ms) are treated as gone: the window shortened by maxEntries.
  private floorMs = 0
  private readonly bucketMs: number
  private readonly files = new Set<number>()
  maxSeq = 0

  constructor (private readonly opts: ResendIndexOptions) {
    this.bucketsDir = join(opts.dir, 'resend')
    this.legacyPath = join(opts.dir, 'digests.log')
    // About 48 files per window: few enough to list, fine enough that an expired file is small.
    this.bucketMs = Math.max(60_000, Math.ceil(opts.windowSeconds * 1000 / 48))
    let cap = 1024
    while (cap * MAX_LOAD < opts.maxEntries) cap *= 2
    this.maxCapacity = cap
  }

  get size(): number { return this.table.size }

  private horizonMs(now = Date.now()): number {
    return Math.max(now - this.opts.windowSeconds * 1000, this.floorMs)
  }

  has(dataset: string, digest: string): boolean {
    const s = this.table.get(resendKey(dataset, digest))
    // Times are kept in whole seconds, rounded up: a key is recognised for the window and at most
    // one second longer, never shorter.
    return s !== 0 && s * 1000 >= this.horizonMs()
  }

  /** A durable commit (or a segment found at start): in memory; on disk only at record(). */
  add(dataset: string, digest: string, committedAt: number): void {
    this.put(resendKey(dataset, digest), committedAt)
  }

  private put(key: Buffer, atMs: number, offset = 0): void {
    if (!this.table.fits() || this.table.size >= this.opts.maxEntries) this.makeRoom()
    this.table.set(key, Math.ceil(atMs / 1000), offset)
  }

  /** Drops expired keys; grows up to maxEntries; past it, shortens the window by a quarter of the keys. */
  private makeRoom(): void {
    let minSeconds = Math.ceil(this.horizonMs() / 1000)
    let live = this.table.rebuilt(this.table.capacity, minSeconds)
    if (live.size >= this.opts.maxEntries * 0.9) {
      minSeconds = live.quantile(0.25) + 1
      this.floorMs = minSeconds * 1000
      this.opts.log.warn({ maxEntries: this.opts.maxEntries, recognisedSince: new Date(this.floorMs).toISOString() },
        'More batches within DEDUPE_WINDOW_SECONDS than DEDUPE_MAX_ENTRIES: re-sends are recognised for a shorter time (the newest batches only).')
      live = live.rebuilt(live.capacity, minSeconds)
    }
    // Room to grow into: at most half full after a rebuild, up to the table maxEntries allows.
    let cap = live.capacity
    while ((live.size + 1) * 2 > cap * MAX_LOAD && cap < this.maxCapacity) cap *= 2
    this.table = cap === live.capacity ? live : live.rebuilt(cap, minSeconds)
  }

  /**
   * Reads the index at start: the old digests.log is converted first, then bucket files newest
   * first until maxEntries keys are in; expired files are deleted. maxSeq is then the highest
   * sequence number recorded.
   */
  async load(): Promise<void> {
    const { fs } = this.opts
    await fs.mkdir(this.bucketsDir, { recursive: true })
    await this.migrateLegacy()
    const names = (await fs.readdir(this.bucketsDir)).filter((n) => /^\d+\.bin$/.test(n))
    const starts = names.map((n) => Number(n.slice(0, -4))).sort((a, b) => b - a)
    const horizon = this.horizonMs()
    // The table sized once for what will be read: no growth (and no second table) during a start.
    let expected = 0
    for (const start of starts) {
      if (start + this.bucketMs >= horizon) expected += Math.floor((await fs.stat(this.pathOf(start))).size / RECORD_BYTES)
    }
    expected = Math.min(expected, this.opts.maxEntries)
    let cap = 1024
    while (cap * MAX_LOAD < expected + 1024 && cap < this.maxCapacity) cap *= 2
    if (cap > this.table.capacity) this.table = this.table.rebuilt(cap, 0)
    for (const [i, start] of starts.entries()) {
      this.files.add(start)
      const newest = i === 0
      const expired = start + this.bucketMs < horizon
      if (expired && !newest) {
        await fs.rm(this.pathOf(start), { force: true })
        this.files.delete(start)
        continue
      }
      if (this.table.size >= this.opts.maxEntries && !newest) {
        // The window is full: older keys are not recognised (and their file goes with time).
        this.floorMs = Math.max(this.floorMs, start + this.bucketMs)
        continue
      }
      await this.readBucket(start, !expired)
    }
    if (this.floorMs > 0) this.opts.log.warn({ maxEntries: this.opts.maxEntries, recognisedSince: new Date(this.floorMs).toISOString() }, 'The re-send index holds DEDUPE_MAX_ENTRIES keys: older re-sends in the window are not recognised.')
  }

  private pathOf(start: number): string {
    return join(this.bucketsDir, `${String(start).padStart(15, '0')}.bin`)
  }

  private async readBucket(start: number, keys: boolean): Promise<void> {
    const { fs } = this.opts
    const path = this.pathOf(start)
    let fh
    try {
      fh = await fs.open(path, 'r')
    } catch (err) {
      throw new SpoolStateUnreadable(path, errorCode(err) ?? 'error', (err as Error).message)
    }
    const horizon = this.horizonMs()
    const buf = Buffer.alloc(READ_CHUNK - (READ_CHUNK % RECORD_BYTES))
    let position = 0
    let good = 0 // bytes of whole, checked records
    let torn = -1 // offset of the first bad record
    try {
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, position)
        if (bytesRead === 0) break
        const whole = bytesRead - (bytesRead % RECORD_BYTES)
        for (let o = 0; o < whole; o += RECORD_BYTES) {
          if (recordCrc(buf, o) !== buf.readUInt32LE(o + 28)) {
            if (torn < 0) torn = position + o
            continue
          }
          if (torn >= 0) {
            // A good record after a bad one: not a torn append but damage.
            throw new SpoolStateUnreadable(path, 'damaged record', `at byte ${torn}; move the file away to start without the re-send records it holds`)
          }
          good = position + o + RECORD_BYTES
          const at = buf.readUIntLE(o + 16, 6)
          this.maxSeq = Math.max(this.maxSeq, buf.readUIntLE(o + 22, 6))
          const sentinel = buf.readUInt32LE(o) === 0 && buf.readUInt32LE(o + 4) === 0 && buf.readUInt32LE(o + 8) === 0 && buf.readUInt32LE(o + 12) === 0
          if (keys && !sentinel && at >= horizon && this.table.size < this.opts.maxEntries) this.put(buf, at, o)
        }
        position += bytesRead
        if (bytesRead < buf.length) break
      }
    } catch (err) {
      if (err instanceof SpoolStateUnreadable) throw err
      throw new SpoolStateUnreadable(path, errorCode(err) ?? 'error', (err as Error).message)
    } finally {
      await fh.close()
    }
    // A crash during an append leaves part of a record (its segments were not deleted yet): cut
    // it off, so that the next append starts on a record boundary.
    if (good < position) await fs.truncate(path, good)
  }

  /** Writes the keys of segments about to be deleted, durably, before they are. */
  async record(entries: readonly ResendEntry[]): Promise<void> {
    if (entries.length === 0) return
    const { fs } = this.opts
    const byBucket = new Map<number, Buffer[]>()
    for (const e of entries) {
      const start = e.committedAt - (e.committedAt % this.bucketMs)
      let list = byBucket.get(start)
      if (!list) byBucket.set(start, list = [])
      list.push(encodeRecord(resendKey(e.dataset, e.digest), e.committedAt, e.seq))
      this.maxSeq = Math.max(this.maxSeq, e.seq)
    }
    let created = false
    for (const [start, records] of byBucket) {
      if (!this.files.has(start)) created = true
      await appendSynced(fs, this.pathOf(start), Buffer.concat(records))
      this.files.add(start)
    }
    if (created) await fsyncDir(fs, this.bucketsDir)
    await this.dropExpired()
  }

  private async dropExpired(): Promise<void> {
    const newest = Math.max(...this.files)
    const horizon = this.horizonMs()
    for (const start of [...this.files]) {
      if (start === newest || start + this.bucketMs >= horizon) continue
      await this.opts.fs.rm(this.pathOf(start), { force: true })
      this.files.delete(start)
    }
  }

  /**
   * digests.log of earlier releases ("dataset:digest at seq" per line, "_seq at seq" for the last
   * number): read in pieces (it may be larger than a string can be), written as bucket records,
   * made durable, then removed. A crash in between converts it again: a key twice is harmless.
   */
  private async migrateLegacy(): Promise<void> {
    const { fs } = this.opts
    let fh
    try {
      fh = await fs.open(this.legacyPath, 'r')
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return
      throw new SpoolStateUnreadable(this.legacyPath, errorCode(err) ?? 'error', (err as Error).message)
    }
    const horizon = Date.now() - this.opts.windowSeconds * 1000
    const byBucket = new Map<number, Buffer[]>()
    const flush = async (): Promise<void> => {
      for (const [start, records] of byBucket) {
        await appendSynced(fs, this.pathOf(start), Buffer.concat(records))
        this.files.add(start)
      }
      byBucket.clear()
    }
    let pending = 0
    const take = async (line: string): Promise<void> => {
      const [key, at, seq] = line.split(' ')
      // A line torn by a crash during an append is skipped: its segment was not deleted yet.
      if (!key || !at || !Number.isFinite(Number(at)) || (seq !== undefined && !Number.isFinite(Number(seq)))) return
      const atMs = Number(at)
      const seqN = Number(seq ?? 0)
      if (key !== '_seq' && atMs < horizon) return
      const colon = key.indexOf(':')
      const k = key === '_seq' ? Buffer.alloc(16) : resendKey(key.slice(0, colon), key.slice(colon + 1))
      const start = atMs - (atMs % this.bucketMs)
      let list = byBucket.get(start)
      if (!list) byBucket.set(start, list = [])
      list.push(encodeRecord(k, atMs, seqN))
      if (++pending >= 32_768) { pending = 0; await flush() }
    }
    try {
      const buf = Buffer.alloc(READ_CHUNK)
      let rest = ''
      let position = 0
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, position)
        if (bytesRead === 0) break
        position += bytesRead
        const text = rest + buf.toString('utf8', 0, bytesRead)
        const lines = text.split('\n')
        rest = lines.pop() ?? ''
        for (const line of lines) await take(line)
      }
      await take(rest)
      await flush()
    } catch (err) {
      throw new SpoolStateUnreadable(this.legacyPath, errorCode(err) ?? 'error', (err as Error).message)
    } finally {
      await fh.close()
    }
    await fsyncDir(fs, this.bucketsDir)
    await fs.rm(this.legacyPath, { force: true })
    await fsyncDir(fs, this.opts.dir)
    this.opts.log.info('Converted spool/digests.log of an earlier release into spool/resend/.')
  }
}

async function appendSynced(fs: SpoolFs, path: string, data: Buffer): Promise<void> {
  const fh = await fs.open(path, 'a', 0o600)
  try {
    for (let off = 0; off < data.length;) off += (await fh.write(data, off, data.length - off)).bytesWritten
    await fh.sync()
  } finally {
    await fh.close()
  }
}
