// Who owns a directory. The service takes DATA_DIR/service.lock so that two processes never run
// one spool (sequence numbers and segment deletions would collide); `npm run replay` reads it to
// find the running service, or takes it itself to run the service's code in its own process.
//
// The lock is an exclusive open-file-description lock (fcntl F_OFD_SETLK, via
// fs-native-extensions) on the lock file, held for the owner's life. Why not a pid in a file:
// pids mean nothing across pid namespaces (every container's node is pid 1) and a dying owner's
// pid lingers after kill -9. The kernel releases an OFD lock when the owner's last descriptor of
// the file closes, which happens as the process exits, however it dies; the lock holds across
// pid namespaces on one kernel and, on NFS, across hosts (the server's lock manager; a crashed
// client's lock is released at the end of the server's lease, 90 s by default for NFSv4).
// So there is no lease of our own and no stale-lock takeover to race: of any number of processes
// starting against a lock whose owner died, the kernel lets exactly one take it.
//
// The file is never deleted (deleting a lock file lets two processes lock two different files);
// its content names the owner (pid, host, boot id, start time, URL) for messages and clients.
// A leaf: it imports no room (errors.ts is a leaf too).
import { open } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { basename, join } from 'node:path'
import { createRequire } from 'node:module'
import { DataDirLockFailed } from './errors.js'

// fs-native-extensions is CommonJS with prebuilt binaries for linux, darwin and win32.
const fsx = createRequire(import.meta.url)('fs-native-extensions') as {
  tryLock(fd: number, opts?: { shared?: boolean }): boolean
  unlock(fd: number): void
}

// How long acquire() retries a held lock before refusing: covers an owner that was just
// killed (kill -9 lands; its descriptors close a few ms later as it exits) and a client such
// as `npm run replay` that holds a shared lock for a moment while it looks for the owner.
export const LOCK_WAIT_MS = 3000
const RETRY_MS = 50
// The owner's name is a few hundred bytes; more is not ours, and is not read.
const MAX_INFO_BYTES = 4096

/**
 * The file calls of the lock, as an interface: production passes node:fs/promises' open; tests
 * pass one that fails any chosen call or stops the process in it (test/helpers/fault-lock-fs.ts).
 * The handle's `fd` is the real descriptor: the kernel lock is taken on it, never simulated.
 */
export interface LockFileHandle {
  readonly fd: number
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  write(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesWritten: number }>
  truncate(len: number): Promise<void>
  close(): Promise<void>
}

export interface LockFs {
  open(path: string, flags: 'a+' | 'r', mode?: number): Promise<LockFileHandle>
}

const realLockFs: LockFs = { open: async (path, flags, mode) => await open(path, flags, mode) }

export interface LockInfo {
  readonly pid: number
  /** The host's name and its boot id (Linux): a pid is only meaningful on that host and boot. */
  readonly host: string
  readonly bootId: string | null
  /** Unique to this holder: tells two owners with the same pid (pid 1 in two containers) apart. */
  readonly token: string
  readonly since: string
  /** Where the owner answers HTTP (the service, once listening); null otherwise. */
  readonly url: string | null
}

export class DirectoryInUse extends Error {
  constructor (readonly path: string, readonly owner: Partial<LockInfo> | null) {
    super(`${path} is held by ${describe(owner)}; one process at a time may use this directory`)
  }
}

function describe(owner: Partial<LockInfo> | null): string {
  // No name, or not a whole one: an owner that is starting (it writes its name right after
  // taking the lock) or whose write of it failed or hangs. Its bytes are never echoed.
  if (!owner || typeof owner.pid !== 'number') return 'another process (its name is not in the lock file: it is starting, or could not write it)'
  return `process ${owner.pid} on host ${owner.host ?? '?'}${owner.since ? ` since ${owner.since}` : ''}${owner.url ? ` (${owner.url})` : ''}`
}

/** A failed call on the lock file: coded, naming the file by its name only (never a local path). */
function failed(action: string, path: string, err: unknown): Error {
  const code = (err as NodeJS.ErrnoException | null)?.code
  return new DataDirLockFailed(action, basename(path), typeof code === 'string' ? code : 'error')
}

function bootId(): string | null {
  try {
    return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim()
  } catch {
    return null
  }
}

function parse(text: string): Partial<LockInfo> | null {
  try {
    const info = JSON.parse(text) as Partial<LockInfo> | null
    return info && typeof info === 'object' ? info : null
  } catch {
    return null
  }
}

/** The owner's name as the lock file holds it, or null when it cannot be read or parsed. */
async function readInfo(fh: LockFileHandle): Promise<Partial<LockInfo> | null> {
  try {
    const buf = Buffer.alloc(MAX_INFO_BYTES)
    let n = 0
    for (let r; n < buf.length && (r = (await fh.read(buf, n, buf.length - n, n)).bytesRead) > 0;) n += r
    return parse(buf.toString('utf8', 0, n))
  } catch {
    return null
  }
}

interface Holder {
  readonly fh: LockFileHandle
  users: number
  /** The last write of the owner's name: each waits for the one before (see write()). */
  writing: Promise<void>
}

// Locks this process holds, by path. An OFD lock conflicts even with another descriptor of the
// same process, yet several app instances in one process (tests; a replay in-process) may take
// the same directory one after the other: they share the holder.
const held = new Map<string, Holder>()
// Acquires of this process still opening or locking a path: a second user arriving meanwhile
// waits for the first and then shares its holder, as one arriving later does; on its own it
// would lock a second descriptor, which the kernel refuses (it conflicts with our own), and be
// turned away after its wait naming this very process.
const taking = new Map<string, Promise<unknown>>()

