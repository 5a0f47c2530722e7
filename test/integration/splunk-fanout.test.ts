// Fan-out through the spool: a Logpush splunk:// upload into the HEC-compatible intake reaches
// the Splunk HEC double (test/helpers/hec-double.ts, Splunk's documented protocol) and the real
// Elasticsearch, each destination at its own pace.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { HecDouble, DEFAULT_HEC_TOKEN } from '../helpers/hec-double.js'
import { TEST_TOKEN, startServer, until } from '../helpers/server.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { esCount } from '../helpers/stored.js'

test('a splunk:// upload reaches the HEC double and Elasticsearch with equal counts, through HEC faults and at separate paces', { timeout: 180_000 }, async (t) => {
  const es = requireElasticsearch(t)
  if (!es) return
  const hec = await HecDouble.start({ indexes: ['main', 'netsec'] })
  t.after(() => hec.close())
  const namespace = `fan${randomBytes(3).toString('hex')}`
  const server = await startServer(t, {
    SINKS: 'elasticsearch,splunk',
    ELASTICSEARCH_URL: es,
    ELASTICSEARCH_NAMESPACE: namespace,
    SPLUNK_HEC_URL: hec.url,
    SPLUNK_HEC_TOKEN: DEFAULT_HEC_TOKEN,
    SPLUNK_HEC_BATCH_BYTES: String(200_000),
    SPLUNK_HEC_RETRY_MS: '60000',
    DELIVERY_RETRY_MAX_MS: '200'
  })
  // Splunk is "busy" for a while: Elasticsearch must not wait for it.
  hec.injectFaults(...Array.from({ length: 12 }, () => ({ status: 503, code: 9 })), { status: 500, code: 8 }, { status: 429 }, { status: 503, code: 9, afterEvents: 5 })

  const channel = '0d5f3c8e-8c6e-4b7a-9d55-3b1f6a2c9e10'
  const nal = batchText('network_analytics_logs', 1200)
  const http = batchText('http_requests', 300)
  for (const body of [nal, http]) {
    const res = await fetch(`${server.url}/services/collector/raw?channel=${channel}&sourcetype=cloudflare:json`, {
      method: 'POST', body: gzipSync(body), headers: { authorization: `Splunk ${TEST_TOKEN}`, 'content-encoding': 'gzip' }
    })
    assert.equal(res.status, 200)
    assert.deepEqual(await res.json(), { text: 'Success', code: 0 })
  }
  // Elasticsearch gets everything while Splunk is still refusing.
  // A deadline, not a count of tries: 200 tries 100 ms apart gave it about 20 s whatever the
  // machine's load.
  await until('Elasticsearch to hold the 1200 lines', 120_000, async () => await esCount(es, `logs-cloudflare.network_analytics_logs-${namespace}`) >= 1200 || undefined)
  assert.equal(await esCount(es, `logs-cloudflare.network_analytics_logs-${namespace}`), 1200)

  assert.ok(await server.built.drained(120_000), 'both destinations caught up')
  assert.equal(hec.pendingFaults, 0, 'every injected fault was met')
  assert.equal(await esCount(es, `logs-cloudflare.http_requests-${namespace}`), 300)
  const sent = (nal + http).split('\n').filter(Boolean)
  // The envelope ends with "event":<the line as sent>}: compare the lines byte for byte.
  const got = hec.events.map((e) => e.raw.slice(e.raw.indexOf('"event":') + '"event":'.length, -1))
  assert.equal(hec.events.length, sent.length, 'Splunk has as many events as Elasticsearch')
  assert.deepEqual([...got].sort(), [...sent].sort(), 'the same lines, exactly, none twice')
  for (const e of hec.events) {
    assert.equal(e.sourcetype, 'cloudflare:json')
    assert.equal(typeof e.time, 'number')
  }
})
