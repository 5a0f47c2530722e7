// Reading the dead-letter store: DATA_DIR/dead-letter/<dataset>/*.ndjson and, once rotated,
// *.ndjson.gz, in name order (the names sort by time), one dead letter per line. Files are
// streamed, never read whole; a file the service is still appending to is read up to its
// current end (a partly written last line is left for the next run).
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { createGunzip } from 'node:zlib'
import type { Readable } from 'node:stream'
import type { DeadLetter } from '../spool/index.js'

export async function deadLetterFiles(dir: string): Promise<string[]> {
  let names: string[]
  try {
    names = await readdir(dir)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return []
    throw err
  }
  return names.filter((f) => f.endsWith('.ndjson') || f.endsWith('.ndjson.gz')).sort().map((f) => join(dir, f))
}

/**
 * The dead letters of one file; lines that are not a whole dead letter are skipped, and so are
 * dead letters kept as `rawBase64` (bytes that are not UTF-8): no schema makes those valid, so a
 * replay leaves them where they are.
 */
export async function * readDeadLetterFile(path: string): AsyncGenerator<DeadLetter & { readonly raw: string }> {
  let input: Readable = createReadStream(path)
  // A file gzipped in the background between listing and opening is read in its new form.
  const opened = await new Promise<Error | null>((resolve) => { input.once('open', () => resolve(null)); input.once('error', resolve) })
  if (opened) {
    if ((opened as NodeJS.ErrnoException).code === 'ENOENT' && !path.endsWith('.gz')) {
      yield * readDeadLetterFile(`${path}.gz`)
      return
    }
    if ((opened as NodeJS.ErrnoException).code === 'ENOENT') return
    throw opened
  }
  if (path.endsWith('.gz')) input = input.pipe(createGunzip())
  for await (const line of createInterface({ input, crlfDelay: Infinity })) {
    let letter: DeadLetter & { readonly raw: string }
    try {
      letter = JSON.parse(line) as DeadLetter & { readonly raw: string }
    } catch {
      continue
    }
    if (letter !== null && typeof letter === 'object' && typeof letter.raw === 'string') yield letter
  }
}
