import { createReadStream, createWriteStream } from 'node:fs'
import { open, rename, rm } from 'node:fs/promises'
import { pipeline } from 'node:stream/promises'
import { createGzip } from 'node:zlib'

/** path -> path.gz through a temporary name, fsync'd, then the original removed. */
export async function gzipFile(path: string): Promise<void> {
  const tmp = `${path}.gz.tmp`
  await pipeline(createReadStream(path), createGzip(), createWriteStream(tmp, { mode: 0o640 }))
  const fh = await open(tmp, 'r')
  try { await fh.sync() } finally { await fh.close() }
  await rename(tmp, `${path}.gz`)
  await rm(path, { force: true })
}
