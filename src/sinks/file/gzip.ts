import { createReadStream, createWriteStream } from 'node:fs'
import { open, rename, rm, stat } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'

/** Whether `path` is there; an error other than ENOENT is thrown, not taken for absence. */
export function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, (err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return false; throw err })
}

/**
 * path -> path.gz through a temporary name, fsync'd, then the original removed. Idempotent: a run
 * killed after the rename left both names; the .gz is whole (fsync'd before the rename), and the
 * gzip is simply made again. A file already gone with its .gz present is done.
 */
export async function gzipFile(path: string): Promise<void> {
  const tmp = `${path}.gz.tmp`
  if (!await exists(path) && await stat(`${path}.gz`).then(() => true, () => false)) return
  await pipeline(createReadStream(path), createGzip(), createWriteStream(tmp, { mode: 0o640 }))
  const fh = await open(tmp, 'r')
  try { await fh.sync() } finally { await fh.close() }
  await rename(tmp, `${path}.gz`)
  await rm(path, { force: true })
}
