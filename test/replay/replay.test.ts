// Replay (issue 10, point 5): lines dead-lettered by a schema that is then fixed are ingested
// once and only once, whether the service runs or not, after an interrupted replay, and after a
// replay killed mid-way; lines the fixed schema still refuses stay dead letters. The broken
// schema is a copy of schemas/ in which ClientASN is a string (real values are integers), used
// through SCHEMAS_DIR by the service that writes the dead letters.
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { cp, mkdir, mkdtemp, readFile, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { batchText } from '../helpers/fixtures.js'
import { post, readDeadLetters, readStore, startServer } from '../helpers/server.js'
import { brokenSchemas, fixable, NANO, runReplay } from '../helpers/replay-run.js'
import { recogniseDataset } from '../../src/intake/index.js'
import { schemasDir } from '../../src/paths.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { httpSend, replay, type Send } from '../../src/replay/replay.js'


const valid = (i: number): string => `{"RayID":"v${i}","ClientRequestHost":"example.com","EdgeResponseStatus":200}`
const invalid = ['{"RayID":"x1","EdgeResponseStatus":"two hundred"}', 'oops']

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, k) => from + k)
}

function batch(valids: number[], fixables: number[], withInvalid: boolean): string {
  return [...valids.map(valid), ...fixables.map(fixable), ...(withInvalid ? invalid : [])].join('\n') + '\n'
}


/** Runs the service on the broken schema long enough to dead-letter a batch, then stops it. */
async function deadLetterWithBrokenSchema(t: TestContext, dataDir: string, broken: string, body: string, rejected: number): Promise<void> {
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  const r = await post(writer, '/logpush/http_requests', body)
  assert.equal(r.status, 200)
  assert.equal(r.json.rejected, rejected)
  await writer.built.close()
}



/** `send` failing at its n-th call, before sending or once the service answered: a replay killed there. */
function killedAt(send: Send, n: number, when: 'before' | 'after'): Send {
  let calls = 0
  return async (d, body, id) => {
    if (when === 'before' && ++calls === n) throw new Error(`killed before batch ${n} was sent`)
    const answer = await send(d, body, id)
    if (when === 'after' && ++calls === n) throw new Error(`killed after the service stored batch ${n}`)
    return answer
  }
}

const counts = (r: any): Record<string, number> => ({
  scanned: r.scanned, alreadyReplayed: r.alreadyReplayed, replayed: r.replayed, duplicates: r.duplicates, stillInvalid: r.stillInvalid, refusedByService: r.refusedByService
})

test('replay with the service stopped, twice, then with it running: each fixed line ingested once, the rest stay', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  await deadLetterWithBrokenSchema(t, dataDir, broken, batch(range(1, 3), range(1, 12), true), 14)

  // No service: replay runs the service's code itself.
  const first = await runReplay(t, dataDir, [])
  assert.equal(first.code, 0, first.stderr)
  assert.match(first.stderr, /no service runs on this DATA_DIR/)
  assert.deepEqual(counts(first.report), { scanned: 14, alreadyReplayed: 0, replayed: 12, duplicates: 0, stillInvalid: 2, refusedByService: 0 })
  const again = await runReplay(t, dataDir, [])
  assert.equal(again.code, 0, again.stderr)
  assert.deepEqual(counts(again.report), { scanned: 14, alreadyReplayed: 12, replayed: 0, duplicates: 0, stillInvalid: 2, refusedByService: 0 })

  // More dead letters from the broken schema, then the fixed service runs: replay talks to it.
  await deadLetterWithBrokenSchema(t, dataDir, broken, batch([4, 5], range(13, 20), false), 8)
  const service = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const third = await runReplay(t, dataDir, ['--since', '2000-01-01'])
  assert.equal(third.code, 0, third.stderr)
  assert.match(third.stderr, new RegExp(`sending to the service at ${service.url}`))
  assert.deepEqual(counts(third.report), { scanned: 22, alreadyReplayed: 12, replayed: 8, duplicates: 0, stillInvalid: 2, refusedByService: 0 })

  assert.ok(await service.built.drained(30_000))
  // Every line once, byte for byte, in the order it reached the spool.
  const expected = [...range(1, 3).map(valid), ...range(1, 12).map(fixable), valid(4), valid(5), ...range(13, 20).map(fixable)].join('\n') + '\n'
  assert.equal(await readStore({ dataDir }, 'events', 'http_requests'), expected)
  // The dead letters are all where they were; the lines still invalid are among them.
  const dead = await readDeadLetters({ dataDir }, 'http_requests')
  assert.equal(dead.length, 22)
  assert.deepEqual(dead.filter((d) => invalid.includes(d.raw)).map((d) => d.raw), invalid)
})

