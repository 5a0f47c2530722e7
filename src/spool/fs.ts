// The file-system calls the spool makes, as an interface: production passes node:fs/promises
// itself; tests pass a file system that fails or delays any chosen call, or loses everything
// not yet fsync'd (test/helpers/fault-fs.ts). Only what the spool uses is here.
import * as nodeFs from 'node:fs/promises'

export interface SpoolFileHandle {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>
  writeFile(data: string | Buffer): Promise<void>
  sync(): Promise<void>
  truncate(len?: number): Promise<void>
  close(): Promise<void>
}

export interface SpoolFs {
  open(path: string, flags: 'r' | 'w' | 'wx' | 'a', mode?: number): Promise<SpoolFileHandle>
  rename(from: string, to: string): Promise<void>
  rm(path: string, options: { force: true }): Promise<void>
  mkdir(path: string, options: { recursive: true }): Promise<string | undefined>
  readdir(path: string): Promise<string[]>
  readFile(path: string, encoding: 'utf8'): Promise<string>
  appendFile(path: string, data: string): Promise<void>
  truncate(path: string, len: number): Promise<void>
  stat(path: string): Promise<{ size: number, mtimeMs: number }>
  statfs(path: string): Promise<{ bavail: number, bsize: number }>
}

export const realFs: SpoolFs = nodeFs

/** fsync of a directory: makes the names created, renamed or removed in it survive a power cut. */
export async function fsyncDir(fs: SpoolFs, dir: string): Promise<void> {
  const d = await fs.open(dir, 'r')
  try { await d.sync() } finally { await d.close() }
}

/**
 * Replaces `path` by a new file with `content`, whole or not at all: written and fsync'd under a
 * temp name, then renamed. Durable once the directory is fsync'd (fsyncDir), which a caller
 * replacing several files in one directory does once for all of them.
 */
export async function replaceFile(fs: SpoolFs, path: string, content: string): Promise<void> {
  const tmp = `${path}.tmp`
  const fh = await fs.open(tmp, 'w', 0o600)
  try {
    await fh.writeFile(content)
    await fh.sync()
  } finally {
    await fh.close()
  }
  await fs.rename(tmp, path)
}

/**
 * `fs` with every fsync (of a file or a directory) counted: lpr_spool_fsyncs_total, and what the
 * bench divides by the batches accepted.
 */
export function countingFs(fs: SpoolFs): { readonly fs: SpoolFs, syncs(): number } {
  let syncs = 0
  const counted: SpoolFs = {
    ...fs,
    open: async (path, flags, mode) => {
      const fh = await fs.open(path, flags, mode)
      return {
        write: (b, o, l) => fh.write(b, o, l),
        read: (b, o, l, p) => fh.read(b, o, l, p),
        writeFile: (d) => fh.writeFile(d),
        sync: () => { syncs++; return fh.sync() },
        truncate: (len) => fh.truncate(len),
        close: () => fh.close()
      }
    }
  }
  return { fs: counted, syncs: () => syncs }
}
