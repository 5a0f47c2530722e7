// The bug: dead-letter files were named by second, process id and a counter that each
// RotatingFiles started at 1. In a container every run is pid 1, so a run restarted within the
// second took the name of the run before's file: it appended to that file while its own start
// gzipped and removed it (the new lines went with it), or gzipped over that file's .gz. Two
// writers of one process on one folder within a second did the same.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { RotatingFiles, stamp } from '../../src/sinks/file/rotating-files.js'
import { createLogger } from '../../src/observability/index.js'
import { deadLetterFiles, readDeadLetterFile } from '../../src/replay/dead-letters.js'

const log = createLogger('silent')
const options = (dir: string): ConstructorParameters<typeof RotatingFiles>[0] => ({ dir, kind: 'dead-letter', rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: true, log })

/** Every line of every file under `dir`, gzipped or not. */
async function allLines(dir: string): Promise<string[]> {
  const out: string[] = []
  for (const f of await readdir(dir)) {
    const bytes = await readFile(join(dir, f))
    out.push(...(f.endsWith('.gz') ? gunzipSync(bytes) : bytes).toString().split('\n').filter((l) => l !== ''))
  }
  return out.sort()
}

/** The names this process's next files would have had with a counter starting at 1, for this second and the next. */
function namesOfThisRun(n: number): string[] {
  const out: string[] = []
  for (const at of [Date.now(), Date.now() + 1000]) {
    for (let i = 1; i <= n; i++) out.push(`dead-letter-${stamp(new Date(at))}-${process.pid}-${String(i).padStart(6, '0')}.ndjson`)
  }
  return out
}

test('a run restarted within the second keeps the files of the run before: none is appended to or gzipped over', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lpr-dl-names-'))
  const dir = join(root, 'http_requests')
  await mkdir(dir, { recursive: true })
  // What the run before left: files under the names this run would take, one not yet gzipped
  // (killed before its gzip), the others gzipped (the .ndjson gone).
  const before: string[] = []
  for (const [i, name] of namesOfThisRun(40).entries()) {
    const line = `{"before":${i}}`
    before.push(line)
    if (i % 2 === 0) await writeFile(join(dir, name), line + '\n')
    else await writeFile(join(dir, `${name}.gz`), gzipSync(line + '\n'))
  }
  const files = new RotatingFiles({ ...options(root), rotateBytes: 1 })
  await files.init()
  // rotateBytes 1: every append opens a new file.
  const now: string[] = []
  for (let i = 0; i < 20; i++) {
    now.push(`{"now":${i}}`)
    await files.appendText('http_requests', `{"now":${i}}\n`)
  }
  await files.close()
  assert.deepEqual(await allLines(dir), [...before, ...now].sort())
})

test('two writers of one process on one folder within a second keep each other\'s dead letters', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lpr-dl-names-'))
  const first = new RotatingFiles(options(root))
  await first.init()
  await first.appendText('http_requests', '{"writer":1}\n')
  await first.close()
  const second = new RotatingFiles(options(root))
  await second.init()
  await second.appendText('http_requests', '{"writer":2}\n')
  await second.close()
  assert.deepEqual(await allLines(join(root, 'http_requests')), ['{"writer":1}', '{"writer":2}'])
})

test('a run restarted within the second names its files after those of the run before: name order stays arrival order', async () => {
  // The bug: the counter of a new run starts at 1 again, so in a container (every run pid 1) a
  // run restarted within the second named its file ...-1-000001 while the run before had reached
  // ...-1-900000 in that second: readers (replay, in name order) read the newer dead letters first.
  const root = await mkdtemp(join(tmpdir(), 'lpr-dl-names-'))
  const dir = join(root, 'http_requests')
  await mkdir(dir, { recursive: true })
  const start = Date.now()
  const before: Array<{ at: string, raw: string }> = []
  for (let s = 0; s < 6; s++) {
    const at = stamp(new Date(start + s * 1000))
    const raw = `before-${s}`
    before.push({ at, raw })
    await writeFile(join(dir, `dead-letter-${at}-${process.pid}-900000.ndjson`), JSON.stringify({ raw }) + '\n')
  }
  const files = new RotatingFiles({ ...options(root), gzipRotated: false })
  await files.init()
  await files.appendText('http_requests', JSON.stringify({ raw: 'now' }) + '\n')
  await files.close()
  const read: string[] = []
  let written = ''
  for (const file of await deadLetterFiles(dir)) {
    for await (const letter of readDeadLetterFile(file)) {
      read.push(letter.raw)
      if (letter.raw === 'now') written = /dead-letter-(\d{8}T\d{6}Z)-/.exec(file)![1]!
    }
  }
  // The run before left a file in every second this one may have written in.
  const own = before.find((b) => b.at === written)
  assert.ok(own, `'now' written at ${written}, after the seconds the run before covers`)
  assert.ok(read.indexOf('now') > read.indexOf(own.raw), `'now' read before ${own.raw}, its second's file of the run before: ${read.join(' ')}`)
})
