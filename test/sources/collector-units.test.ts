// The pieces of a pull collector that need no service: window arithmetic, the cursor store at each
// crash point, and the audit record mappings against the dataset schemas.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { AuditLogsV1Fetcher, CursorStore, RecordMapper, inWindow, nextWindow, stagedDigest } from '../../src/sources/cloudflare/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { normalizeCollectors } from '../../src/config/collectors.js'
import { CloudflareDouble, addAuditV1, addAuditV2, auditState } from '../helpers/cloudflare-double/index.js'

test('windows: end stays delaySeconds behind now and at most windowSeconds after the start; none while empty', () => {
  const H = 3600_000
  const now = Date.UTC(2026, 10, 28, 12, 0, 0)
  assert.deepEqual(nextWindow(now - 5 * H, now, H, 300_000), { start: now - 5 * H, end: now - 4 * H }, 'behind: a full window')
  assert.deepEqual(nextWindow(now - 30 * 60_000, now, H, 300_000), { start: now - 30 * 60_000, end: now - 300_000 }, 'caught up: up to now - delay')
  assert.equal(nextWindow(now - 300_000, now, H, 300_000), null, 'end <= start: no window')
  assert.equal(nextWindow(now, now, H, 0), null)
  const w = { start: 1000, end: 2000 }
  assert.ok(inWindow(w, 1000), 'start included')
  assert.ok(!inWindow(w, 2000), 'end excluded')
  assert.ok(!inWindow(w, Number.NaN), 'a record without a readable time is in no window')
})

test('cursor store: a fresh start, a staged window, and each crash point', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-cursor-'))
  const a = new CursorStore(dir)
  const first = await a.load(5000)
  assert.ok(first.fresh)
  assert.deepEqual(first.state, { next: 5000, staged: null })

  // Crash during fetch: a staging file the cursor does not name, and writeAtomic's temp file.
  await writeFile(a.stagingPath(a.stagingFile({ start: 5000, end: 6000 })), 'partial')
  await writeFile(`${a.path}.tmp`, '{"next":')
  const b = new CursorStore(dir)
  const second = await b.load(9999)
  assert.ok(!second.fresh)
  assert.equal(second.state.next, 5000, 'the first start\'s cursor was written at once: a restart does not begin from a later now')
  assert.deepEqual(second.removed, ['5000-6000.ndjson.gz'])
  assert.deepEqual(await readdir(b.stagingDir), [])

  // Crash after staging was recorded: the window and its file are kept for re-ingestion.
  const staged = { window: { start: 5000, end: 6000 }, file: b.stagingFile({ start: 5000, end: 6000 }), digest: stagedDigest('c1', Buffer.alloc(32)), records: 3 }
  await writeFile(b.stagingPath(staged.file), 'gz bytes')
  await b.stage(staged)
  await writeFile(b.stagingPath('7000-8000.ndjson.gz'), 'stray')
  const c = new CursorStore(dir)
  const third = await c.load(0)
  assert.deepEqual(third.state.staged, staged)
  assert.equal(third.state.next, 5000)
  assert.deepEqual(third.removed, ['7000-8000.ndjson.gz'], 'only the file the cursor names is kept')
  assert.deepEqual(await readdir(c.stagingDir), [staged.file])

  // After ingestion: the cursor moves on and the file goes.
  await c.advance(6000)
  const d = new CursorStore(dir)
  assert.deepEqual((await d.load(0)).state, { next: 6000, staged: null })
  assert.deepEqual(await readdir(d.stagingDir), [])
})

test('cursor store: a damaged cursor or a staged window without its file refuses to start rather than guess', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-cursor-bad-'))
  const s = new CursorStore(dir)
  await s.load(0)
  await writeFile(s.path, '{"next":"soon"}')
  await assert.rejects(new CursorStore(dir).load(0), { code: 'LPR_ERR_COLLECTOR_CURSOR_UNREADABLE' })
  await writeFile(s.path, JSON.stringify({ next: 1, staged: { window: { start: 1, end: 2 }, file: '1-2.ndjson.gz', digest: 'x', records: 1 } }))
  await assert.rejects(new CursorStore(dir).load(0), { code: 'LPR_ERR_COLLECTOR_CURSOR_UNREADABLE' })
})

test('digests: per collector, so two collectors never share one', () => {
  const h = Buffer.alloc(32, 7)
  assert.notEqual(stagedDigest('a', h), stagedDigest('b', h))
  assert.match(stagedDigest('audit-main_1', h), /^[A-Za-z0-9_-]+$/, 'fits the spool segment name')
})

