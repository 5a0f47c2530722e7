// Every dataset against a REAL Elasticsearch: the lines with every field of the reference, in all
// five timestamp formats, must land in logs-cloudflare.<dataset>-<namespace> through the index
// templates generated from schemas/, without one mapping error, with @timestamp equal to the event
// time (nanoseconds where the format has them) and unixnano integers intact in _source. Huge
// values (a 40 KB ClientRequestURI, 100 KB of RequestHeaders) must index too: Lucene refuses a
// keyword term above 32 KB, so without ignore_above such a line would be a mapping failure.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { TIMESTAMP_FORMATS, fullLine, fullLineEventTime, loadSchemas, timestampText } from '../helpers/dataset-lines.js'
import { post, readDeadLetters, startServer } from '../helpers/server.js'
import { requireElasticsearch } from '../helpers/elasticsearch-env.js'
import { indexTemplate } from '../../src/sinks/elasticsearch/index.js'

async function es(url: string, path: string, init: RequestInit = {}): Promise<string> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return text
}

test('all 37 datasets land in their data streams: every field, five timestamp formats, huge values, no mapping error', { timeout: 180_000 }, async (t) => {
  const url = requireElasticsearch(t)
  if (!url) return
  const namespace = `d${randomBytes(4).toString('hex')}`
  const server = await startServer(t, { SINKS: 'elasticsearch', ELASTICSEARCH_URL: url, ELASTICSEARCH_NAMESPACE: namespace })
  const schemas = loadSchemas()
  const huge = `{"EdgeStartTimestamp":${timestampText('unixnano', 99)},"RayID":"huge","ClientRequestURI":"/${'u'.repeat(40 * 1024)}",` +
    `"RequestHeaders":{"x-big":"${'h'.repeat(100 * 1024)}","accept":"*/*"},"ClientRequestReferer":"${'r'.repeat(40 * 1024)}"}`
  for (const [id, schema] of schemas) {
    let body = ''
    for (const [i, format] of TIMESTAMP_FORMATS.entries()) body += fullLine(schema, format, i) + '\n'
    if (id === 'http_requests') body += huge + '\n'
    const r = await post(server, `/logpush/${id}`, body)
    assert.equal(r.status, 200, `${id}: ${JSON.stringify(r.json)}`)
    assert.equal(r.json.rejected, 0, `${id}: ${JSON.stringify(r.json)}`)
  }
  assert.ok(await server.built.drained(120_000), 'delivered to Elasticsearch')
  for (const id of schemas.keys()) assert.deepEqual(await readDeadLetters(server, id), [], `${id}: no mapping error`)
  await es(url, `/logs-cloudflare.*-${namespace}/_refresh`, { method: 'POST' })

  for (const [id, schema] of schemas) {
    const stream = `logs-cloudflare.${id}-${namespace}`
    const field = schema['x-event-time']
    // Read as text: JSON.parse would round the unixnano digits we are checking.
    const raw = await es(url, `/${stream}/_search?size=20`)
    const hits = JSON.parse(raw).hits.hits.map((h: any) => h._source)
    const want = TIMESTAMP_FORMATS.map((format, i) => fullLineEventTime(schema, format, i))
    if (id === 'http_requests') want.push(fullLineEventTime(schema, 'unixnano', 99))
    assert.deepEqual(hits.map((h: any) => h['@timestamp']).sort(), [...want].sort(), `${id}: @timestamp from ${field}`)
    if (schema.properties[field]!['x-cloudflare-type'] !== 'int') {
      const nano = timestampText('unixnano', TIMESTAMP_FORMATS.indexOf('unixnano'))
      assert.ok(raw.includes(`"${field}":${nano}`), `${id}: unixnano ${nano} intact in _source`)
    }
    for (const h of hits) assert.equal(h.data_stream.dataset, `cloudflare.${id}`)
  }

  const http = `logs-cloudflare.http_requests-${namespace}`
  const big = JSON.parse(await es(url, `/${http}/_search`, { method: 'POST', body: JSON.stringify({ query: { term: { RayID: 'huge' } } }) }))
  assert.equal(big.hits.total.value, 1, 'the line with huge values is indexed and searchable')
  assert.equal(big.hits.hits[0]._source.ClientRequestURI.length, 40 * 1024 + 1)

  const mapping = JSON.parse(await es(url, `/${http}/_mapping`))
  const props = (Object.values(mapping)[0] as any).mappings.properties
  assert.equal(props.ClientIP.type, 'ip')
  assert.equal(props.EdgeStartTimestamp.type, 'date_nanos')
  assert.equal(props.ClientRequestBytes.type, 'long')
  assert.equal(props.RequestHeaders.type, 'flattened')
  assert.equal(props.Subrequests.type, 'flattened')
  assert.equal(props.ClientRequestURI.ignore_above, 8191)
  const template = JSON.parse(await es(url, '/_index_template/logs-cloudflare.http_requests')).index_templates[0].index_template
  assert.deepEqual(template.template.lifecycle, { enabled: true }, 'a lifecycle (rollover), no retention by default')
  // With ELASTICSEARCH_DATA_RETENTION the template carries it and Elasticsearch takes it (put
  // under a name of its own, so the shared templates stay as the other tests install them).
  const retained = indexTemplate('http_requests', schemas.get('http_requests')!, { dataRetention: '7d' }) as any
  await es(url, '/_index_template/lpr-test-retention', { method: 'PUT', body: JSON.stringify({ ...retained, index_patterns: ['lpr-test-retention-*'], priority: 201 }) })
  const back = JSON.parse(await es(url, '/_index_template/lpr-test-retention')).index_templates[0].index_template
  assert.deepEqual(back.template.lifecycle, { enabled: true, data_retention: '7d' })
  await es(url, '/_index_template/lpr-test-retention', { method: 'DELETE' })
})
