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
// Layout: spool/resend/<bucket start, ms>.bin := record* (resend-record.ts)
import { join } from 'node:path'
import type { Logger } from 'pino'
import { SpoolStateUnreadable } from '../errors.js'
import { errorCode } from './disk-guard.js'
import { fsyncDir, type SpoolFileHandle, type SpoolFs } from './fs.js'
import { capacityFor, KeyTable, MAX_LOAD } from './key-table.js'
import { appendSynced, crcWord, encodeRecord, RECORD_BYTES, resendKey } from './resend-record.js'
import { migrateLegacy } from './resend-legacy.js'

export { encodeRecord, RECORD_BYTES, recordCrc, resendKey } from './resend-record.js'

// 4 MiB a read (a multiple of RECORD_BYTES): few calls, and two such buffers are all a start holds.
const READ_CHUNK = 4 << 20
// Records whose table slots are touched ahead of their insertion (key-table.ts touch()).
const TOUCH_BYTES = 16 * RECORD_BYTES

export interface ResendEntry {
  readonly dataset: string
  readonly digest: string
  readonly committedAt: number
  readonly seq: number
}

/** A bucket file a start reads. */
interface Bucket {
  /** The start of its time bucket, ms (its name). */
  readonly start: number
  readonly path: string
  readonly size: number
  /** false: the newest file when it has left the window: read for its sequence numbers only. */
  readonly keys: boolean
  fh: Promise<SpoolFileHandle> | null
  closed: boolean
}

interface Read { readonly file: Bucket, readonly position: number, readonly buf: Buffer, readonly bytes: Promise<number> }

/** Where the scan of one file is: bytes read, bytes of whole checked records, first bad record. */
interface Scan { position: number, good: number, torn: number }

function unreadable(path: string, err: unknown): Error {
  return err instanceof SpoolStateUnreadable ? err : new SpoolStateUnreadable(path, errorCode(err) ?? 'error', (err as Error).message)
}

/** A file-system call on a state file whose failure stops the start with a coded error. */
async function coded<T>(path: string, p: Promise<T>): Promise<T> {
  try { return await p } catch (err) { throw unreadable(path, err) }
}

async function closeBucket(file: Bucket): Promise<void> {
  if (!file.fh || file.closed) return
  file.closed = true
  const fh = await coded(file.path, file.fh)
  await coded(file.path, fh.close())
}

export interface ResendIndexOptions {
  readonly dir: string
  readonly windowSeconds: number
  readonly maxEntries: number
  readonly fs: SpoolFs
  readonly log: Logger
  /** Bytes a start reads at a time (rounded down to whole records); tests make it small. */
  readonly readChunkBytes?: number
}

export class ResendIndex {
  readonly bucketsDir: string
  private table = new KeyTable()
  private readonly maxCapacity: number
  // Keys committed before this (ms) are treated as gone: the window shortened by maxEntries.
  private floorMs = 0
  private readonly bucketMs: number
  private readonly files = new Set<number>()
  // Bucket files whose name is durable: found at start (the directory is fsync'd then) or created
  // and the directory fsync'd since. Not `files`: a record() appending to a file that a concurrent
  // one has just created must not return before that file's name is durable.
  private readonly named = new Set<number>()
  maxSeq = 0
  // What touch() read: kept, so that the compiler cannot leave those reads out.
  touched = 0

  constructor (private readonly opts: ResendIndexOptions) {
    this.bucketsDir = join(opts.dir, 'resend')
    // About 48 files per window: few enough to list, fine enough that an expired file is small.
    this.bucketMs = Math.max(60_000, Math.ceil(opts.windowSeconds * 1000 / 48))
    this.maxCapacity = capacityFor(opts.maxEntries)
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
    if (!this.table.fits() || this.table.size >= this.opts.maxEntries) this.makeRoom()
    this.table.set(resendKey(dataset, digest), Math.ceil(committedAt / 1000))
  }

