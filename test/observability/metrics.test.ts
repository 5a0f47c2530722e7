import { test } from 'node:test'
import assert from 'node:assert/strict'
import { batchText } from '../helpers/fixtures.js'
import { post, startServer } from '../helpers/server.js'

/**
 * Parses the Prometheus text format into name{labels} -> value. Label order carries no meaning in
 * the format (prom-client writes a histogram's `le` first), so `le` is moved last, as written below.
 */
function parse(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    const key = line.slice(0, i).replace(/\{(le="[^"]*"),(.+)\}$/, '{$2,$1}')
    out.set(key, Number(line.slice(i + 1)))
  }
  return out
}

test('metrics after a known load: names, labels and values', async (t) => {
  const server = await startServer(t)
  const body = batchText('http_requests', 10) + 'oops\n{"RayID":"x","ClientASN":"not a number"}\n{"RayID":"y","NewField":1}\n'
  assert.equal((await post(server, '/logpush/http_requests', body)).status, 200)
  assert.equal((await post(server, '/logpush/http_requests', body)).json.duplicate, true)
  assert.equal((await post(server, '/logpush/http_requests', 'test')).status, 200)
  assert.equal((await post(server, '/logpush/nope', body)).status, 404)
  assert.equal((await post(server, '/logpush/network_analytics_logs', batchText('network_analytics_logs', 7))).status, 200)
  assert.ok(await server.built.drained(10_000))

  const res = await fetch(`${server.url}/metrics`)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type')!, /^text\/plain; version=0\.0\.4/)
  const text = await res.text()
  assert.match(text, /# TYPE lpr_lines_accepted_total counter/)
  assert.match(text, /# TYPE lpr_http_request_duration_seconds histogram/)
  const m = parse(text)
  const expect: Record<string, number> = {
    'lpr_lines_accepted_total{dataset="http_requests"}': 11,
    'lpr_lines_accepted_total{dataset="network_analytics_logs"}': 7,
    'lpr_batches_accepted_total{dataset="http_requests"}': 1,
    'lpr_batches_deduplicated_total{dataset="http_requests"}': 1,
    'lpr_validation_uploads_total{dataset="http_requests"}': 1,
    'lpr_lines_rejected_total{dataset="http_requests",reason="LPR_ERR_PIPELINE_LINE_NOT_JSON"}': 1,
    'lpr_lines_rejected_total{dataset="http_requests",reason="LPR_ERR_PIPELINE_LINE_SCHEMA"}': 1,
    'lpr_unknown_field_lines_total{dataset="http_requests",field="NewField"}': 1,
    'lpr_lines_delivered_total{sink="file",dataset="http_requests"}': 11,
    'lpr_lines_delivered_total{sink="file",dataset="network_analytics_logs"}': 7,
    'lpr_http_requests_total{route="/logpush/:dataset",status="200"}': 4,
    'lpr_http_requests_total{route="/logpush/:dataset",status="404"}': 1,
    'lpr_http_request_duration_seconds_count{route="/logpush/:dataset"}': 5,
    'lpr_delivery_duration_seconds_count{sink="file"}': 2,
    'lpr_sink_pending_lines{sink="file"}': 0,
    'lpr_sink_up{sink="file"}': 1,
    'lpr_spool_accepting': 1
  }
  for (const [k, v] of Object.entries(expect)) assert.equal(m.get(k), v, k)
  assert.ok(m.get('process_resident_memory_bytes')! > 0)
  assert.equal(m.get('lpr_http_request_duration_seconds_bucket{route="/logpush/:dataset",le="+Inf"}'), 5)
})

test('METRICS_TOKEN protects /metrics', async (t) => {
  const server = await startServer(t, { METRICS_TOKEN: 'scrape-secret-123' })
  assert.equal((await fetch(`${server.url}/metrics`)).status, 401)
  assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer wrong' } })).status, 401)
  assert.equal((await fetch(`${server.url}/metrics`, { headers: { authorization: 'Bearer scrape-secret-123' } })).status, 200)
  assert.equal((await fetch(`${server.url}/health`)).status, 200, '/health stays open for load balancers')
})