/** The live owner of a lock file, or null when nobody holds it. */
export async function readLock(path: string): Promise<Partial<LockInfo> | null> {
  const mine = held.get(path)
  if (mine) return await readInfo(mine.fh)
  let fh: LockFileHandle
  try {
    fh = await realLockFs.open(path, 'r')
  } catch {
    return null
  }
  try {
    // A shared lock is granted only when no owner holds the exclusive one.
    if (fsx.tryLock(fh.fd, { shared: true })) return null
    return await readInfo(fh) ?? { }
  } finally {
    await fh.close().catch(() => {}) // drops the probe's shared lock with the descriptor
  }
}

export class DirLock {
  private info: LockInfo
  private released = false

  private constructor (readonly path: string, private readonly holder: Holder) {
    this.info = { pid: process.pid, host: hostname(), bootId: bootId(), token: randomUUID(), since: new Date().toISOString(), url: null }
  }

  /**
   * Takes the lock, or throws DirectoryInUse naming the owner once `waitMs` passed with
   * another process holding it. A failing file call throws LPR_ERR_DATA_DIR_LOCK_FAILED with
   * the lock not held: nothing of a failed acquire is left behind.
   */
  static async acquire(path: string, waitMs = LOCK_WAIT_MS, fs: LockFs = realLockFs): Promise<DirLock> {
    for (let t; (t = taking.get(path));) await t.catch(() => {})
    const mine = held.get(path)
    if (mine) {
      mine.users++
      return await new DirLock(path, mine).writeOrRelease()
    }
    const taken = DirLock.take(path, waitMs, fs)
    taking.set(path, taken)
    try {
      return await taken
    } finally {
      if (taking.get(path) === taken) taking.delete(path)
    }
  }

  /** acquire() when this process holds no lock on the path yet. */
  private static async take(path: string, waitMs: number, fs: LockFs): Promise<DirLock> {
    // Opened without truncating: the owner's name stays readable to whoever fails to lock.
    let fh: LockFileHandle
    try {
      fh = await fs.open(path, 'a+', 0o600)
    } catch (err) {
      throw failed('open', path, err)
    }
    try {
      const deadline = Date.now() + waitMs
      for (;;) {
        let locked: boolean
        try {
          locked = fsx.tryLock(fh.fd)
        } catch (err) {
          throw failed('lock', path, err)
        }
        if (locked) break
        if (Date.now() >= deadline) throw new DirectoryInUse(path, await readInfo(fh))
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
      }
    } catch (err) {
      await fh.close().catch(() => {})
      throw err
    }
    const holder: Holder = { fh, users: 1, writing: Promise.resolve() }
    held.set(path, holder)
    return await new DirLock(path, holder).writeOrRelease()
  }

  /** A new user's first write of the owner's name; on failure the lock is let go, then it throws. */
  private async writeOrRelease(): Promise<DirLock> {
    try {
      await this.write()
    } catch (err) {
      // Never left held: a descriptor nobody closes would keep the directory locked until
      // this process ends.
      await this.release().catch(() => {})
      throw failed('write the owner of', this.path, err)
    }
    return this
  }

  private async write(): Promise<void> {
    // One write at a time per holder: two users' emptying and appending interleaved would leave
    // two names in the file, which no reader can parse.
    const turn = this.holder.writing.then(async () => { await this.writeNow() })
    this.holder.writing = turn.catch(() => {})
    await turn
  }

  private async writeNow(): Promise<void> {
    // In place, under the lock: the name is advisory (messages, clients), never the lock itself.
    // Appends (the file is open with O_APPEND) to an emptied file: at offset 0.
    const { fh } = this.holder
    await fh.truncate(0)
    const data = Buffer.from(JSON.stringify(this.info) + '\n')
    for (let off = 0; off < data.length;) off += (await fh.write(data, off, data.length - off, off)).bytesWritten
  }

  /** Records where the owner listens, for clients such as `npm run replay`. */
  async announce(url: string): Promise<void> {
    this.info = { ...this.info, url }
    try {
      await this.write()
    } catch (err) {
      throw failed('write the owner of', this.path, err)
    }
  }

  /**
   * Lets go (the last user of this process lets the kernel lock go). The lock is released
   * whatever fails; a failed call is then thrown as LPR_ERR_DATA_DIR_LOCK_FAILED.
   */
  async release(): Promise<void> {
    if (this.released) return
    this.released = true
    const mine = held.get(this.path)
    if (mine !== this.holder) return
    if (--mine.users > 0) return
    held.delete(this.path)
    const { fh } = this.holder
    await this.holder.writing // never fails (see write())
    let failure: Error | null = null
    // Emptied first: a reader that finds the file unlocked or empty sees no owner.
    try { await fh.truncate(0) } catch (err) { failure = failed('empty', this.path, err) }
    try { fsx.unlock(fh.fd) } catch {} // the close below releases it too
    // close(2) frees the descriptor, and with it the lock, even when it reports an error.
    try { await fh.close() } catch (err) { failure ??= failed('close', this.path, err) }
    if (failure) throw failure
  }
}

export function serviceLockPath(dataDir: string): string {
  return join(dataDir, 'service.lock')
}
