// An in-memory file system for the spool (it implements SpoolFs, which the spool takes as an
// option) that can fail, delay or "lose power" at any chosen call.
//
// Model of durability (strict POSIX, as a power cut on a real disk may show it):
// - a file's bytes survive a crash only as they were at its last fsync (a file never fsync'd
//   comes back empty);
// - a name created, renamed or removed in a directory survives only once that directory is
//   fsync'd (opened 'r' and synced); until then the directory comes back as it was at its last
//   fsync;
// - directories themselves (mkdir) count as durable at once: the spool creates them at start,
//   before anything is written into them.
// Every call passes `hook` first: it may throw (the call fails and does nothing), wait (a delay),
// or call crash(). After a crash this instance answers every call with EIO, like a machine that
// is gone; crash() returns the file system a restart would find.
import { basename, dirname } from 'node:path'
import type { SpoolFileHandle, SpoolFs } from '../../src/spool/fs.js'

export type Op = 'open' | 'write' | 'read' | 'sync' | 'syncDir' | 'truncate' | 'close' | 'rename' | 'rm' | 'mkdir' | 'readdir' | 'readFile' | 'appendFile' | 'stat' | 'statfs'

export interface Call {
  readonly op: Op
  readonly path: string
  /** Position of this call among all calls of this file system. */
  readonly n: number
}

export type Hook = (call: Call, fs: FaultFs) => void | Promise<void>

export function fsError(code: string, op: string, path: string): NodeJS.ErrnoException {
  return Object.assign(new Error(`${code}: ${op} '${path}' (injected)`), { code, syscall: op, path })
}

class Inode {
  data: Buffer = Buffer.alloc(0)
  durable: Buffer | null = null
  mtimeMs = Date.now()
}

class Dir {
  entries = new Map<string, Inode>()
  durable = new Map<string, Inode>()
  // Changes since the last fsync of the directory: applying them is that fsync.
  private readonly changed = new Map<string, Inode | null>()

  set(name: string, inode: Inode): void {
    this.entries.set(name, inode)
    this.changed.set(name, inode)
  }

  delete(name: string): boolean {
    this.changed.set(name, null)
    return this.entries.delete(name)
  }

  sync(): void {
    for (const [name, inode] of this.changed) {
      if (inode) this.durable.set(name, inode)
      else this.durable.delete(name)
    }
    this.changed.clear()
  }
}

export class FaultFs implements SpoolFs {
  private readonly dirs = new Map<string, Dir>()
  private calls = 0
  private dead = false
  hook: Hook | null = null
  /** Bytes all files may hold together; a write beyond fails with ENOSPC. */
  capacityBytes = Infinity
  /** When set, statfs fails with this code. */
  statfsError: string | null = null

  /** The calls so far, for choosing the points of a walk. */
  readonly log: Call[] = []

  private async enter(op: Op, path: string): Promise<void> {
    if (this.dead) throw fsError('EIO', op, path)
    const call = { op, path, n: this.calls++ }
    this.log.push(call)
    await this.hook?.(call, this)
    if (this.dead) throw fsError('EIO', op, path)
  }

  /** Loses power: returns what a restart finds; this instance fails every call from now on. */
  crash(): FaultFs {
    this.dead = true
    const next = new FaultFs()
    const copies = new Map<Inode, Inode>()
    for (const [path, dir] of this.dirs) {
      const d = new Dir()
      for (const [name, inode] of dir.durable) {
        let copy = copies.get(inode)
        if (!copy) {
          copy = new Inode()
          copy.data = Buffer.from(inode.durable ?? Buffer.alloc(0))
          copy.durable = Buffer.from(copy.data)
          copy.mtimeMs = inode.mtimeMs
          copies.set(inode, copy)
        }
        d.entries.set(name, copy)
        d.durable.set(name, copy)
      }
      next.dirs.set(path, d)
    }
    next.capacityBytes = this.capacityBytes
    return next
  }

  get crashed(): boolean { return this.dead }

  /** Bytes held by all files (names not yet durable included). */
  usedBytes(): number {
    const seen = new Set<Inode>()
    let n = 0
    for (const dir of this.dirs.values()) {
      for (const inode of dir.entries.values()) {
        if (!seen.has(inode)) { seen.add(inode); n += inode.data.length }
      }
    }
    return n
  }

  /** The names in a directory now (not what a crash would keep). */
  list(dir: string): string[] {
    return [...(this.dirs.get(dir)?.entries.keys() ?? [])].sort()
  }

  private dirOf(path: string, op: string): Dir {
    const d = this.dirs.get(dirname(path))
    if (!d) throw fsError('ENOENT', op, path)
    return d
  }

  private file(path: string, op: string): Inode {
    const inode = this.dirOf(path, op).entries.get(basename(path))
    if (!inode) throw fsError(this.dirs.has(path) ? 'EISDIR' : 'ENOENT', op, path)
    return inode
  }

  private grow(inode: Inode, end: number, op: string, path: string): void {
    if (end <= inode.data.length) return
    if (this.capacityBytes !== Infinity && this.usedBytes() + end - inode.data.length > this.capacityBytes) throw fsError('ENOSPC', op, path)
    const bigger = Buffer.alloc(end)
    inode.data.copy(bigger)
    inode.data = bigger
  }