test('a replay interrupted after the service stored a batch, before it was recorded, does not ingest it twice', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  assert.equal((await post(writer, '/logpush/http_requests', batch([1, 2], range(1, 30), true))).json.rejected, 32)
  await writer.built.close()

  const server = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const dataset = loadDatasets(schemasDir).get('http_requests')!
  const send = httpSend(server.url, server.token)
  // Dead letters older than --since are not looked at.
  const later = await replay({ dataDir, dataset, since: new Date(Date.now() + 60_000), batchBytes: 1024, send })
  assert.deepEqual([later.scanned, later.replayed], [0, 0])
  const crashing = killedAt(send, 3, 'after')
  // Small batches: about a thousand bytes, several lines each.
  await assert.rejects(replay({ dataDir, dataset, batchBytes: 1024, send: crashing }), /killed after/)
  const pending = JSON.parse(await readFile(join(dataDir, 'replay', 'http_requests', 'pending.json'), 'utf8'))
  assert.ok(pending.ids.length > 0)

  const report = await replay({ dataDir, dataset, batchBytes: 1024, send })
  // The interrupted batch is sent again first and recognised as a re-send.
  assert.equal(report.duplicates, pending.ids.length)
  assert.equal(report.alreadyReplayed + report.replayed, 30)
  assert.equal(report.stillInvalid, 2)
  assert.equal(report.refusedByService, 0)
  const expected = [valid(1), valid(2), ...range(1, 30).map(fixable)].join('\n') + '\n'
  assert.equal(await readStore(server, 'events', 'http_requests'), expected)
})

test('a replay interrupted before its batch reached the service sends it once, and counts each line once', async (t) => {
  // The bug: the lines of the interrupted batch, sent again first, were met again in the scan and
  // counted as already replayed as well as replayed; a report of 300 lines said 308 when the
  // killed run had not sent its last batch (the service had nothing to call a duplicate).
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  await deadLetterWithBrokenSchema(t, dataDir, broken, batch([1, 2], range(1, 30), true), 32)
  const server = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const dataset = loadDatasets(schemasDir).get('http_requests')!
  const send = httpSend(server.url, server.token)
  const dying = killedAt(send, 3, 'before')
  await assert.rejects(replay({ dataDir, dataset, batchBytes: 1024, send: dying }), /killed before/)
  const pending = JSON.parse(await readFile(join(dataDir, 'replay', 'http_requests', 'pending.json'), 'utf8'))
  assert.ok(pending.ids.length > 0)

  const report = await replay({ dataDir, dataset, batchBytes: 1024, send })
  assert.equal(report.duplicates, 0)
  assert.equal(report.alreadyReplayed + report.replayed, 30, JSON.stringify(report))
  assert.equal(report.scanned, report.alreadyReplayed + report.replayed + report.stillInvalid)
  assert.ok(await server.built.drained(30_000))
  assert.equal(await readStore(server, 'events', 'http_requests'), [valid(1), valid(2), ...range(1, 30).map(fixable)].join('\n') + '\n')
})

