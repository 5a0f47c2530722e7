// The watchdog's rules as tables: which jobs are this service's, how health rows add up, and how
// a job is judged from its fields and its uploads.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { judge, pointsAtService, redactConf, summarise, type UploadHealth } from '../../src/watchdog/index.js'

test('a job is ours when its destination_conf reaches PUBLIC_URL\'s host, port and path', () => {
  const cases: Array<[string, string, boolean]> = [
    ['https://logs.example.com', 'https://logs.example.com/logpush/http_requests?header_Authorization=Bearer%20x', true],
    ['https://logs.example.com/', 'https://LOGS.example.com:443/logpush/dns_logs', true],
    ['https://logs.example.com', 'https://logs.example.com:8443/logpush/dns_logs', false],
    ['https://logs.example.com', 'https://logs.example.com/other/dns_logs', false],
    ['https://logs.example.com', 'https://siem.example.net/logpush/dns_logs', false],
    ['https://example.com/receiver', 'https://example.com/receiver/logpush/http_requests', true],
    ['https://example.com/receiver', 'https://example.com/logpush/http_requests', false],
    ['https://logs.example.com', 'splunk://logs.example.com:443/services/collector/raw?channel=x', true],
    ['https://logs.example.com', 'splunk://logs.example.com:8088/services/collector/raw?channel=x', false],
    ['https://logs.example.com', 's3://bucket/logs?region=us-east-1', false],
    ['https://logs.example.com', 'not a url', false]
  ]
  for (const [publicUrl, conf, expected] of cases) assert.equal(pointsAtService(publicUrl, conf), expected, `${publicUrl} <- ${conf}`)
})

test('header_* values in an error message are redacted', () => {
  assert.equal(redactConf('error uploading to https://h/logpush/x?header_Authorization=Bearer%20abc&tags=a'), 'error uploading to https://h/logpush/x?header_Authorization=Bearer%20REDACTED&tags=a')
})

test('health rows add up per job: ok, retried, failed, statuses, and the first failure after the last success', () => {
  const m = (i: number): string => new Date(Date.UTC(2026, 10, 28, 12, i)).toISOString()
  const t = (i: number): number => Date.UTC(2026, 10, 28, 12, i)
  const byJob = summarise([
    { count: 3, dimensions: { jobId: 7, status: 200, final: 1, datetimeMinute: m(0) } },
    { count: 2, dimensions: { jobId: 7, status: 503, final: 0, datetimeMinute: m(1) } },
    { count: 1, dimensions: { jobId: 7, status: 200, final: 1, datetimeMinute: m(2) } },
    { count: 4, dimensions: { jobId: 7, status: 1105, final: 0, datetimeMinute: m(3) } },
    { count: 1, dimensions: { jobId: 7, status: 1105, final: 1, datetimeMinute: m(4) } },
    { count: 5, dimensions: { jobId: 8, status: 200, final: 1, datetimeMinute: m(4) } },
    { count: 5, dimensions: { jobId: 'x', status: 200, final: 1, datetimeMinute: m(4) } }
  ])
  assert.deepEqual(byJob.get(7), { ok: 4, retried: 6, failed: 1, statuses: { 503: 2, 1105: 5 }, lastOkAt: t(2), lastFailedAt: t(4), firstFailedAfterOkAt: t(3) })
  assert.deepEqual(byJob.get(8), { ok: 5, retried: 0, failed: 0, statuses: {}, lastOkAt: t(4), lastFailedAt: null, firstFailedAfterOkAt: null })
  assert.equal(byJob.size, 2)
})

test('judging a job', () => {
  const now = Date.UTC(2026, 10, 28, 12, 0)
  const iso = (ms: number): string => new Date(ms).toISOString()
  const th = { failingMs: 3600_000, lagMs: 1800_000 }
  const none: UploadHealth = { ok: 0, retried: 0, failed: 0, statuses: {}, lastOkAt: null, lastFailedAt: null, firstFailedAfterOkAt: null }
  const healthy: UploadHealth = { ...none, ok: 10, lastOkAt: now - 60_000 }
  const failingNow: UploadHealth = { ...none, ok: 2, retried: 3, lastOkAt: now - 600_000, lastFailedAt: now - 60_000, firstFailedAfterOkAt: now - 540_000 }
  const onlyFailures: UploadHealth = { ...none, retried: 9, lastFailedAt: now - 60_000, firstFailedAfterOkAt: now - 840_000 }
  const on = (lastComplete: number | null, lastError: number | null = null) => ({ enabled: true, lastComplete: lastComplete === null ? null : iso(lastComplete), lastError: lastError === null ? null : iso(lastError) })

  let j = judge(on(now - 120_000), healthy, null, now, th)
  assert.deepEqual(j, { state: 'ok', failingSince: null, failingTooLong: false, lagSeconds: 120, lagging: false, alert: 'ok' })

  j = judge({ enabled: false, lastComplete: iso(now - 90_000_000), lastError: iso(now - 60_000) }, null, now - 1000, now, th)
  assert.equal(j.state, 'disabled')
  assert.equal(j.alert, 'disabled')
  assert.equal(j.failingSince, null)

  // Failures after successes in the window: failing since the first failure after the last success.
  j = judge(on(now - 600_000), failingNow, null, now, th)
  assert.equal(j.state, 'failing')
  assert.equal(j.failingSince, now - 540_000)
  assert.equal(j.failingTooLong, false)
  assert.equal(j.alert, 'ok')

  // No success in the window: dated back to last_complete (a restart re-learns an old failure).
  j = judge(on(now - 7200_000, now - 60_000), onlyFailures, null, now, th)
  assert.equal(j.failingSince, now - 7200_000)
  assert.equal(j.failingTooLong, true)
  assert.equal(j.alert, 'failing')
  assert.equal(j.lagging, true)

  // A run already being watched keeps its start.
  j = judge(on(now - 7200_000, now - 60_000), onlyFailures, now - 300_000, now, th)
  assert.equal(j.failingSince, now - 300_000)
  assert.equal(j.alert, 'lagging', 'failing too briefly for the alert, but last_complete is too old')

  // last_error alone (health unreadable) is failing; the job's fields are enough.
  j = judge(on(null, now - 60_000), null, null, now, th)
  assert.equal(j.state, 'failing')
  assert.equal(j.failingSince, now - 60_000)
  assert.equal(j.lagSeconds, null)

  // A success after the failures in the same minute is not failing.
  j = judge(on(now - 60_000), { ...none, ok: 1, retried: 1, lastOkAt: now - 60_000, lastFailedAt: now - 60_000, firstFailedAfterOkAt: null }, null, now, th)
  assert.equal(j.state, 'ok')

  // Threshold 0: failing is alerting at once.
  j = judge(on(now - 60_000, now - 1000), failingNow, null, now, { failingMs: 0, lagMs: th.lagMs })
  assert.equal(j.alert, 'failing')
})
