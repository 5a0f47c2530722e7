// The durable record of a dataset's replays, under DATA_DIR/replay/<dataset>/:
//
//   replayed.log   one id per line: the lines already ingested by a replay (fsync'd appends)
//   pending.json   the batch being replayed now: {"ids":[...],"body":"<the exact bytes sent>","requestId":"..."}
//
// A batch is first written to pending.json (atomically: temporary file, fsync, rename), then
// sent, then its ids are appended to replayed.log, then pending.json is removed. A replay that
// finds pending.json was interrupted somewhere in between, so it sends the very same body again
// first: if the service had stored it, the body's digest makes it a re-send (answered
// "duplicate", not stored twice, within DEDUPE_WINDOW_SECONDS); if not, it is stored now.
//
// An id is a line's identity: SHA-256 of the dataset and the raw line, 128 bits kept, so the
// same line dead-lettered twice (a Logpush re-send of a batch) is replayed once, whichever file
// or rotation holds it. The ids of replayed lines are held in memory (about 100 bytes each).
//
// Every call goes through the injectable file system (SpoolFs), so the fault and power-cut walks
// cover the ledger; a ledger that cannot be read (EIO, a pending.json that does not parse) stops
// the replay with LPR_ERR_REPLAY_LEDGER_UNREADABLE rather than replaying every line again.
import { createHash } from 'node:crypto'
import { join } from 'node:path'
import { ReplayLedgerUnreadable } from '../errors.js'
import { fsyncDir, realFs, type SpoolFs } from '../spool/fs.js'
import { writeAll } from '../write-all.js'

export function lineId(dataset: string, raw: string): string {
  return createHash('sha256').update(dataset).update('\n').update(raw).digest('base64url').slice(0, 22)
}

export interface Pending {
  readonly ids: readonly string[]
  readonly body: string
  /**
   * The X-Request-Id it is sent under, again when re-sent: the service dead-letters the lines it
   * refuses under it, and answers a re-send of a stored batch "duplicate" without dead-lettering
   * them again, so only this id finds them then. Absent in a pending.json of an older version.
   */
  readonly requestId?: string
}


export class Ledger {
  private readonly replayed = new Set<string>()
  private readonly logPath: string
  private readonly pendingPath: string

  constructor (readonly dir: string, private readonly fs: SpoolFs = realFs) {
    this.logPath = join(dir, 'replayed.log')
    this.pendingPath = join(dir, 'pending.json')
  }

  async load(): Promise<void> {
    await this.fs.mkdir(this.dir, { recursive: true })
    let text = ''
    try {
      text = await this.fs.readFile(this.logPath, 'utf8')
    } catch (err) {
      // Only a ledger that does not exist is a first replay: an unreadable one would replay every line again.
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'ENOENT') throw new ReplayLedgerUnreadable(this.logPath, code ?? 'error')
    }
    // A torn last line (a crash during an append) is not a whole id: it is ignored, and the
    // batch it belonged to is still pending.
    for (const id of text.split('\n')) if (id.length === 22) this.replayed.add(id)
  }

  has(id: string): boolean {
    return this.replayed.has(id)
  }

  get size(): number {
    return this.replayed.size
  }

  async pending(): Promise<Pending | null> {
    let text: string
    try {
      text = await this.fs.readFile(this.pendingPath, 'utf8')
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'ENOENT') return null
      throw new ReplayLedgerUnreadable(this.pendingPath, code ?? 'error')
    }
    let p: Partial<Pending> | null = null
    try { p = JSON.parse(text) as Partial<Pending> } catch { /* below */ }
    // Written atomically: a pending.json that does not parse is damage, not an interrupted write.
    if (!p || !Array.isArray(p.ids) || typeof p.body !== 'string' || (p.requestId !== undefined && typeof p.requestId !== 'string')) throw new ReplayLedgerUnreadable(this.pendingPath, 'EINVAL')
    return p as Pending
  }

  async begin(p: Pending): Promise<void> {
    const tmp = `${this.pendingPath}.tmp`
    const fh = await this.fs.open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(p))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await this.fs.rename(tmp, this.pendingPath)
    await fsyncDir(this.fs, this.dir)
  }

  /** The pending batch is in the spool: its ids are recorded, then it is no longer pending. */
  async finish(p: Pending): Promise<void> {
    // A new line first, in case the last append was torn.
    const fh = await this.fs.open(this.logPath, 'a', 0o600)
    try {
      await writeAll(fh, Buffer.from('\n' + p.ids.join('\n') + '\n'))
      await fh.sync()
    } finally {
      await fh.close()
    }
    // The log may be new: its name must be durable before pending.json goes.
    await fsyncDir(this.fs, this.dir)
    for (const id of p.ids) this.replayed.add(id)
    await this.fs.rm(this.pendingPath, { force: true })
    await fsyncDir(this.fs, this.dir)
  }
}
