// The status page's parts without a browser: escaping, sessions, the bounded dead-letter ring and
// rate history, and a page for 40 busy datasets that stays one readable, bounded document.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { escapeHtml, html } from '../../src/status/html.js'
import { RecentDeadLetters } from '../../src/status/dead-letters.js'
import { RateHistory, SAMPLES, SAMPLE_MS } from '../../src/status/history.js'
import { StatusAccess } from '../../src/status/session.js'
import { statusPage, type StatusView } from '../../src/status/page.js'

const HOSTILE = '<img src=x onerror=alert(1)>'

test('html`` escapes every plain value, attribute quotes included', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;')
  const out = html`<td title="${'" onmouseover="x'}">${HOSTILE}${[HOSTILE, html`<b>ok</b>`]}</td>`.value
  assert.equal(out, '<td title="&quot; onmouseover=&quot;x">&lt;img src=x onerror=alert(1)&gt;&lt;img src=x onerror=alert(1)&gt;<b>ok</b></td>')
})

test('sessions: signed, expiring, bound to the configured tokens', () => {
  const access = new StatusAccess(['logpush-token-aaaaaaaa', ''])
  const now = Date.parse('2026-11-28T12:00:00Z')
  const cookie = access.issue('logpush-token-aaaaaaaa', now)
  assert.ok(!cookie.includes('logpush-token'))
  assert.ok(access.sessionValid(cookie, now))
  assert.ok(!access.sessionValid(cookie, now + 13 * 3600_000), 'expired after 12 h')
  assert.ok(!access.sessionValid(cookie.replace(/^\d+/, (e) => String(Number(e) + 3600)), now), 'expiry cannot be extended')
  assert.ok(!new StatusAccess(['another-token-bbbbbbbb']).sessionValid(cookie, now), 'a removed token ends its sessions')
  assert.ok(access.allows({ authorization: 'Bearer logpush-token-aaaaaaaa' }))
  assert.ok(!access.allows({ authorization: 'Bearer logpush-token-aaaaaaab' }))
  assert.ok(!access.allows({}))
  assert.throws(() => new StatusAccess(['']), /at least one token/)
})

test('dead-letter ring keeps the latest per dataset, cut short, known datasets only', async () => {
  const ring = new RecentDeadLetters(3, new Set(['a']))
  for (let i = 1; i <= 5; i++) ring.note('a', { time: `t${i}`, code: 'C', reason: 'r', line: i, raw: 'x'.repeat(i === 5 ? 1000 : 10) })
  ring.note('not-a-dataset', { raw: 'y' })
  const latest = ring.latest('a')
  assert.deepEqual(latest.map((l) => l.line), [5, 4, 3])
  assert.equal(latest[0]!.raw.length, 300)
  assert.equal(latest[0]!.truncated, true)
  assert.deepEqual(ring.latest('not-a-dataset'), [])

  // From a batch's dead-letter file, only its tail is read: the last records of a large file.
  const dir = await mkdtemp(join(tmpdir(), 'lpr-status-'))
  const path = join(dir, 'batch.dead-letter')
  const records = Array.from({ length: 2000 }, (_, i) => JSON.stringify({ time: 't', stage: 'validation', code: 'LPR_ERR_PIPELINE_LINE_SCHEMA', reason: 'r', line: i + 1, raw: 'z'.repeat(100) }))
  await writeFile(path, records.join('\n') + '\n')
  const fromFile = new RecentDeadLetters(3, new Set(['a']))
  await fromFile.noteFile('a', path)
  assert.deepEqual(fromFile.latest('a').map((l) => l.line), [2000, 1999, 1998])
})

test('rate history: fixed length, newest interval in progress', () => {
  const h = new RateHistory(0)
  for (let i = 1; i <= SAMPLES + 5; i++) h.sample(new Map([['k', i * 10]]), i * SAMPLE_MS)
  const series = h.series('k', (SAMPLES + 5) * 10 + 7)
  assert.equal(series.length, SAMPLES)
  assert.deepEqual(series.slice(-2), [10, 7])
  assert.equal(h.windowMs((SAMPLES + 5) * SAMPLE_MS + 1000), (SAMPLES - 1) * SAMPLE_MS + 1000)
})

