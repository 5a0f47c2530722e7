import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/index.js'
import { buildApp } from '../../src/app.js'
import { createLogger } from '../../src/observability/index.js'
import { batchText } from '../helpers/fixtures.js'
import { post, readStore, startServer } from '../helpers/server.js'

async function file(name: string, text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-cfg-')), name)
  await writeFile(path, text)
  return path
}

const YAML = `# routing for a security team
settings:
  SINKS: file,elasticsearch
  MAX_LINE_BYTES: 2097152
  ELASTICSEARCH_NAMESPACE: prod
datasets:
  http_requests:
    sinks: [elasticsearch]
    elasticsearch: { namespace: web }
  network_analytics_logs:
    sinks: [file, elasticsearch]
    splunk: { index: netsec, sourcetype: "cloudflare:json" }
`

test('a YAML config file sets settings and per-dataset routes; the environment wins', async () => {
  const path = await file('receiver.yaml', YAML)
  const c = loadConfig({ CONFIG_FILE: path, MAX_LINE_BYTES: '4096' })
  assert.equal(c.sinks, 'file,elasticsearch')
  assert.equal(c.elasticsearchNamespace, 'prod')
  assert.equal(c.maxLineBytes, 4096, 'environment over file')
  assert.deepEqual(c.routes.http_requests, { sinks: ['elasticsearch'], elasticsearch: { namespace: 'web' } })
  assert.equal(c.routes.network_analytics_logs?.splunk?.index, 'netsec')
  const json = await file('receiver.json', JSON.stringify({ datasets: { http_requests: { sinks: ['file'] } } }))
  assert.deepEqual(loadConfig({ CONFIG_FILE: json }).routes, { http_requests: { sinks: ['file'] } })
})

test('invalid config files stop the start with a message that says what is wrong', async () => {
  const cases: Array<[string, string, RegExp]> = [
    ['a.yaml', 'setings: {}\n', /\(top level\) must NOT have additional properties "setings"/],
    ['b.yaml', 'settings:\n  MAX_LINES: 3\n', /\/settings must NOT have additional properties "MAX_LINES"/],
    ['c.yaml', 'settings:\n  PORT: eighty\n', /PORT must be integer/],
    ['d.yaml', 'datasets:\n  http_requests:\n    sinks: [loki]\n', /\/datasets\/http_requests\/sinks\/0 must be equal to one of the allowed values \(file, elasticsearch, splunk, opensearch, kafka, discard\)/],
    ['e.yaml', 'datasets:\n  http_requests:\n    elasticsearch: { namespace: "My-NS" }\n', /namespace must match pattern/],
    ['f.yaml', 'datasets:\n  http_requests:\n    sinks: [elasticsearch]\n', /names "elasticsearch", which is not in SINKS \(file\)/],
    ['g.yaml', 'datasets: [oops\n', /is not valid YAML/],
    ['h.json', '{"datasets": {', /is not valid JSON/]
  ]
  for (const [name, text, message] of cases) {
    const path = await file(name, text)
    assert.throws(() => loadConfig({ CONFIG_FILE: path }), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'LPR_ERR_CONFIG_INVALID', name)
      assert.match(err.message, message, name)
      return true
    })
  }
  assert.throws(() => loadConfig({ CONFIG_FILE: '/nonexistent/receiver.yaml' }), /cannot be read/)
})

test('a route naming a dataset without a schema stops the start', async () => {
  const path = await file('r.yaml', 'datasets:\n  dns_lgos:\n    sinks: [file]\n')
  const config = loadConfig({ CONFIG_FILE: path, DATA_DIR: await mkdtemp(join(tmpdir(), 'lpr-cfg-data-')), LOGPUSH_TOKENS: 't' })
  await assert.rejects(buildApp(config, createLogger('silent')), /dataset "dns_lgos", which has no schema; known: access_requests, .*http_requests, .*network_analytics_logs/)
})

test('datasets go only to the destinations their route names', async (t) => {
  const path = await file('route.yaml', 'settings:\n  SINKS: file,discard\ndatasets:\n  http_requests:\n    sinks: [discard]\n')
  const server = await startServer(t, { CONFIG_FILE: path })
  const nal = batchText('network_analytics_logs', 20)
  assert.equal((await post(server, '/logpush/http_requests', batchText('http_requests', 10))).status, 200)
  assert.equal((await post(server, '/logpush/network_analytics_logs', nal)).status, 200)
  assert.equal(await readStore(server, 'events', 'network_analytics_logs'), nal)
  assert.equal(await readStore(server, 'events', 'http_requests'), '', 'http_requests is routed to discard only')
  const m = await (await fetch(`${server.url}/metrics`)).text()
  assert.match(m, /lpr_lines_delivered_total\{sink="discard",dataset="http_requests"\} 10/)
  assert.match(m, /lpr_lines_delivered_total\{sink="discard",dataset="network_analytics_logs"\} 20/)
  assert.doesNotMatch(m, /sink="file",dataset="http_requests"/)
})