test('mapping: every mapped field of an audit record (v1 and v2) validates against its Logpush dataset schema', () => {
  const datasets = loadDatasets(schemasDir)
  const double = new CloudflareDouble()
  const at = Date.UTC(2026, 10, 28, 10, 0, 0)
  const v1 = addAuditV1(double, 'acc', at, { id: 'a1b2c3', newValue: '{"ssl":"strict"}', oldValue: 'flexible' })
  const v2 = addAuditV2(double, 'acc', at, { id: 'd4e5f6' })
  for (const [dataset, record, idField, timeField] of [['audit_logs', v1, 'ID', 'When'], ['audit_logs_v2', v2, 'AuditLogID', 'ActionTimestamp']] as const) {
    const mapper = RecordMapper.load(schemasDir, dataset)
    const line = mapper.map(record)
    const ds = datasets.get(dataset)!
    assert.ok(ds.validate(line), `${dataset}: ${JSON.stringify(ds.validate.errors)}`)
    // Every field the mapping names is set by a full record, and known to the schema (no drift).
    assert.deepEqual(Object.keys(line).sort(), Object.keys(mapper.mapping.fields).sort())
    for (const k of Object.keys(line)) assert.ok(ds.knownFields.has(k), `${dataset}.${k} is a schema field`)
    assert.equal(line[idField], record.id)
    assert.equal(mapper.id(record), record.id)
    assert.equal(mapper.time(record), at)
    assert.equal(line[timeField], new Date(at).toISOString())
  }
  const l1 = RecordMapper.load(schemasDir, 'audit_logs').map(v1)
  assert.deepEqual(l1.NewValue, { ssl: 'strict' }, 'v1 newValue (JSON text) becomes the object the dataset has')
  assert.deepEqual(l1.OldValue, { value: 'flexible' }, 'text that is not a JSON object is kept under "value"')
  assert.equal(l1.ActionResult, true)
  assert.equal(l1.ActorIP, '198.51.100.7')
  const l2 = RecordMapper.load(schemasDir, 'audit_logs_v2').map(v2)
  assert.deepEqual(l2.ActorTokenDetails, { id: v2.actor.token_id, name: v2.actor.token_name })
  assert.equal(l2.ActionResult, 'success')
  assert.equal(auditState(double).v1.get('acc')?.length, 1)
})

test('config: collectors get defaults, names are unique (also against bucket sources), types take their own scope', () => {
  const auth = { tokenEnv: 'CF_TOKEN' }
  const [c] = normalizeCollectors([{ name: 'audit', type: 'audit_logs', account: 'a'.repeat(32), auth }])
  assert.equal(c!.pollSeconds, 60)
  assert.equal(c!.windowSeconds, 3600)
  assert.equal(c!.delaySeconds, 300)
  assert.equal(c!.startLookbackHours, 24)
  assert.equal(c!.perPage, 1000)
  assert.throws(() => normalizeCollectors([{ name: 'x', type: 'audit_logs', account: 'a', auth }, { name: 'x', type: 'audit_logs_v2', account: 'a', auth }]), /used twice/)
  assert.throws(() => normalizeCollectors([{ name: 'x', type: 'audit_logs', account: 'a', auth }], new Set(['x'])), /bucket source/)
  assert.throws(() => normalizeCollectors([{ name: 'x', type: 'audit_logs', zone: 'z', auth }]), /needs account/)
  assert.throws(() => normalizeCollectors([{ name: 'x', type: 'logpull', zone: 'z', windowSeconds: 7200, auth }]), /at most 3600/)
})

test('an audit record whose time cannot be read is left out with a word, not silently', async () => {
  // The bug: inWindow(w, NaN) is false, so such a record vanished without a log line.
  const told: Array<string | undefined> = []
  const items = [
    { id: 'a', when: '2026-11-20T09:30:00Z', action: { type: 'add', result: true } },
    { id: 'b', when: 'yesterday-ish', action: { type: 'add', result: true } }
  ]
  const client = { auditLogs: { list: async () => ({ getPaginatedItems: () => items }) } } as unknown as ConstructorParameters<typeof AuditLogsV1Fetcher>[0]
  const fetcher = new AuditLogsV1Fetcher(client, 'acc', 1000, RecordMapper.load(schemasDir, 'audit_logs'), (id) => told.push(id))
  const chunks: string[] = []
  const out = new Writable({ write(c, _e, cb) { chunks.push(String(c)); cb() } })
  const { records } = await fetcher.fetch({ start: Date.UTC(2026, 10, 20, 9), end: Date.UTC(2026, 10, 20, 10) }, out, new AbortController().signal)
  assert.equal(records, 1)
  assert.equal(JSON.parse(chunks.join('')).ID, 'a')
  assert.deepEqual(told, ['b'])
})