test('a replay killed after recording its batch, before removing pending.json, does not send that batch again', async (t) => {
  // The bug: the next run sent the pending batch again though all its ids were in replayed.log
  // (recorded only after the service's 200); only the service's re-send detection kept it from
  // being stored twice, so with DEDUPE_WINDOW_SECONDS 0, or a day later, its lines were stored twice.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  await deadLetterWithBrokenSchema(t, dataDir, broken, batch([1, 2], range(1, 30), true), 32)
  const server = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0', DEDUPE_WINDOW_SECONDS: '0' })
  const dataset = loadDatasets(schemasDir).get('http_requests')!
  const send = httpSend(server.url, server.token)
  const crashing = killedAt(send, 3, 'after')
  await assert.rejects(replay({ dataDir, dataset, batchBytes: 1024, send: crashing }), /killed after/)
  const dir = join(dataDir, 'replay', 'http_requests')
  const pending = JSON.parse(await readFile(join(dir, 'pending.json'), 'utf8'))
  // The kill came after finish() appended the ids (fsync'd), before it removed pending.json.
  await writeFile(join(dir, 'replayed.log'), '\n' + (pending.ids as string[]).join('\n') + '\n', { flag: 'a' })

  const report = await replay({ dataDir, dataset, batchBytes: 1024, send })
  assert.equal(report.alreadyReplayed + report.replayed, 30, JSON.stringify(report))
  assert.equal(report.alreadyReplayed >= pending.ids.length, true, JSON.stringify(report))
  assert.ok(await server.built.drained(30_000))
  assert.equal(await readStore(server, 'events', 'http_requests'), [valid(1), valid(2), ...range(1, 30).map(fixable)].join('\n') + '\n')
  await assert.rejects(readFile(join(dir, 'pending.json')), { code: 'ENOENT' })
})

test('a replay killed mid-way (SIGKILL) and run again ingests every fixed line exactly once', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  const n = 300
  await deadLetterWithBrokenSchema(t, dataDir, broken, batch([1, 2], range(1, n), false), n)
  const service = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const log = join(dataDir, 'replay', 'http_requests', 'replayed.log')

  // Killed as soon as the first small batch is recorded: the rest of the run is cut anywhere.
  const killed = await runReplay(t, dataDir, ['--batch-bytes', '1024'], (kill) => {
    const timer = setInterval(() => {
      stat(log).then((s) => { if (s.size > 0) { clearInterval(timer); kill() } }, () => {})
    }, 2)
    t.after(() => clearInterval(timer))
  })
  assert.equal(killed.signal, 'SIGKILL', `the replay finished before it could be killed: ${killed.stdout}`)

  // The kill may land before the pending batch was sent, while the service stored it, or after.
  const pending = await readFile(join(dataDir, 'replay', 'http_requests', 'pending.json'), 'utf8').then((text) => JSON.parse(text).ids.length as number, () => 0)
  const rest = await runReplay(t, dataDir, ['--batch-bytes', '1024'])
  assert.equal(rest.code, 0, rest.stderr)
  // The killed run stored at least its first batch (it was killed once that was recorded): this
  // run finds it recorded, or still pending and then a duplicate.
  assert.ok(rest.report.alreadyReplayed + rest.report.duplicates > 0, JSON.stringify(rest.report))
  assert.equal(rest.report.alreadyReplayed + rest.report.replayed, n, JSON.stringify(rest.report))
  // The interrupted batch is a duplicate if the service had stored it, else stored now; the store
  // read below says it is there once either way.
  assert.ok(rest.report.duplicates === 0 || rest.report.duplicates === pending, `${rest.report.duplicates} of ${pending}`)
  const dataset = loadDatasets(schemasDir).get('http_requests')!
  const once = await replay({ dataDir, dataset, batchBytes: 1024, send: httpSend(service.url, service.token) })
  assert.deepEqual(counts(once), { scanned: n, alreadyReplayed: n, replayed: 0, duplicates: 0, stillInvalid: 0, refusedByService: 0 })

  assert.ok(await service.built.drained(30_000))
  const expected = [valid(1), valid(2), ...range(1, n).map(fixable)].join('\n') + '\n'
  assert.equal(await readStore({ dataDir }, 'events', 'http_requests'), expected)
})

