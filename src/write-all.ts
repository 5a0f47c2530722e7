import type { FileHandle } from 'node:fs/promises'

/** A write can be short (a nearly full disk): keep writing until all of it is down, or fail. */
export async function writeAll(fh: FileHandle, data: Buffer): Promise<void> {
  let at = 0
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at)
    if (bytesWritten === 0) throw Object.assign(new Error('no progress writing to disk'), { code: 'EIO' })
    at += bytesWritten
  }
}
