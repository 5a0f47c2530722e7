// The bug: after a kill -9 during the gzip of a rotated events file, the next start restarted that
// gzip and then, in the same pass over the folder, removed the half-written .gz.tmp (it sorts after
// its .ndjson) from under it, so the gzip failed with ENOENT at every start and the file stayed
// uncompressed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { FileSink } from '../../src/sinks/file/sink.js'
import { RotatingFiles } from '../../src/sinks/file/rotating-files.js'
import { createLogger } from '../../src/observability/index.js'

const log = createLogger('silent')
const lines = Array.from({ length: 20_000 }, (_, i) => JSON.stringify({ i, pad: 'x'.repeat(40) })).join('\n') + '\n'

async function killedDuringGzip(dir: string, name: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, name), lines)
  // What a kill -9 in the middle of the gzip leaves: a part of the compressed temporary file.
  await writeFile(join(dir, `${name}.gz.tmp`), Buffer.from([0x1f, 0x8b, 0x08, 0x00]))
}

test('the events files: a gzip killed half-way is done at the next start', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lpr-gzip-recovery-'))
  const dir = join(root, 'http_requests')
  const name = 'events-0000000001-20261207T000000Z.ndjson'
  await killedDuringGzip(dir, name)
  const sink = new FileSink({ dir: root, rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: true, log })
  await sink.init(undefined)
  await sink.close()
  assert.deepEqual((await readdir(dir)).sort(), [`${name}.gz`])
  assert.equal(gunzipSync(await readFile(join(dir, `${name}.gz`))).toString(), lines)
})

test('the dead-letter files: a gzip killed half-way is done at the next start', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lpr-gzip-recovery-dl-'))
  const dir = join(root, 'http_requests')
  const name = 'dead-letter-20261207T000000Z-1-000001.ndjson'
  await killedDuringGzip(dir, name)
  const files = new RotatingFiles({ dir: root, kind: 'dead-letter', rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: true, log })
  await files.init()
  await files.close()
  assert.deepEqual((await readdir(dir)).sort(), [`${name}.gz`])
  assert.equal(gunzipSync(await readFile(join(dir, `${name}.gz`))).toString(), lines)
})

// Not a failure of the old code (it also re-made the .gz): keeps the other half-way point, after
// the rename and before the original's removal, recoverable with the new early return in gzipFile.
test('a gzip killed after its rename (both names left) is made again, not failed', async () => {
  const root = await mkdtemp(join(tmpdir(), 'lpr-gzip-recovery-both-'))
  const dir = join(root, 'http_requests')
  const name = 'events-0000000001-20261207T000000Z.ndjson'
  await mkdir(dir, { recursive: true })
  await writeFile(join(dir, name), lines)
  await writeFile(join(dir, `${name}.gz`), Buffer.from([0x1f, 0x8b]))
  const sink = new FileSink({ dir: root, rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: true, log })
  await sink.init(undefined)
  await sink.close()
  assert.deepEqual((await readdir(dir)).sort(), [`${name}.gz`])
  assert.equal(gunzipSync(await readFile(join(dir, `${name}.gz`))).toString(), lines)
})
