// The durable record of a dataset's replays, under DATA_DIR/replay/<dataset>/:
//
//   replayed.log   one id per line: the lines already ingested by a replay (fsync'd appends)
//   pending.json   the batch being replayed now: {"ids":[...],"body":"<the exact bytes sent>"}
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
import { createHash } from 'node:crypto'
import { appendFile, mkdir, open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'

export function lineId(dataset: string, raw: string): string {
  return createHash('sha256').update(dataset).update('\n').update(raw).digest('base64url').slice(0, 22)
}

export interface Pending {
  readonly ids: readonly string[]
  readonly body: string
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r')
  try { await fh.sync() } finally { await fh.close() }
}

export class Ledger {
  private readonly replayed = new Set<string>()
  private readonly logPath: string
  private readonly pendingPath: string

  constructor (readonly dir: string) {
    this.logPath = join(dir, 'replayed.log')
    this.pendingPath = join(dir, 'pending.json')
  }

  async load(): Promise<void> {
    await mkdir(this.dir, { recursive: true })
    let text = ''
    try { text = await readFile(this.logPath, 'utf8') } catch {}
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
    try {
      return JSON.parse(await readFile(this.pendingPath, 'utf8')) as Pending
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null
      throw err
    }
  }

  async begin(p: Pending): Promise<void> {
    const tmp = `${this.pendingPath}.tmp`
    const fh = await open(tmp, 'w', 0o600)
    try {
      await fh.writeFile(JSON.stringify(p))
      await fh.sync()
    } finally {
      await fh.close()
    }
    await rename(tmp, this.pendingPath)
    await fsyncPath(this.dir)
  }

  /** The pending batch is in the spool: its ids are recorded, then it is no longer pending. */
  async finish(p: Pending): Promise<void> {
    // A new line first, in case the last append was torn.
    await appendFile(this.logPath, '\n' + p.ids.join('\n') + '\n', { mode: 0o600 })
    await fsyncPath(this.logPath)
    for (const id of p.ids) this.replayed.add(id)
    await rm(this.pendingPath, { force: true })
    await fsyncPath(this.dir)
  }
}
