// Review of the DATA_DIR lock (src/data-dir-lock.ts): users of one process that arrive together,
// and the owner's name when it is written over by a longer or shorter one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DirLock, DirectoryInUse, readLock } from '../../src/data-dir-lock.js'
import { FaultLockFs } from '../helpers/fault-lock-fs.js'

test('two users of one process asking at the same moment share the lock, as they do one after the other', async () => {
  // The bug this pins: both found no holder of this process and opened a descriptor each; the
  // kernel refused the second (an OFD lock conflicts with another descriptor of the same process),
  // which retried until its wait ran out and refused with DirectoryInUse naming its own process,
  // while the same two users one after the other share the lock.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-lock-together-'))
  const path = join(dir, 'service.lock')
  const results = await Promise.allSettled([DirLock.acquire(path, 1000), DirLock.acquire(path, 1000)])
  const refused = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as Error)
  for (const r of results) if (r.status === 'fulfilled') await r.value.release()
  assert.deepEqual(refused.map((e) => e instanceof DirectoryInUse ? e.message : String(e)), [])
  assert.equal(await readLock(path), null, 'free once both let go')
})

test('writes of the owner\'s name by two users of one process do not interleave: the file holds one whole name', async () => {
  // The bug this pins: each write of the name is an emptying then an append (the file is open
  // with O_APPEND); two users writing at once (a second user joining while the first announces)
  // could empty, empty, append, append: two names in the file, which no reader could parse, and a
  // contender was told the owner's name was not there.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-lock-names-'))
  const path = join(dir, 'service.lock')
  // Every call waits a turn of the event loop, so that two writers' calls alternate.
  const fs = new FaultLockFs(async () => { await new Promise((resolve) => setImmediate(resolve)) })
  const a = await DirLock.acquire(path, 0, fs)
  const [b] = await Promise.all([DirLock.acquire(path, 0, fs), a.announce('http://127.0.0.1:1')])
  const text = await readFile(path, 'utf8')
  await b.release()
  await a.release()
  assert.equal(text.trim().split('\n').length, 1, text)
  assert.equal(typeof JSON.parse(text).pid, 'number')
})

test('a longer and then a shorter owner\'s name leaves exactly the last one in the file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-lock-len-'))
  const path = join(dir, 'service.lock')
  // What an earlier owner (killed) left: longer than any name of ours.
  await writeFile(path, JSON.stringify({ pid: 1, host: 'x'.repeat(3000) }) + '\n')
  const a = await DirLock.acquire(path, 0)
  await a.announce(`http://127.0.0.1:1/${'p'.repeat(500)}`)
  await a.announce('http://127.0.0.1:2')
  const text = await readFile(path, 'utf8')
  assert.equal(JSON.parse(text).url, 'http://127.0.0.1:2')
  assert.equal(JSON.parse(text).pid, process.pid)
  await a.release()
  assert.equal(await readFile(path, 'utf8'), '')
})
