// The durable progress record of one bucket source: which objects, by (key, ETag), are settled.
//
// Invariants
// - An object is recorded "done" only after its batch is durable in the spool (the caller's
//   order). A crash between the two leaves the object unrecorded; it is read again and the spool
//   recognises its (bucket, key, ETag) digest, so it is not stored twice.
// - Rows belong to a date prefix. `closedThrough` is the last UTC day whose prefix is closed:
//   every date up to it is never listed again, and its rows are gone. That keeps the record to the
//   open days, whatever the months behind.
// - The file is an append-only log of JSON lines, fsync'd per append (appends that meet share one
//   fsync). A torn last line (kill -9 mid-append) is ignored at load. Closing a date rewrites the
//   file atomically with what is left.
//
// - A record that cannot be read (EIO, a header that is not ours) is never reset nor rewritten:
//   load throws SourceStateUnreadable and the source stops, shown in /health. Starting afresh would
//   move closedThrough to "today minus the look-back" and skip every day between, silently.
// - Every call goes through the injectable file system (SpoolFs), so the fault and power-cut walks
//   cover this record as they cover the spool.
//
//   line := {"closedThrough":"YYYYMMDD","bucket":…,"prefix":…}      first line
//         | {"d":"YYYYMMDD","k":key,"e":etag,"s":"done"|"failed"|"challenge","m":lastModifiedMs,"n":lines,"c":code}
import { basename, join } from 'node:path'
import { SourceStateUnreadable } from '../../errors.js'
import { fsyncDir, realFs, type SpoolFileHandle, type SpoolFs } from '../../spool/fs.js'
import { writeAll } from '../../write-all.js'

export type RowStatus = 'done' | 'failed' | 'challenge'

export interface Row {
  readonly etag: string
  readonly status: RowStatus
  readonly lastModified: number
  readonly lines: number
  readonly code?: string
}

interface Header {
  readonly closedThrough: string
  readonly bucket: string
  readonly prefix: string
}

interface RowLine {
  readonly d: string
  readonly k: string
  readonly e: string
  readonly s: RowStatus
  readonly m: number
  readonly n: number
  readonly c?: string
}

export class ProgressRecord {
  private readonly path: string
  private readonly rows = new Map<string, Map<string, Row>>() // date -> key -> row
  private header: Header = { closedThrough: '00000000', bucket: '', prefix: '' }
  private fh: SpoolFileHandle | null = null
  private pending: Array<{ line: string, resolve: () => void, reject: (err: unknown) => void }> = []
  private writing: Promise<void> | null = null
  /** Whether the record was new at load (the first start of this source). */
  fresh = false

  constructor (private readonly dir: string, private readonly fs: SpoolFs = realFs) {
    this.path = join(dir, 'progress.log')
  }

