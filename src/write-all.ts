/** What writeAll needs of a file handle (node's FileHandle, or the spool's SpoolFileHandle). */
export interface Writable {
  write(buffer: Buffer, offset: number, length: number): Promise<{ bytesWritten: number }>
}

/** A write can be short (a nearly full disk): keep writing until all of it is down, or fail. */
export async function writeAll(fh: Writable, data: Buffer): Promise<void> {
  let at = 0
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at)
    if (bytesWritten === 0) throw Object.assign(new Error('no progress writing to disk'), { code: 'EIO' })
    at += bytesWritten
  }
}