test('one process per DATA_DIR: a live holder of service.lock keeps the service out, a dead one does not', async (t) => {
  // Without the lock, a replay running the service's code and a service started meanwhile would
  // give out the same spool sequence numbers.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-lock-'))
  const lockModule = new URL('../../src/data-dir-lock.js', import.meta.url).href
  const other = spawn(process.execPath, ['--input-type=module', '-e', `import(${JSON.stringify(lockModule)}).then(async ({ DirLock }) => { await DirLock.acquire(${JSON.stringify(join(dataDir, 'service.lock'))}); process.stdout.write('held'); setTimeout(() => {}, 60000) })`], { stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => other.kill('SIGKILL'))
  await new Promise((r) => other.stdout!.once('data', r))
  await assert.rejects(startServer(t, { DATA_DIR: dataDir }), (err: any) => err.code === 'LPR_ERR_DATA_DIR_IN_USE' && new RegExp(`held by process ${other.pid}`).test(err.message))
  other.kill('SIGKILL')
  await new Promise((r) => other.once('exit', r))
  const server = await startServer(t, { DATA_DIR: dataDir })
  // The URL is announced once the server listens (fastify's onListen hooks run after listen()).
  let lock: any = null
  for (let i = 0; i < 200 && lock?.url == null; i++) {
    lock = JSON.parse(await readFile(join(dataDir, 'service.lock'), 'utf8'))
    await new Promise((r) => setTimeout(r, 10))
  }
  assert.deepEqual([lock.pid, lock.url], [process.pid, server.url])
  await server.built.close()
  // The file stays (deleting a lock file lets two processes lock two files), emptied of its owner.
  assert.equal(await readFile(join(dataDir, 'service.lock'), 'utf8'), '')
})

test('--unrecognised: HEC batches kept under _unknown are replayed once into the dataset whose schema was added', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  // Before: only http_requests has a schema (network_analytics_logs shares none of its fields).
  const without = join(await mkdtemp(join(tmpdir(), 'lpr-schemas-')), 'schemas')
  await mkdir(without)
  await cp(join(schemasDir, 'http_requests.json'), join(without, 'http_requests.json'))
  const nal = batchText('network_analytics_logs', 5)
  const hec = async (url: string, body: string): Promise<number> => (await fetch(`${url}/services/collector/raw?sourcetype=cloudflare:json`, {
    method: 'POST', body, headers: { authorization: 'Splunk test-token-0123456789abcdef' }
  })).status
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: without, PARSE_WORKERS: '0' })
  assert.equal(await hec(writer.url, nal), 200)
  assert.equal(await hec(writer.url, '{"Foo":1}\n{"Foo":2}\n'), 200)
  await writer.built.close()
  assert.equal((await readDeadLetters({ dataDir }, '_unknown')).length, 7)

  const server = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const datasets = loadDatasets(schemasDir)
  const options = { dataDir, dataset: datasets.get('network_analytics_logs')!, recognise: recogniseDataset(datasets), batchBytes: 1 << 20, send: httpSend(server.url, server.token) }
  assert.deepEqual(counts(await replay(options)), { scanned: 5, alreadyReplayed: 0, replayed: 5, duplicates: 0, stillInvalid: 0, refusedByService: 0 })
  assert.deepEqual(counts(await replay(options)), { scanned: 5, alreadyReplayed: 5, replayed: 0, duplicates: 0, stillInvalid: 0, refusedByService: 0 })
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), nal)
  assert.equal((await readDeadLetters({ dataDir }, '_unknown')).length, 7)
})

