// The re-send index of earlier releases, spool/digests.log (text, one line per key), converted
// once into bucket files (resend-index.ts) at start.
import { join } from 'node:path'
import type { Logger } from 'pino'
import { SpoolStateUnreadable } from '../errors.js'
import { errorCode } from './disk-guard.js'
import { fsyncDir, type SpoolFs } from './fs.js'
import { appendSynced, encodeRecord, resendKey } from './resend-record.js'

const READ_CHUNK = 1 << 20

export interface LegacyOptions {
  readonly fs: SpoolFs
  /** The spool directory, where digests.log is. */
  readonly dir: string
  readonly bucketsDir: string
  readonly windowSeconds: number
  readonly bucketMs: number
  readonly log: Logger
  readonly pathOf: (bucketStart: number) => string
  /** Called for each bucket file written to. */
  readonly written: (bucketStart: number) => void
}

/**
 * digests.log of earlier releases ("dataset:digest at seq" per line, "_seq at seq" for the last
 * number): read in pieces (it may be larger than a string can be), written as bucket records,
 * made durable, then removed. A crash in between converts it again: a key twice is harmless.
 */
export async function migrateLegacy(o: LegacyOptions): Promise<void> {
  const { fs } = o
  const legacyPath = join(o.dir, 'digests.log')
  let fh
  try {
    fh = await fs.open(legacyPath, 'r')
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return
    throw new SpoolStateUnreadable(legacyPath, errorCode(err) ?? 'error', (err as Error).message)
  }
  const horizon = Date.now() - o.windowSeconds * 1000
  const byBucket = new Map<number, Buffer[]>()
  const flush = async (): Promise<void> => {
    for (const [start, records] of byBucket) {
      await appendSynced(fs, o.pathOf(start), Buffer.concat(records))
      o.written(start)
    }
    byBucket.clear()
  }
  let pending = 0
  // The highest number of any line, expired or not: the lines appended after the earlier
  // release's last start (its "_seq" line) carry higher ones, and may all have left the window.
  let maxSeq = 0
  const add = async (k: Buffer, atMs: number, seqN: number): Promise<void> => {
    const start = atMs - (atMs % o.bucketMs)
    let list = byBucket.get(start)
    if (!list) byBucket.set(start, list = [])
    list.push(encodeRecord(k, atMs, seqN))
    if (++pending >= 32_768) { pending = 0; await flush() }
  }
  const take = async (line: string): Promise<void> => {
    const [key, at, seq] = line.split(' ')
    // A line torn by a crash during an append is skipped: its segment was not deleted yet.
    if (!key || !at || !Number.isFinite(Number(at)) || (seq !== undefined && !Number.isFinite(Number(seq)))) return
    const atMs = Number(at)
    const seqN = Number(seq ?? 0)
    maxSeq = Math.max(maxSeq, seqN)
    if (key === '_seq' || atMs < horizon) return
    const colon = key.indexOf(':')
    await add(resendKey(key.slice(0, colon), key.slice(colon + 1)), atMs, seqN)
  }
  try {
    const buf = Buffer.alloc(READ_CHUNK)
    let rest = ''
    let position = 0
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, position)
      if (bytesRead === 0) break
      position += bytesRead
      const text = rest + buf.toString('utf8', 0, bytesRead)
      const lines = text.split('\n')
      rest = lines.pop() ?? ''
      for (const line of lines) await take(line)
    }
    await take(rest)
    // The number as a record of its own (all-zero key) in the bucket of now: the newest file,
    // which a start always reads and never deletes, wherever the lines' own times put them.
    if (maxSeq > 0) await add(Buffer.alloc(16), Date.now(), maxSeq)
    await flush()
  } catch (err) {
    throw new SpoolStateUnreadable(legacyPath, errorCode(err) ?? 'error', (err as Error).message)
  } finally {
    await fh.close()
  }
  await fsyncDir(fs, o.bucketsDir)
  await fs.rm(legacyPath, { force: true })
  await fsyncDir(fs, o.dir)
  o.log.info('Converted spool/digests.log of an earlier release into spool/resend/.')
}