  /** Loads the record; `initialClosedThrough` applies when there is none (or it was for another bucket or prefix). */
  async load(bucket: string, prefix: string, initialClosedThrough: string): Promise<void> {
    await this.fs.mkdir(this.dir, { recursive: true })
    let text: string | null = null
    try {
      text = await this.fs.readFile(this.path, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      // Only a record that does not exist is a first start; any other failure is a disk to fix.
      if (code !== 'ENOENT') throw new SourceStateUnreadable(this.path, code ?? 'error', basename(this.dir))
    }
    // The record is only ever written whole with its header (rewrite): one that exists but is
    // empty was zeroed or cut short, and is damage like any other, never a first start.
    if (text === '') throw new SourceStateUnreadable(this.path, 'EINVAL: the record is empty', basename(this.dir))
    const lines = (text ?? '').split('\n')
    let header: Header | null = null
    if (text !== null) {
      // The header is only ever written by an atomic rewrite: a header that does not parse is damage, not a torn append.
      try { header = JSON.parse(lines[0]!) as Header } catch {}
      if (!header || typeof header.closedThrough !== 'string' || !/^\d{8}$/.test(header.closedThrough) || typeof header.bucket !== 'string' || typeof header.prefix !== 'string') {
        throw new SourceStateUnreadable(this.path, 'EINVAL: the first line is not a progress header', basename(this.dir))
      }
    }
    if (!header || header.bucket !== bucket || header.prefix !== prefix) {
      this.fresh = true
      this.header = { closedThrough: initialClosedThrough, bucket, prefix }
    } else {
      this.header = header
      for (const line of lines.slice(1)) {
        let r: RowLine
        // A torn line from a crash mid-append: that row was never acknowledged to anyone.
        try { r = JSON.parse(line) as RowLine } catch { continue }
        if (typeof r?.d !== 'string' || r.d <= this.header.closedThrough) continue
        this.set(r.d, r.k, { etag: r.e, status: r.s, lastModified: r.m, lines: r.n, ...(r.c ? { code: r.c } : {}) })
      }
    }
    await this.rewrite()
  }

  get closedThrough(): string { return this.header.closedThrough }

  get(date: string, key: string): Row | undefined {
    return this.rows.get(date)?.get(key)
  }

  /** Rows of one open date (for the closing check). */
  rowsOf(date: string): ReadonlyMap<string, Row> {
    return this.rows.get(date) ?? new Map()
  }

  /** How many rows the record holds (the 60-day test watches it stay bounded). */
  size(): number {
    let n = 0
    for (const m of this.rows.values()) n += m.size
    return n
  }

  openDates(): string[] {
    return [...this.rows.keys()].sort()
  }

  /** Records a settled object durably. */
  async mark(date: string, key: string, row: Row): Promise<void> {
    const line: RowLine = { d: date, k: key, e: row.etag, s: row.status, m: row.lastModified, n: row.lines, ...(row.code ? { c: row.code } : {}) }
    await new Promise<void>((resolve, reject) => {
      this.pending.push({ line: JSON.stringify(line) + '\n', resolve, reject })
      this.writing ??= this.flush().finally(() => { this.writing = null })
    })
    this.set(date, key, row)
  }

  /** Closes every date up to `date`: never listed again, rows pruned, file rewritten. */
  async close(date: string): Promise<void> {
    if (date <= this.header.closedThrough) return
    await this.writing
    this.header = { ...this.header, closedThrough: date }
    for (const d of [...this.rows.keys()]) if (d <= date) this.rows.delete(d)
    await this.rewrite()
  }

  async closeFile(): Promise<void> {
    await this.writing
    await this.fh?.close()
    this.fh = null
  }

  private set(date: string, key: string, row: Row): void {
    let m = this.rows.get(date)
    if (!m) this.rows.set(date, (m = new Map()))
    m.set(key, row)
  }

  private async flush(): Promise<void> {
    while (this.pending.length > 0) {
      const group = this.pending
      this.pending = []
      try {
        this.fh ??= await this.fs.open(this.path, 'a', 0o600)
        const bytes = Buffer.from(group.map((p) => p.line).join(''))
        await writeAll(this.fh, bytes)
        await this.fh.sync()
        for (const p of group) p.resolve()
      } catch (err) {
        for (const p of group) p.reject(err)
      }
    }
  }

  /** The header and the rows of the open dates, replacing the file atomically. */
  private async rewrite(): Promise<void> {
    await this.fh?.close()
    this.fh = null
    const out = [JSON.stringify(this.header)]
    for (const [d, m] of this.rows) {
      for (const [k, r] of m) out.push(JSON.stringify({ d, k, e: r.etag, s: r.status, m: r.lastModified, n: r.lines, ...(r.code ? { c: r.code } : {}) } satisfies RowLine))
    }
    const tmp = `${this.path}.tmp`
    const fh = await this.fs.open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(out.join('\n') + '\n')
      await fh.sync()
    } finally {
      await fh.close()
    }
    await this.fs.rename(tmp, this.path)
    await fsyncDir(this.fs, this.dir)
  }
}