  async open(path: string, flags: 'r' | 'w' | 'wx' | 'a', _mode?: number): Promise<SpoolFileHandle> {
    await this.enter('open', path)
    const dir = this.dirs.get(path)
    if (dir) {
      if (flags !== 'r') throw fsError('EISDIR', 'open', path)
      return this.dirHandle(path, dir)
    }
    const parent = this.dirOf(path, 'open')
    let inode = parent.entries.get(basename(path))
    if (flags === 'r' && !inode) throw fsError('ENOENT', 'open', path)
    if (flags === 'wx' && inode) throw fsError('EEXIST', 'open', path)
    if (!inode) {
      inode = new Inode()
      parent.set(basename(path), inode)
    } else if (flags === 'w') {
      inode.data = Buffer.alloc(0)
    }
    return this.fileHandle(path, inode, flags)
  }

  private dirHandle(path: string, dir: Dir): SpoolFileHandle {
    const unsupported = async (): Promise<never> => { throw fsError('EISDIR', 'write', path) }
    return {
      write: unsupported,
      read: unsupported,
      writeFile: unsupported,
      truncate: unsupported,
      sync: async () => {
        await this.enter('syncDir', path)
        dir.sync()
      },
      close: async () => { await this.enter('close', path) }
    }
  }

  private fileHandle(path: string, inode: Inode, flags: string): SpoolFileHandle {
    let pos = flags === 'a' ? inode.data.length : 0
    return {
      write: async (buffer, offset, length) => {
        await this.enter('write', path)
        const at = flags === 'a' ? inode.data.length : pos
        this.grow(inode, at + length, 'write', path)
        buffer.copy(inode.data, at, offset, offset + length)
        pos = at + length
        inode.mtimeMs = Date.now()
        return { bytesWritten: length }
      },
      read: async (buffer, offset, length, position) => {
        await this.enter('read', path)
        const n = Math.max(0, Math.min(length, inode.data.length - position))
        inode.data.copy(buffer, offset, position, position + n)
        return { bytesRead: n }
      },
      writeFile: async (data) => {
        await this.enter('write', path)
        const bytes = Buffer.from(data)
        this.grow(inode, bytes.length, 'write', path)
        inode.data = Buffer.from(bytes)
        inode.mtimeMs = Date.now()
      },
      sync: async () => {
        await this.enter('sync', path)
        inode.durable = Buffer.from(inode.data)
      },
      truncate: async (len = 0) => {
        await this.enter('truncate', path)
        inode.data = Buffer.from(inode.data.subarray(0, len))
      },
      close: async () => { await this.enter('close', path) }
    }
  }

  async rename(from: string, to: string): Promise<void> {
    await this.enter('rename', to)
    const inode = this.file(from, 'rename')
    const target = this.dirOf(to, 'rename')
    this.dirOf(from, 'rename').delete(basename(from))
    target.set(basename(to), inode)
  }

  async rm(path: string, options: { force: true }): Promise<void> {
    await this.enter('rm', path)
    const parent = this.dirs.get(dirname(path))
    const removed = parent?.delete(basename(path)) ?? false
    if (!removed && !options.force) throw fsError('ENOENT', 'rm', path)
  }

  async mkdir(path: string, _options: { recursive: true }): Promise<string | undefined> {
    await this.enter('mkdir', path)
    for (let p = path; !this.dirs.has(p); p = dirname(p)) {
      this.dirs.set(p, new Dir())
      if (dirname(p) === p) break
    }
    return undefined
  }

  async readdir(path: string): Promise<string[]> {
    await this.enter('readdir', path)
    const d = this.dirs.get(path)
    if (!d) throw fsError('ENOENT', 'readdir', path)
    return [...d.entries.keys()]
  }

  async readFile(path: string, _encoding: 'utf8'): Promise<string> {
    await this.enter('readFile', path)
    return this.file(path, 'readFile').data.toString('utf8')
  }

  async appendFile(path: string, data: string): Promise<void> {
    await this.enter('appendFile', path)
    const parent = this.dirOf(path, 'appendFile')
    let inode = parent.entries.get(basename(path))
    if (!inode) {
      inode = new Inode()
      parent.set(basename(path), inode)
    }
    const bytes = Buffer.from(data)
    const at = inode.data.length
    this.grow(inode, at + bytes.length, 'appendFile', path)
    bytes.copy(inode.data, at)
  }

  async truncate(path: string, len: number): Promise<void> {
    await this.enter('truncate', path)
    const inode = this.file(path, 'truncate')
    inode.data = Buffer.from(inode.data.subarray(0, len))
  }

  async stat(path: string): Promise<{ size: number, mtimeMs: number }> {
    await this.enter('stat', path)
    const inode = this.file(path, 'stat')
    return { size: inode.data.length, mtimeMs: inode.mtimeMs }
  }

  async statfs(path: string): Promise<{ bavail: number, bsize: number }> {
    await this.enter('statfs', path)
    if (this.statfsError) throw fsError(this.statfsError, 'statfs', path)
    const free = this.capacityBytes === Infinity ? 1e15 : this.capacityBytes - this.usedBytes()
    return { bavail: Math.max(0, free), bsize: 1 }
  }

  /** Writes a file as if it had been there before (durable), for tests that start from a given state. */
  put(path: string, content: string | Buffer): void {
    const parent = this.dirs.get(dirname(path))
    if (!parent) throw new Error(`no directory ${dirname(path)}`)
    const inode = new Inode()
    inode.data = Buffer.from(content)
    inode.durable = Buffer.from(inode.data)
    parent.set(basename(path), inode)
    parent.durable.set(basename(path), inode)
  }
}