  /**
   * Drops expired keys (in place); past maxEntries, shortens the window by a quarter of the keys;
   * grows the table when it is more than half full, up to the size maxEntries allows. Only a
   * growth makes a second table, for a moment: a full window at maxEntries never does.
   */
  private makeRoom(): void {
    let minSeconds = Math.ceil(this.horizonMs() / 1000)
    this.table.dropBefore(minSeconds)
    if (this.table.size >= this.opts.maxEntries * 0.9) {
      minSeconds = this.table.quantile(0.25) + 1
      this.floorMs = minSeconds * 1000
      this.opts.log.warn({ maxEntries: this.opts.maxEntries, recognisedSince: new Date(this.floorMs).toISOString() },
        'More batches within DEDUPE_WINDOW_SECONDS than DEDUPE_MAX_ENTRIES: re-sends are recognised for a shorter time (the newest batches only).')
      this.table.dropBefore(minSeconds)
    }
    const cap = this.table.capacity
    if ((this.table.size + 1) * 2 > cap * MAX_LOAD && cap < this.maxCapacity) {
      this.table = this.table.rebuilt(Math.min(this.maxCapacity, cap * 2), minSeconds)
    }
  }

  /**
   * Reads the index at start: the old digests.log is converted first, then bucket files newest
   * first until maxEntries keys are in; expired files are deleted. maxSeq is then the highest
   * sequence number recorded.
   */
  async load(): Promise<void> {
    const { fs } = this.opts
    await coded(this.bucketsDir, fs.mkdir(this.bucketsDir, { recursive: true }))
    await migrateLegacy({ fs, dir: this.opts.dir, bucketsDir: this.bucketsDir, windowSeconds: this.opts.windowSeconds, bucketMs: this.bucketMs, log: this.opts.log, pathOf: (start) => this.pathOf(start), written: (start) => this.files.add(start) })
    const names = (await coded(this.bucketsDir, fs.readdir(this.bucketsDir))).filter((n) => /^\d+\.bin$/.test(n))
    // A crashed process may have created a file whose name is not durable yet: made so before any
    // record() appends to it and returns.
    await coded(this.bucketsDir, fsyncDir(fs, this.bucketsDir))
    const starts = names.map((n) => Number(n.slice(0, -4))).sort((a, b) => b - a)
    const horizon = this.horizonMs()
    const plan: Bucket[] = []
    let expected = 0
    for (const [i, start] of starts.entries()) {
      const path = this.pathOf(start)
      this.files.add(start)
      this.named.add(start)
      const expired = start + this.bucketMs < horizon
      // The newest file is read even when expired: it carries the highest sequence number.
      if (expired && i > 0) {
        await coded(path, fs.rm(path, { force: true }))
        this.files.delete(start)
        this.named.delete(start)
        continue
      }
      const size = await coded(path, fs.stat(path)).then((st) => st.size)
      plan.push({ start, path, size, keys: !expired, fh: null, closed: false })
      if (!expired) expected += Math.floor(size / RECORD_BYTES)
    }
    // The table sized once for what will be read, with room to grow (half full), within what
    // maxEntries allows: no growth, and so no second table, during a start.
    const want = Math.min(this.maxCapacity, capacityFor(2 * (Math.min(expected, this.opts.maxEntries) + this.table.size)))
    if (want > this.table.capacity) this.table = this.table.rebuilt(want, 0)
    await this.readBuckets(plan, horizon)
    if (this.floorMs > 0) this.opts.log.warn({ maxEntries: this.opts.maxEntries, recognisedSince: new Date(this.floorMs).toISOString() }, 'The re-send index holds DEDUPE_MAX_ENTRIES keys: older re-sends in the window are not recognised.')
  }

  private pathOf(start: number): string {
    return join(this.bucketsDir, `${String(start).padStart(15, '0')}.bin`)
  }