/**
 * Each service of these tests starts in a new second. It was needed when dead-letter files were
 * named by second and a counter each writer restarted (two services of this one process within a
 * second wrote the same name, fixed in 60fc045); it now keeps each service's dead letters, and
 * `since`, apart in time by more than clock steps.
 */
async function nextSecond(): Promise<void> {
  const now = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 1000 - (now % 1000) + 5))
}

/** Another stale schema: EdgeResponseStatus a string (real values are integers), ClientASN right. */
async function staleSchemas(): Promise<string> {
  const stale = join(await mkdtemp(join(tmpdir(), 'lpr-schemas-')), 'schemas')
  await cp(schemasDir, stale, { recursive: true })
  const staleSchema = JSON.parse(await readFile(join(stale, 'http_requests.json'), 'utf8'))
  staleSchema.properties.EdgeResponseStatus.type = 'string'
  await writeFile(join(stale, 'http_requests.json'), JSON.stringify(staleSchema))
  return stale
}

/** Refused by the stale schema, valid under the real one. */
const withStatus = (i: number): string => `{"RayID":"e${i}","ClientASN":${i},"EdgeResponseStatus":200}`

test('a service still on an older schema: refused lines are not recorded as replayed, and are after its restart', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  const stale = await staleSchemas()
  const body = [valid(1), valid(2), ...range(1, 6).map(fixable), ...range(1, 3).map(withStatus)].join('\n') + '\n'
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  assert.equal((await post(writer, '/logpush/http_requests', body)).json.rejected, 9)
  await writer.built.close()

  const dataset = loadDatasets(schemasDir).get('http_requests')!
  await nextSecond()
  const old = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: stale, PARSE_WORKERS: '0' })
  // Later dead letters than the writer's: those of this first replay and after.
  const since = new Date()
  const first = await replay({ dataDir, dataset, batchBytes: 1 << 20, send: httpSend(old.url, old.token) })
  assert.deepEqual(counts(first), { scanned: 9, alreadyReplayed: 0, replayed: 6, duplicates: 0, stillInvalid: 0, refusedByService: 3 })
  // One service at a time on a data directory: a starting one tidies (gzips) the others' files.
  await old.built.close()
  // A batch the stale service refuses whole (e1..e3 as it dead-lettered them, within --since, and
  // e4, e5): a schema failure is a dead letter wherever it is (issue 11), so the service answers
  // 200 with every line rejected; none is recorded as replayed and the run stops.
  await nextSecond()
  const writer2 = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  assert.equal((await post(writer2, '/logpush/http_requests', [valid(3), ...range(4, 5).map(withStatus)].join('\n') + '\n')).json.rejected, 2)
  await writer2.built.close()
  await nextSecond()
  const old2 = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: stale, PARSE_WORKERS: '0' })
  const refused = await replay({ dataDir, dataset, since, batchBytes: 1 << 20, send: httpSend(old2.url, old2.token) })
  assert.deepEqual(counts(refused), { scanned: 5, alreadyReplayed: 0, replayed: 0, duplicates: 0, stillInvalid: 0, refusedByService: 5 })
  await old2.built.close()

  await nextSecond()
  const fixed = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const second = await replay({ dataDir, dataset, batchBytes: 1 << 20, send: httpSend(fixed.url, fixed.token) })
  // 19 dead letters: the 9 first ones, e1..e3 and e4, e5 dead-lettered by the stale service, and
  // e1..e5 again; the six fixed ones were replayed before, e1..e5 are now, once each.
  assert.deepEqual(counts(second), { scanned: 19, alreadyReplayed: 14, replayed: 5, duplicates: 0, stillInvalid: 0, refusedByService: 0 })
  const events = [valid(1), valid(2), ...range(1, 6).map(fixable), valid(3), ...range(1, 5).map(withStatus)]
  assert.equal(await readStore(fixed, 'events', 'http_requests'), events.join('\n') + '\n')
})