test('40 busy datasets: one row each, every dead letter escaped, a bounded page', () => {
  const now = Date.now()
  const names = Array.from({ length: 40 }, (_, i) => `dataset_${String(i).padStart(2, '0')}`)
  const view: StatusView = {
    version: '0.1.0',
    now,
    uptimeSeconds: 3600,
    windowMs: 300_000,
    ready: true,
    reasons: [],
    datasets: names.map((name, i) => ({
      name,
      scopes: i % 2 ? ['account'] : ['zone'],
      batches: 100 + i,
      accepted: 1_000_000,
      rejected: 10,
      rejectedByCode: [['LPR_ERR_PIPELINE_LINE_SCHEMA', 10]],
      unknownFields: Array.from({ length: 20 }, (_, f) => [`${HOSTILE}${f}`, 5] as const),
      otherCounters: [],
      lastBatchAt: now - i * 1000,
      series: Array.from({ length: SAMPLES }, (_, s) => s * 3),
      destinationConf: `https://logs.example.com/logpush/${name}?header_Authorization=Bearer%20YOUR_TOKEN`,
      deadLetters: Array.from({ length: 10 }, (_, l) => ({ time: new Date(now).toISOString(), stage: 'validation', code: 'LPR_ERR_PIPELINE_LINE_SCHEMA', reason: `${HOSTILE} bad`, line: l, raw: `{"${HOSTILE}":"${'q'.repeat(280)}"}`.slice(0, 300), truncated: true }))
    })),
    sinks: [{ name: 'elasticsearch', failing: true, failingForSeconds: 90, lastError: `ECONNREFUSED ${HOSTILE}`, pendingLines: 5, pendingBytes: 5000, oldestPendingAgeSeconds: 90, delivered: 10, series: [1, 2, 3] }],
    spool: { bytes: 5000, highWatermarkBytes: 4 * 2 ** 30, lowWatermarkBytes: 3 * 2 ** 30, minFreeBytes: 2 ** 30, refusal: null, freeBytes: 10 * 2 ** 30, damaged: [] }
  }
  const page = statusPage(view)
  assert.ok(!page.includes('<img'), 'nothing from the data became markup')
  assert.equal(page.match(/<tr>\n<th scope="row">dataset_/g)?.length, 80, 'a row per dataset in the datasets and connect tables')
  assert.equal(page.match(/accounts\/\{account_id\}/g)?.length, 20)
  assert.ok(Buffer.byteLength(page) < 1_000_000, `page is ${Buffer.byteLength(page)} bytes`)
})

test('the spool section shows each damaged segment: its name, the byte ranges not readable, the lines lost', () => {
  // The gap this pins: damaged segments were in /health and a metric only; an operator on the
  // status page saw a healthy spool with lines missing.
  const base: StatusView = {
    version: '0.1.0', now: Date.now(), uptimeSeconds: 60, windowMs: 300_000, ready: true, reasons: [], datasets: [], sinks: [],
    spool: { bytes: 0, highWatermarkBytes: 2 ** 30, lowWatermarkBytes: 2 ** 29, minFreeBytes: 0, refusal: null, freeBytes: null, damaged: [] }
  }
  const clean = statusPage(base)
  assert.match(clean, /Damaged segments<\/dt><dd><span class="ok">none found since the start/)
  assert.ok(!clean.includes('table class="data damaged"'))
  const page = statusPage({
    ...base,
    spool: {
      ...base.spool,
      damaged: [
        { segment: '000000000007.http_requests.30.b2151.d1.seg', ranges: [{ fromByte: 737, toByte: 1444 }, { fromByte: 2000, toByte: 2151 }], linesLost: 12, committedLines: 30, keptAs: 'damaged/000000000007.http_requests.30.b2151.d1.seg' },
        { segment: `${HOSTILE}.seg`, ranges: [{ fromByte: 0, toByte: 2151 }], linesLost: null, committedLines: 30, keptAs: 'damaged/x.seg' }
      ]
    }
  })
  assert.ok(!page.includes('<img'), 'a segment name is escaped')
  assert.match(page, /<strong class="bad">2<\/strong>/)
  assert.match(page, /<code>000000000007\.http_requests\.30\.b2151\.d1\.seg<\/code><\/th>\n<td>737–1,444, 2,000–2,151<\/td>\n<td>12 of 30<\/td>/)
  assert.match(page, /<td>0–2,151<\/td>\n<td><span class="muted">unknown<\/span><\/td>/)
})

test('the spool section shows a committed segment found missing: no byte range, nothing kept, lines unknown', () => {
  const page = statusPage({
    version: '0.1.0', now: Date.now(), uptimeSeconds: 60, windowMs: 300_000, ready: true, reasons: [], datasets: [], sinks: [],
    spool: { bytes: 0, highWatermarkBytes: 2 ** 30, lowWatermarkBytes: 2 ** 29, minFreeBytes: 0, refusal: null, freeBytes: null, damaged: [{ segment: '000000000003', ranges: [], linesLost: null, committedLines: null, keptAs: null }] }
  })
  assert.match(page, /<code>000000000003<\/code><\/th>\n<td>the whole file is missing<\/td>\n<td><span class="muted">unknown<\/span><\/td>\n<td><span class="muted">nothing to keep<\/span><\/td>/)
})
