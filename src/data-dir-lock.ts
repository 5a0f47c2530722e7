// Who owns a directory: a small JSON file holding the owner's pid (with its start time, so a
// recycled pid is not mistaken for the owner) and, for the service, the URL it listens on.
// The service takes DATA_DIR/service.lock so that two processes never run one spool (sequence
// numbers and segment deletions would collide); `npm run replay` reads it to find the running
// service, or takes it itself to run the service's code in its own process. A lock left by a
// process that died (kill -9) is stale and taken over. A leaf: it imports no room.
import { open, readFile, rename, rm } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface LockInfo {
  readonly pid: number
  /** Start time of the pid, in clock ticks since boot (Linux); null where /proc is absent. */
  readonly started: string | null
  /** Where the owner answers HTTP (the service, once listening); null otherwise. */
  readonly url: string | null
}

export class DirectoryInUse extends Error {
  constructor (readonly path: string, readonly owner: LockInfo) {
    super(`${path} is held by process ${owner.pid}${owner.url ? ` (${owner.url})` : ''}; one process at a time may use this directory`)
  }
}

/** The start time of a process from /proc/<pid>/stat (field 22), or null. */
function startTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) may hold spaces and parentheses: count from its closing one.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] ?? null
  } catch {
    return null
  }
}

function alive(info: LockInfo): boolean {
  try {
    process.kill(info.pid, 0)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  // A pid that now belongs to another process is not the owner.
  return info.started === null || startTime(info.pid) === null || startTime(info.pid) === info.started
}

/** The live owner of a lock file, or null when there is none or it died. */
export async function readLock(path: string): Promise<LockInfo | null> {
  let info: LockInfo
  try {
    info = JSON.parse(await readFile(path, 'utf8')) as LockInfo
  } catch {
    return null
  }
  return typeof info.pid === 'number' && alive(info) ? info : null
}

async function writeAtomic(path: string, info: LockInfo): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`
  const fh = await open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(JSON.stringify(info) + '\n')
    await fh.sync()
  } finally {
    await fh.close()
  }
  await rename(tmp, path)
}

export class DirLock {
  private info: LockInfo

  private constructor (readonly path: string) {
    this.info = { pid: process.pid, started: startTime(process.pid), url: null }
  }

  /**
   * Takes the lock, or throws DirectoryInUse when another live process holds it. This process
   * may take it again (several app instances in one test process, a container's pid 1 restarted).
   */
  static async acquire(path: string): Promise<DirLock> {
    const lock = new DirLock(path)
    try {
      const fh = await open(path, 'wx', 0o600)
      try { await fh.writeFile(JSON.stringify(lock.info) + '\n') } finally { await fh.close() }
      return lock
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
    }
    const owner = await readLock(path)
    if (owner && owner.pid !== process.pid) throw new DirectoryInUse(path, owner)
    await writeAtomic(path, lock.info)
    return lock
  }

  /** Records where the owner listens, for clients such as `npm run replay`. */
  async announce(url: string): Promise<void> {
    this.info = { ...this.info, url }
    await writeAtomic(this.path, this.info)
  }

  async release(): Promise<void> {
    // Only our own lock: another instance in this process may have taken it over meanwhile.
    const now = await readLock(this.path)
    if (now && now.pid === process.pid && now.url === this.info.url) await rm(this.path, { force: true })
  }
}

export function serviceLockPath(dataDir: string): string {
  return join(dataDir, 'service.lock')
}
