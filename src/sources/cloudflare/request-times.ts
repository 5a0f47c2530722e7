// When a Logpull collector last asked for a zone's logs, kept in its state directory
// (DATA_DIR/collectors/<name>/logpull-requests.json), so that the per-zone limit (15 requests a
// minute) holds across restarts: a limiter kept only in memory starts empty after a restart and,
// with the requests made just before it, a zone saw 16 in 60 s.
//
// Each request time is written (atomically, fsync'd) before the request is sent: a crash can only
// leave a time of a request that was never made, which errs towards waiting. A file that cannot be
// read counts as a full minute's quota used just now: the collector waits a minute rather than guess.
import { join } from 'node:path'
import { realFs, type SpoolFs } from '../../spool/fs.js'
import { writeAtomic } from '../../spool/spool.js'

export interface RequestTimes {
  /** The request times kept (ms), or null when the record cannot be read (not when it is absent: []). */
  load(): Promise<number[] | null>
  save(times: readonly number[]): Promise<void>
}

export const REQUEST_TIMES_FILE = 'logpull-requests.json'

export function requestTimesFile(dir: string, fs: SpoolFs = realFs): RequestTimes {
  const path = join(dir, REQUEST_TIMES_FILE)
  return {
    async load() {
      let text: string
      try {
        text = await fs.readFile(path, 'utf8')
      } catch (err) {
        return (err as NodeJS.ErrnoException).code === 'ENOENT' ? [] : null
      }
      try {
        const v = JSON.parse(text) as unknown
        if (Array.isArray(v) && v.every((t) => typeof t === 'number' && Number.isFinite(t))) return v as number[]
      } catch { /* damaged: as unreadable */ }
      return null
    },
    async save(times) {
      await fs.mkdir(dir, { recursive: true })
      await writeAtomic(path, JSON.stringify(times) + '\n', fs)
    }
  }
}
