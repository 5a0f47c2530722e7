// Streams over the injectable file system (src/spool/fs.ts SpoolFs), for the state files a source
// writes and reads as streams (a collector's staged windows): so the fault and power-cut walks
// reach them as they reach the spool, rather than node:fs streams no test can fail.
import { Readable, Writable } from 'node:stream'
import type { SpoolFileHandle, SpoolFs } from '../spool/fs.js'
import { writeAll } from '../write-all.js'

/** A new file (it must not exist); fsync'd before 'finish', closed at the end either way. */
export function fileWriteStream(fs: SpoolFs, path: string): Writable {
  let fh: SpoolFileHandle | null = null
  return new Writable({
    construct (done) {
      fs.open(path, 'w', 0o600).then((h) => { fh = h; done() }, done)
    },
    write (chunk: Buffer, _enc, done) {
      writeAll(fh!, chunk).then(() => done(), done)
    },
    final (done) {
      fh!.sync().then(() => done(), done)
    },
    destroy (err, done) {
      const h = fh
      fh = null
      if (!h) return done(err)
      h.close().then(() => done(err), (closeErr: Error) => done(err ?? closeErr))
    }
  })
}

const PIECE = 64 * 1024

/** A file's bytes from the start, in pieces of 64 KiB. */
export function fileReadStream(fs: SpoolFs, path: string): Readable {
  let fh: SpoolFileHandle | null = null
  let position = 0
  return new Readable({
    construct (done) {
      fs.open(path, 'r').then((h) => { fh = h; done() }, done)
    },
    read () {
      const buf = Buffer.allocUnsafe(PIECE)
      fh!.read(buf, 0, PIECE, position).then(({ bytesRead }) => {
        position += bytesRead
        this.push(bytesRead > 0 ? buf.subarray(0, bytesRead) : null)
      }, (err: Error) => this.destroy(err))
    },
    destroy (err, done) {
      const h = fh
      fh = null
      if (!h) return done(err)
      h.close().then(() => done(err), (closeErr: Error) => done(err ?? closeErr))
    }
  })
}