  /**
   * Reads the planned files in order, in chunks of READ_CHUNK bytes, into two buffers: while the
   * records of one chunk go into the table, the next chunk (of the same file or the next one) is
   * being read. Past maxEntries keys, older files are not read: their start is the new floor.
   */
  private async readBuckets(plan: Bucket[], horizon: number): Promise<void> {
    const chunk = Math.max(RECORD_BYTES, (this.opts.readChunkBytes ?? READ_CHUNK) - ((this.opts.readChunkBytes ?? READ_CHUNK) % RECORD_BYTES))
    const bufs = [Buffer.allocUnsafeSlow(chunk), Buffer.allocUnsafeSlow(chunk)] as const
    let ahead: Read | null = null
    try {
      for (const [f, file] of plan.entries()) {
        if (f > 0 && this.table.size >= this.opts.maxEntries) {
          // The window is full: older keys are not recognised (and their file goes with time).
          this.floorMs = Math.max(this.floorMs, file.start + this.bucketMs)
          continue
        }
        const scan: Scan = { position: 0, good: 0, torn: -1 }
        for (;;) {
          const matches = ahead?.file === file && ahead.position === scan.position
          // (A read ahead is always the next one needed; were it not, it must end before its buffer is reused.)
          if (ahead && !matches) await ahead.bytes.catch(() => 0)
          const read: Read = matches ? ahead! : this.issue(file, scan.position, bufs[0])
          ahead = null
          const bytes = await read.bytes
          const other = read.buf === bufs[0] ? bufs[1] : bufs[0]
          const more = bytes === chunk
          const next = plan[f + 1]
          if (more) ahead = this.issue(file, scan.position + bytes, other)
          // The next file is read ahead only when it will be read for certain: when even every
          // record of this chunk leaves the table short of maxEntries.
          else if (next && this.table.size + bytes / RECORD_BYTES < this.opts.maxEntries) ahead = this.issue(next, 0, other)
          this.scanChunk(file, read.buf, bytes, scan, horizon)
          scan.position += bytes
          if (!more) break
        }
        await closeBucket(file)
        // A crash during an append leaves part of a record (its segments were not deleted yet):
        // cut it off, so that the next append starts on a record boundary.
        if (scan.good < scan.position) await coded(file.path, this.opts.fs.truncate(file.path, scan.good))
      }
    } finally {
      // After an error: the read ahead is waited for, and every file still open is closed.
      if (ahead) await ahead.bytes.catch(() => 0)
      for (const file of plan) await closeBucket(file).catch(() => {})
    }
  }

  /** Starts reading a chunk; the outcome (bytes read, or a coded error) is awaited later. */
  private issue(file: Bucket, position: number, buf: Buffer): Read {
    const bytes = (async () => {
      file.fh ??= this.opts.fs.open(file.path, 'r')
      const fh = await file.fh
      // A read may return fewer bytes than asked short of the end (NFS, FUSE, a signal): the
      // chunk is filled, since a short one means the end of the file to readBuckets (which
      // would then stop reading it, and cut it back to its last whole record).
      let n = 0
      for (let r; n < buf.length && (r = (await fh.read(buf, n, buf.length - n, position + n)).bytesRead) > 0;) n += r
      return n
    })().catch((err: unknown) => { throw unreadable(file.path, err) })
    // Awaited later (or, after an error elsewhere, in readBuckets' finally): never unhandled.
    bytes.catch(() => {})
    return { file, position, buf, bytes }
  }

