// The DATA_DIR lock's file layer (LockFs, src/data-dir-lock.ts) over the real file system, with a
// hook before every call that may fail it (throw), delay it, or stop the process in it. The
// descriptors are real, so the kernel lock taken on them is real too: only the file calls are
// under the test's control.
import { open, type FileHandle } from 'node:fs/promises'
import type { LockFileHandle, LockFs } from '../../src/data-dir-lock.js'

export type LockOp = 'open' | 'read' | 'write' | 'truncate' | 'close'

export interface LockCall {
  readonly op: LockOp
  readonly path: string
  /** Position of this call among all calls of this file layer. */
  readonly n: number
  /** The real handle (absent for open): lets a hook do part of the call itself, e.g. a torn write. */
  readonly handle?: FileHandle
  /** For a write: what it was about to write. */
  readonly data?: Buffer
}

export type LockHook = (call: LockCall) => void | Promise<void>

export class FaultLockFs implements LockFs {
  private calls = 0
  readonly log: LockCall[] = []

  constructor (public hook: LockHook | null = null) {}

  private async enter(op: LockOp, path: string, handle?: FileHandle, data?: Buffer): Promise<void> {
    const call = { op, path, n: this.calls++, ...(handle ? { handle } : {}), ...(data ? { data } : {}) }
    this.log.push(call)
    await this.hook?.(call)
  }

  async open(path: string, flags: 'a+' | 'r', mode?: number): Promise<LockFileHandle> {
    await this.enter('open', path)
    const fh = await open(path, flags, mode)
    return {
      fd: fh.fd,
      read: async (buffer, offset, length, position) => {
        await this.enter('read', path, fh)
        return await fh.read(buffer, offset, length, position)
      },
      write: async (buffer, offset, length, position) => {
        await this.enter('write', path, fh, buffer.subarray(offset, offset + length))
        return await fh.write(buffer, offset, length, position)
      },
      truncate: async (len) => {
        await this.enter('truncate', path, fh)
        await fh.truncate(len)
      },
      close: async () => {
        // A close that fails still frees the descriptor (close(2) always does): so here too.
        try { await this.enter('close', path, fh) } finally { await fh.close() }
      }
    }
  }
}
