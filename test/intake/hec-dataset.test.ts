// Which dataset an HEC upload is (issue 10, point 3): ?dataset=, then the sourcetype= every
// splunk:// destination_conf carries (schemas/splunk/sourcetypes.json plus CONFIG_FILE
// hec.sourcetypes), then the records' fields. A batch none of these tells used to be answered
// 400, which Logpush retries and then drops: now it is kept whole in the dead-letter store,
// answered with HEC's success, and counted.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFile, mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { TEST_TOKEN, readDeadLetters, readStore, startServer, type TestServer } from '../helpers/server.js'
import { intakeSourcetypes, loadSplunkSourcetypes, sinkSourcetypes } from '../../src/splunk-sourcetypes.js'
import { schemasDir } from '../../src/paths.js'

const CHANNEL = '6f0c5e1e-4d1f-4c1b-9a7e-2c3d4e5f6a7b'

async function hec(server: TestServer, path: string, body: string): Promise<{ status: number, json: any }> {
  const res = await fetch(server.url + path, {
    method: 'POST',
    body: gzipSync(body),
    headers: { authorization: `Splunk ${TEST_TOKEN}`, 'content-encoding': 'gzip' }
  })
  return { status: res.status, json: await res.json() }
}

const SUCCESS = { status: 200, json: { text: 'Success', code: 0 } }

test('sourcetype defaults are data: cloudflare:json for every dataset, cloudflare:access for access_requests, overridable', () => {
  const data = loadSplunkSourcetypes(schemasDir)
  assert.equal(data.default, 'cloudflare:json')
  const known = ['access_requests', 'http_requests', 'gateway_dns']
  assert.deepEqual(Object.fromEntries(sinkSourcetypes(data, known, '', new Map())), {
    access_requests: 'cloudflare:access', http_requests: 'cloudflare:json', gateway_dns: 'cloudflare:json'
  })
  // SPLUNK_HEC_SOURCETYPE sets every dataset; CONFIG_FILE's per-dataset value wins over it.
  assert.deepEqual(Object.fromEntries(sinkSourcetypes(data, known, 'my:st', new Map([['http_requests', 'cf:web']]))), {
    access_requests: 'my:st', http_requests: 'cf:web', gateway_dns: 'my:st'
  })
  // The intake map: cloudflare:<dataset>, the data's entries for known datasets, then the operator's.
  const intake = intakeSourcetypes(data, ['access_requests', 'http_requests'], { 'cloudflare:json': 'http_requests', 'cloudflare:access': 'http_requests' })
  assert.equal(intake.get('cloudflare:http_requests'), 'http_requests')
  assert.equal(intake.get('cloudflare:access_requests'), 'access_requests')
  assert.equal(intake.get('cloudflare:access'), 'http_requests')
  assert.equal(intake.get('cloudflare:json'), 'http_requests')
  assert.equal(intake.has('cloudflare:dns'), false, 'gateway_dns has no schema here')
  assert.equal(intakeSourcetypes(data, ['gateway_dns'], {}).get('cloudflare:dns'), 'gateway_dns')
})

test('detection order: ?dataset=, then sourcetype=, then the records; cloudflare:json names no dataset', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-hec-'))
  const configFile = join(dir, 'receiver.yaml')
  await writeFile(configFile, 'hec:\n  sourcetypes:\n    "acme:netflow": network_analytics_logs\n')
  const server = await startServer(t, { CONFIG_FILE: configFile })
  // Records no schema knows better than another: only the URL can say.
  const anon = '{"Foo":1}\n{"Foo":2}\n'
  assert.deepEqual(await hec(server, `/services/collector/raw?channel=${CHANNEL}&sourcetype=cloudflare:http_requests`, anon), SUCCESS)
  assert.deepEqual(await hec(server, `/services/collector/raw?channel=${CHANNEL}&sourcetype=acme:netflow`, '{"Foo":3}\n'), SUCCESS)
  // ?dataset= wins over sourcetype=.
  assert.deepEqual(await hec(server, `/services/collector/raw?dataset=network_analytics_logs&sourcetype=cloudflare:http_requests`, '{"Foo":4}\n'), SUCCESS)
  // cloudflare:json is shared by most datasets: the records' fields decide.
  const nal = batchText('network_analytics_logs', 3)
  assert.deepEqual(await hec(server, `/services/collector/raw?channel=${CHANNEL}&sourcetype=cloudflare:json`, nal), SUCCESS)
  assert.equal(await readStore(server, 'events', 'http_requests'), anon)
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), '{"Foo":3}\n{"Foo":4}\n' + nal)
  assert.deepEqual(await readDeadLetters(server, '_unknown'), [])
})

test('a batch whose dataset cannot be told is kept whole as dead letters, answered Success, and counted', async (t) => {
  const server = await startServer(t, { MAX_LINE_BYTES: '1024' })
  const lines = ['{"Foo":1,"Text":"caf\\u00e9 \\/x"}', '{"Bar":[1,2]}', 'not json at all', '{"Baz":1652295571783000123}']
  const body = lines[0] + '\n\n' + lines.slice(1).join('\n') + '\n'
  assert.deepEqual(await hec(server, `/services/collector/raw?channel=${CHANNEL}&sourcetype=cloudflare:json`, body), SUCCESS)
  // The /event endpoint keeps each event's text the same way.
  assert.deepEqual(await hec(server, '/services/collector/event', '{"event":{"Qux":true}} {"event":"{\\"Quux\\":1}"}'), SUCCESS)
  const dead = await readDeadLetters(server, '_unknown')
  assert.deepEqual(dead.map((d) => d.raw), [...lines, '{"Qux":true}', '{"Quux":1}'])
  assert.deepEqual(dead.map((d) => d.line), [1, 3, 4, 5, 1, 2], 'line numbers count the blank line')
  for (const d of dead) {
    assert.equal(d.code, 'LPR_ERR_PIPELINE_UNKNOWN_DATASET')
    assert.equal(d.dataset, '_unknown')
    assert.equal(d.stage, 'validation')
  }
  assert.match(dead[0].reason, /sourcetype=cloudflare:json names no dataset/)
  assert.match(dead[4].reason, /no sourcetype=/)
  assert.equal(await readStore(server, 'events', 'http_requests'), '')

  const health = await (await fetch(`${server.url}/health`)).json() as any
  assert.deepEqual({ batches: health.datasets._unknown.batches, rejected: health.datasets._unknown.rejected, accepted: health.datasets._unknown.accepted },
    { batches: 2, rejected: 6, accepted: 0 })
  const metrics = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(metrics, /^lpr_lines_rejected_total\{dataset="_unknown",reason="LPR_ERR_PIPELINE_UNKNOWN_DATASET"\} 6$/m)
  assert.match(metrics, /^lpr_batches_accepted_total\{dataset="_unknown"\} 2$/m)

  // Bounded by the existing limits: an over-long line still refuses the whole body, nothing kept.
  const long = `{"Foo":"${'x'.repeat(2000)}"}\n`
  const r = await hec(server, '/services/collector/raw', '{"Foo":1}\n' + long)
  assert.equal(r.status, 413)
  // A body that is not JSON objects at all is still refused as such (not NDJSON), with code 6.
  const csv = await hec(server, '/services/collector/raw', 'a,b,c\n1,2,3\n')
  assert.equal(csv.status, 400)
  assert.equal(csv.json.code, 6)
  assert.equal((await readDeadLetters(server, '_unknown')).length, 6)
})
