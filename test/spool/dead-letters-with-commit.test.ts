// The bug: a batch's dead letters were appended to the dead-letter store before its segment was
// committed and never taken back, so a re-send racing its original (answered as a duplicate) and
// a failed commit (answered 503, which promises nothing was stored) both left them stored, and
// the re-send of the failed batch stored them a second time.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, readFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createLogger } from '../../src/observability/index.js'
import { RotatingFiles } from '../../src/sinks/index.js'
import { RecentDeadLetters } from '../../src/status/index.js'
import { committer } from '../../src/compose/commit.js'
import type { Spool } from '../../src/spool/index.js'
import { Spool as SpoolImpl } from '../../src/spool/index.js'
import { realFs, type SpoolFs } from '../../src/spool/fs.js'
import { fsError } from '../helpers/fault-fs.js'
import { DATASET } from '../helpers/spool-harness.js'

const log = createLogger('silent')

// The dead-letter store reads the staged file with node:fs, so the spool is on the real disk here;
// only its rename into segments/ can be made to fail.
async function setUp(t: { after: (fn: () => Promise<void>) => void }): Promise<{ fs: { failRename: boolean }, spool: Spool, commit: ReturnType<typeof committer>, stored: () => Promise<string[]> }> {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-dl-commit-'))
  const fs = { failRename: false }
  const spoolFs: SpoolFs = {
    ...realFs,
    rename: async (from, to) => {
      if (fs.failRename && to.includes('/segments/')) throw fsError('EIO', 'rename', to)
      await realFs.rename(from, to)
    }
  }
  const spool = new SpoolImpl({ dir: join(dir, 'spool'), highWatermarkBytes: 1e12, lowWatermarkBytes: 0, minFreeBytes: 0, dedupeSeconds: 3600, log, fs: spoolFs })
  await spool.init()
  spool.expectConsumers([])
  const deadLetters = new RotatingFiles({ dir: join(dir, 'dead-letter'), kind: 'dead-letter', rotateBytes: 1 << 20, rotateMs: 3_600_000, gzipRotated: false, log })
  await deadLetters.init()
  t.after(async () => { await deadLetters.close() })
  const commit = committer({ deadLetters, recentDeadLetters: new RecentDeadLetters(10, new Set([DATASET])), log })
  const stored = async (): Promise<string[]> => {
    const out: string[] = []
    for (const f of await readdir(join(dir, 'dead-letter', DATASET)).catch(() => [] as string[])) out.push(...(await readFile(join(dir, 'dead-letter', DATASET, f), 'utf8')).split('\n').filter(Boolean))
    return out
  }
  return { fs, spool, commit, stored }
}

/** One request's batch: two valid lines, two refused ones. */
async function batchOf(spool: Spool, tag: string): Promise<Awaited<ReturnType<Spool['open']>>> {
  const batch = await spool.open(DATASET, `req-${tag}`)
  batch.writeEvent('{"RayID":"a"}')
  batch.writeEvent('{"RayID":"b"}')
  for (const line of [2, 4]) await batch.writeDeadLetter({ time: '2026-12-07T00:00:00Z', dataset: DATASET, stage: 'validation', code: 'LPR_ERR_PIPELINE_LINE_SCHEMA', reason: 'bad', line, requestId: `req-${tag}`, raw: `{"bad":${line}}` })
  return batch
}

test('a re-send racing its original: the dead letters are stored once', async (t) => {
  const { spool, commit, stored } = await setUp(t)
  const [a, b] = await Promise.all([commit(await batchOf(spool, '1'), 'same-body'), commit(await batchOf(spool, '2'), 'same-body')])
  assert.deepEqual([a.stored, b.stored].sort(), [false, true], 'one stored, one a duplicate')
  assert.equal((await stored()).length, 2, 'the two refused lines, once')
})

test('a failed commit stores no dead letters; its re-send stores them once', async (t) => {
  const { fs, spool, commit, stored } = await setUp(t)
  fs.failRename = true
  await assert.rejects(commit(await batchOf(spool, '1'), 'body'), { code: 'EIO' })
  assert.deepEqual(await stored(), [], 'answered 503: nothing stored, dead letters neither')
  fs.failRename = false
  assert.equal((await commit(await batchOf(spool, '2'), 'body')).stored, true)
  assert.equal((await stored()).length, 2, 'the two refused lines, once')
})
