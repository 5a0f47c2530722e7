// Type drift (issue 10, point 6): a field whose value has a JSON type the schema does not allow
// is counted per (dataset, field) in /health and /metrics, with exact numbers, on the in-thread
// path and on the parse workers alike, and bounded by DRIFT_FIELDS_MAX.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { batchText } from '../helpers/fixtures.js'
import { post, startServer } from '../helpers/server.js'

const drifting = [
  // ClientASN is an integer in the schema: a string is a type change.
  '{"RayID":"a1","ClientASN":"AS13335"}',
  '{"RayID":"a2","ClientASN":"AS13335"}',
  '{"RayID":"a3","ClientASN":"AS13335"}',
  // Two fields drift in one line: both are counted (ajv reports only the first).
  '{"RayID":"b1","ClientASN":"x","EdgeResponseStatus":"200"}',
  '{"RayID":"b2","EdgeResponseStatus":200.5,"CacheTieredFill":"yes","ClientASN":"y"}',
  // A string timestamp that does not match the pattern is no type change (strings are allowed).
  '{"RayID":"c1","EdgeStartTimestamp":"yesterday"}',
  // Unknown fields never count as type drift, whatever their value.
  '{"RayID":"d1","NewField":{"x":1},"ClientIP":42}'
]

function body(): string {
  // Valid lines first: two broken first lines would make the batch "not NDJSON".
  return batchText('http_requests', 5) + drifting.join('\n') + '\n'
}

for (const workers of ['0', '2']) {
  test(`type drift counted per dataset and field, exactly (PARSE_WORKERS=${workers})`, async (t) => {
    const server = await startServer(t, { PARSE_WORKERS: workers })
    const r = await post(server, '/logpush/http_requests', body())
    assert.equal(r.status, 200)
    assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 5, rejected: 7 })
    // A re-send is not stored again, and counts nothing again.
    assert.equal((await post(server, '/logpush/http_requests', body())).json.duplicate, true)

    const health = await (await fetch(`${server.url}/health`)).json() as any
    assert.deepEqual(health.datasets.http_requests.typeMismatches, { ClientASN: 5, EdgeResponseStatus: 2, CacheTieredFill: 1, ClientIP: 1 })
    assert.deepEqual(health.datasets.network_analytics_logs.typeMismatches, {})

    const metrics = await (await fetch(`${server.url}/metrics`)).text()
    assert.match(metrics, /# TYPE lpr_type_mismatch_lines_total counter/)
    const samples = metrics.split('\n').filter((l) => l.startsWith('lpr_type_mismatch_lines_total{')).sort()
    assert.deepEqual(samples, [
      'lpr_type_mismatch_lines_total{dataset="http_requests",field="CacheTieredFill"} 1',
      'lpr_type_mismatch_lines_total{dataset="http_requests",field="ClientASN"} 5',
      'lpr_type_mismatch_lines_total{dataset="http_requests",field="ClientIP"} 1',
      'lpr_type_mismatch_lines_total{dataset="http_requests",field="EdgeResponseStatus"} 2'
    ])
  })
}

test('type-drift field names are bounded by DRIFT_FIELDS_MAX, the rest counted as _other', async (t) => {
  const server = await startServer(t, { DRIFT_FIELDS_MAX: '1', PARSE_WORKERS: '0' })
  assert.equal((await post(server, '/logpush/http_requests', body())).status, 200)
  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.deepEqual(health.datasets.http_requests.typeMismatches, { ClientASN: 5, _other: 4 })
})