  /**
   * The records of one chunk into the table: a tight loop over the buffer, no allocation, no
   * promise, no string per record. A record failing its checksum is a torn append when only such
   * records follow it; a good record after a bad one is damage and stops the start.
   */
  private scanChunk(file: Bucket, buf: Buffer, bytes: number, scan: Scan, horizon: number): void {
    const v = new DataView(buf.buffer, buf.byteOffset, bytes)
    const whole = bytes - (bytes % RECORD_BYTES)
    const max = this.opts.maxEntries
    let table = this.table
    let maxSeq = this.maxSeq
    let touched = 0
    let skipped = 0
    for (let o = 0; o < whole; o += RECORD_BYTES) {
      if (o % TOUCH_BYTES === 0) {
        for (let p = o; p < Math.min(whole, o + TOUCH_BYTES); p += RECORD_BYTES) touched += table.touch(v.getUint32(p, true))
      }
      const a = v.getUint32(o, true)
      const b = v.getUint32(o + 4, true)
      const c = v.getUint32(o + 8, true)
      const d = v.getUint32(o + 12, true)
      const t0 = v.getUint32(o + 16, true)
      const t1 = v.getUint32(o + 20, true)
      const t2 = v.getUint32(o + 24, true)
      const crc = crcWord(crcWord(crcWord(crcWord(crcWord(crcWord(crcWord(-1, a), b), c), d), t0), t1), t2)
      if (((crc ^ -1) >>> 0) !== v.getUint32(o + 28, true)) {
        if (scan.torn < 0) scan.torn = scan.position + o
        continue
      }
      if (scan.torn >= 0) {
        this.maxSeq = maxSeq
        // A good record after a bad one: not a torn append but damage.
        throw new SpoolStateUnreadable(file.path, 'damaged record', `at byte ${scan.torn}; move the file away to start without the re-send records it holds`)
      }
      scan.good = scan.position + o + RECORD_BYTES
      const at = t0 + (t1 & 0xffff) * 4294967296
      const seq = (t1 >>> 16) + t2 * 65536
      if (seq > maxSeq) maxSeq = seq
      // An all-zero key is a record of a sequence number only (record(), a converted digests.log).
      if (!file.keys || at < horizon || (a | b | c | d) === 0) continue
      // Full: the rest of this file is not kept, and the window starts after the newest key left
      // out, so that what the index claims to recognise, it holds (a key kept from the same
      // second as one left out is not recognised either).
      if (table.size >= max) { if (at > skipped) skipped = at; continue }
      if (!table.fits()) { this.makeRoom(); table = this.table }
      table.setWords(a, b, c, d, Math.max(1, Math.ceil(at / 1000)))
    }
    this.maxSeq = maxSeq
    this.touched = touched
    if (skipped > 0) this.floorMs = Math.max(this.floorMs, (Math.ceil(skipped / 1000) + 1) * 1000)
  }

  /** Writes the keys of segments about to be deleted, durably, before they are. */
  async record(entries: readonly ResendEntry[]): Promise<void> {
    if (entries.length === 0) return
    const { fs } = this.opts
    const byBucket = new Map<number, Buffer[]>()
    const bucket = (start: number): Buffer[] => {
      let list = byBucket.get(start)
      if (!list) byBucket.set(start, list = [])
      return list
    }
    let top = 0
    let topStart = 0
    for (const e of entries) {
      const start = e.committedAt - (e.committedAt % this.bucketMs)
      bucket(start).push(encodeRecord(resendKey(e.dataset, e.digest), e.committedAt, e.seq))
      this.maxSeq = Math.max(this.maxSeq, e.seq)
      if (e.seq > top) { top = e.seq; topStart = start }
    }
    // The newest file is the one kept and read whatever its age: when this call's highest number
    // goes to an older bucket (segments delivered late, with an empty batch's key - number 0 -
    // in the bucket of now), the number goes to the newest too, as a record of its own
    // (all-zero key), or it would leave with its bucket.
    const newest = Math.max(...this.files, ...byBucket.keys())
    if (top > 0 && topStart !== newest) bucket(newest).push(encodeRecord(Buffer.alloc(16), newest, this.maxSeq))
    const unnamed: number[] = []
    for (const [start, records] of byBucket) {
      if (!this.named.has(start)) unnamed.push(start)
      await appendSynced(fs, this.pathOf(start), Buffer.concat(records))
      this.files.add(start)
    }
    if (unnamed.length > 0) {
      await fsyncDir(fs, this.bucketsDir)
      for (const start of unnamed) if (this.files.has(start)) this.named.add(start)
    }
    await this.dropExpired()
  }

  private async dropExpired(): Promise<void> {
    const newest = Math.max(...this.files)
    const horizon = this.horizonMs()
    for (const start of [...this.files]) {
      if (start === newest || start + this.bucketMs >= horizon) continue
      this.named.delete(start)
      await this.opts.fs.rm(this.pathOf(start), { force: true })
      this.files.delete(start)
    }
  }
}
