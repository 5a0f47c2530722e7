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
// A leaf: it imports no room.
import { open, readFile, type FileHandle } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { hostname } from 'node:os'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { createRequire } from 'node:module'

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
  if (!owner || typeof owner.pid !== 'number') return 'another process (it has not written its name yet)'
  return `process ${owner.pid} on host ${owner.host ?? '?'}${owner.since ? ` since ${owner.since}` : ''}${owner.url ? ` (${owner.url})` : ''}`
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

// Locks this process holds, by path. An OFD lock conflicts even with another descriptor of the
// same process, yet several app instances in one process (tests; a replay in-process) may take
// the same directory one after the other: they share the holder.
const held = new Map<string, { fh: FileHandle, users: number }>()

/** The live owner of a lock file, or null when nobody holds it. */
export async function readLock(path: string): Promise<Partial<LockInfo> | null> {
  const mine = held.get(path)
  if (mine) return parse(await readFile(path, 'utf8').catch(() => ''))
  let fh: FileHandle
  try {
    fh = await open(path, 'r')
  } catch {
    return null
  }
  try {
    // A shared lock is granted only when no owner holds the exclusive one.
    if (fsx.tryLock(fh.fd, { shared: true })) return null
    return parse(await fh.readFile('utf8')) ?? { }
  } finally {
    await fh.close() // drops the probe's shared lock with the descriptor
  }
}

export class DirLock {
  private info: LockInfo

  private constructor (readonly path: string, private readonly fh: FileHandle) {
    this.info = { pid: process.pid, host: hostname(), bootId: bootId(), token: randomUUID(), since: new Date().toISOString(), url: null }
  }

  /**
   * Takes the lock, or throws DirectoryInUse naming the owner once `waitMs` passed with
   * another process holding it.
   */
  static async acquire(path: string, waitMs = LOCK_WAIT_MS): Promise<DirLock> {
    const mine = held.get(path)
    if (mine) {
      mine.users++
      const lock = new DirLock(path, mine.fh)
      await lock.write()
      return lock
    }
    // Opened without truncating: the owner's name stays readable to whoever fails to lock.
    const fh = await open(path, 'a+', 0o600)
    try {
      const deadline = Date.now() + waitMs
      while (!fsx.tryLock(fh.fd)) {
        if (Date.now() >= deadline) throw new DirectoryInUse(path, parse(await readFile(path, 'utf8').catch(() => '')))
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS))
      }
    } catch (err) {
      await fh.close()
      throw err
    }
    held.set(path, { fh, users: 1 })
    const lock = new DirLock(path, fh)
    await lock.write()
    return lock
  }

  private async write(): Promise<void> {
    // In place, under the lock: the name is advisory (messages, clients), never the lock itself.
    await this.fh.truncate(0)
    await this.fh.write(JSON.stringify(this.info) + '\n', 0)
  }

  /** Records where the owner listens, for clients such as `npm run replay`. */
  async announce(url: string): Promise<void> {
    this.info = { ...this.info, url }
    await this.write()
  }

  async release(): Promise<void> {
    const mine = held.get(this.path)
    if (!mine || mine.fh !== this.fh) return
    if (--mine.users > 0) return
    held.delete(this.path)
    // Emptied first: a reader that finds the file unlocked or empty sees no owner.
    await this.fh.truncate(0).catch(() => {})
    fsx.unlock(this.fh.fd)
    await this.fh.close()
  }
}

export function serviceLockPath(dataDir: string): string {
  return join(dataDir, 'service.lock')
}