test('an interrupted batch the stale service had partly refused, re-sent and answered duplicate: its refused lines are not recorded as replayed', async (t) => {
  // The bug: a batch re-sent from pending.json that the service had stored is answered
  // "duplicate" (with its rejected count); replay then looked for no refused line and recorded
  // every id of the batch as replayed, the lines the stale service had dead-lettered included:
  // once the service runs the fixed schema, a replay counted them as already replayed and they
  // never reached the spool (exactly once became never).
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  const stale = await staleSchemas()
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  assert.equal((await post(writer, '/logpush/http_requests', [...range(1, 4).map(fixable), ...range(1, 3).map(withStatus)].join('\n') + '\n')).json.rejected, 7)
  await writer.built.close()

  const dataset = loadDatasets(schemasDir).get('http_requests')!
  await nextSecond()
  const old = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: stale, PARSE_WORKERS: '0' })
  const send = httpSend(old.url, old.token)
  // Killed once the service had stored the batch (and dead-lettered e1..e3), before its answer was read.
  const dying: Send = async (d, body, id) => { await send(d, body, id); throw new Error('killed after the service stored the batch') }
  await assert.rejects(replay({ dataDir, dataset, batchBytes: 1 << 20, send: dying }), /killed after/)
  const again = await replay({ dataDir, dataset, batchBytes: 1 << 20, send })
  assert.equal(again.duplicates > 0, true, JSON.stringify(again))
  assert.equal(again.refusedByService, 3, JSON.stringify(again))
  assert.equal(again.replayed, 4, JSON.stringify(again))
  await old.built.close()

  await nextSecond()
  const fixed = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const last = await replay({ dataDir, dataset, batchBytes: 1 << 20, send: httpSend(fixed.url, fixed.token) })
  assert.equal(last.replayed, 3, JSON.stringify(last))
  assert.equal(await readStore(fixed, 'events', 'http_requests'), [...range(1, 4).map(fixable), ...range(1, 3).map(withStatus)].join('\n') + '\n')
})

test('a pretty-printed HEC event dead-lettered by the old schema is replayed as one line, once', async (t) => {
  // The bug (issue 21, item 9): replay sent the dead letter's text as it was kept, newlines and
  // all, in an NDJSON batch: the one event became several lines, none of them JSON.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-replay-'))
  const broken = await brokenSchemas()
  const pretty = `{\n  "RayID": "pretty",\n  "ClientASN": 13335,\n  "EdgeStartTimestamp": ${NANO}\n}`
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: broken, PARSE_WORKERS: '0' })
  const res = await fetch(`${writer.url}/services/collector/event?dataset=http_requests`, {
    method: 'POST', body: `{"event": ${pretty}}`, headers: { authorization: 'Splunk test-token-0123456789abcdef' }
  })
  assert.equal(res.status, 200)
  await writer.built.close()
  assert.deepEqual((await readDeadLetters({ dataDir }, 'http_requests')).map((d) => d.raw), [pretty])

  const server = await startServer(t, { DATA_DIR: dataDir, PARSE_WORKERS: '0' })
  const options = { dataDir, dataset: loadDatasets(schemasDir).get('http_requests')!, batchBytes: 1 << 20, send: httpSend(server.url, server.token) }
  assert.deepEqual(counts(await replay(options)), { scanned: 1, alreadyReplayed: 0, replayed: 1, duplicates: 0, stillInvalid: 0, refusedByService: 0 })
  assert.deepEqual(counts(await replay(options)), { scanned: 1, alreadyReplayed: 1, replayed: 0, duplicates: 0, stillInvalid: 0, refusedByService: 0 })
  assert.equal(await readStore(server, 'events', 'http_requests'), `{"RayID":"pretty","ClientASN":13335,"EdgeStartTimestamp":${NANO}}\n`)
})
