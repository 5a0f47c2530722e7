// The OpenSearch destination against a REAL OpenSearch node (the integ-test distribution, see
// test/support/opensearch.ts): every dataset through the templates derived from the
// Elasticsearch destination's, re-sends that add nothing, a node down at start and in the middle
// of a batch, and AWS SigV4 checked by the AWS SDK's own signer (test/helpers/sigv4-proxy.ts).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtemp } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { TIMESTAMP_FORMATS, fullLine, fullLineEventTime, loadSchemas, timestampText } from '../helpers/dataset-lines.js'
import { batchText } from '../helpers/fixtures.js'
import { health, post, readDeadLetters, startServer, until, type TestServer } from '../helpers/server.js'
import { controlServer, requireOpenSearch } from '../helpers/extra-servers.js'
import { startSigV4Proxy } from '../helpers/sigv4-proxy.js'
import { makeCertificates } from '../support/certificates.js'

async function os(url: string, path: string, init: RequestInit = {}): Promise<string> {
  const res = await fetch(url + path, { ...init, headers: { 'content-type': 'application/json', ...init.headers } })
  const text = await res.text()
  if (!res.ok) throw new Error(`${init.method ?? 'GET'} ${path}: ${res.status} ${text}`)
  return text
}

async function count(url: string, stream: string, server: TestServer): Promise<number> {
  assert.ok(await server.built.drained(240_000), 'the spool drained')
  await os(url, `/${stream}/_refresh`, { method: 'POST' })
  return JSON.parse(await os(url, `/${stream}/_count`)).count
}

function namespace(): string {
  return `o${randomBytes(4).toString('hex')}`
}

test('all 37 datasets land in OpenSearch data streams with the Elasticsearch mappings (flat_object for flattened), @timestamp in nanoseconds; a re-send adds no document', { timeout: 300_000 }, async (t: TestContext) => {
  const url = requireOpenSearch(t)
  if (!url) return
  const ns = namespace()
  // Re-send detection off: the second send must be stopped by the _id, not by the spool.
  const server = await startServer(t, { SINKS: 'opensearch', OPENSEARCH_URL: url, OPENSEARCH_NAMESPACE: ns, DEDUPE_WINDOW_SECONDS: '0' })
  const schemas = loadSchemas()
  assert.equal(schemas.size, 37)
  const bodies = new Map<string, string>()
  for (const [id, schema] of schemas) {
    let body = ''
    for (const [i, format] of TIMESTAMP_FORMATS.entries()) body += fullLine(schema, format, i) + '\n'
    bodies.set(id, body)
    const r = await post(server, `/logpush/${id}`, body)
    assert.equal(r.status, 200, `${id}: ${JSON.stringify(r.json)}`)
    assert.equal(r.json.rejected, 0, `${id}: ${JSON.stringify(r.json)}`)
  }
  assert.ok(await server.built.drained(240_000), 'delivered to OpenSearch')
  for (const id of schemas.keys()) assert.deepEqual(await readDeadLetters(server, id), [], `${id}: no mapping error`)
  await os(url, `/logs-cloudflare.*-${ns}/_refresh`, { method: 'POST' })
  for (const [id, schema] of schemas) {
    const stream = `logs-cloudflare.${id}-${ns}`
    const raw = await os(url, `/${stream}/_search?size=20`)
    const hits = JSON.parse(raw).hits.hits.map((h: any) => h._source)
    const want = TIMESTAMP_FORMATS.map((format, i) => fullLineEventTime(schema, format, i))
    assert.deepEqual(hits.map((h: any) => h['@timestamp']).sort(), [...want].sort(), `${id}: @timestamp`)
    const field = schema['x-event-time']
    if (schema.properties[field]!['x-cloudflare-type'] !== 'int') {
      const nano = timestampText('unixnano', TIMESTAMP_FORMATS.indexOf('unixnano'))
      assert.ok(raw.includes(`"${field}":${nano}`), `${id}: unixnano ${nano} intact in _source`)
    }
  }
  const mapping = JSON.parse(await os(url, `/logs-cloudflare.http_requests-${ns}/_mapping`))
  const props = (Object.values(mapping)[0] as any).mappings.properties
  assert.equal(props['@timestamp'].type, 'date_nanos')
  assert.equal(props.ClientIP.type, 'ip')
  assert.equal(props.EdgeStartTimestamp.type, 'date_nanos')
  assert.equal(props.ClientRequestBytes.type, 'long')
  assert.equal(props.RequestHeaders.type, 'flat_object')
  assert.equal(props.ClientRequestURI.ignore_above, 8191)
  assert.equal(props.event.properties.dataset.type, 'keyword')

  for (const [id, body] of bodies) assert.equal((await post(server, `/logpush/${id}`, body)).status, 200)
  for (const id of schemas.keys()) assert.equal(await count(url, `logs-cloudflare.${id}-${ns}`, server), TIMESTAMP_FORMATS.length, `${id}: the re-send added nothing`)
})

test('OpenSearch down at start, and stopped in the middle of a batch: everything answered 200 is delivered once it is back', { timeout: 600_000 }, async (t) => {
  const url = requireOpenSearch(t)
  if (!url) return
  const ns = namespace()
  await controlServer('opensearch', 'stop')
  t.after(() => controlServer('opensearch', 'start'))
  const server = await startServer(t, { SINKS: 'opensearch', OPENSEARCH_URL: url, OPENSEARCH_NAMESPACE: ns, OPENSEARCH_BULK_BYTES: String(64 * 1024), OPENSEARCH_RETRY_MS: '2000' })
  const early = batchText('network_analytics_logs', 2000)
  assert.equal((await post(server, '/logpush/network_analytics_logs', early)).status, 200)
  assert.ok((await health(server)).sinks.opensearch.pendingLines > 0, 'held in the spool while OpenSearch is down')
  await controlServer('opensearch', 'start')
  assert.equal(await count(url, `logs-cloudflare.network_analytics_logs-${ns}`, server), 2000)

  const n = 30_000
  const big = post(server, '/logpush/network_analytics_logs', batchText('network_analytics_logs', n, 'unixnano', 2000))
  const stream = `logs-cloudflare.network_analytics_logs-${ns}`
  await until('delivery under way', 120_000, async () => {
    await os(url, `/${stream}/_refresh`, { method: 'POST' })
    return JSON.parse(await os(url, `/${stream}/_count`)).count > 2000 ? true : undefined
  })
  await controlServer('opensearch', 'stop')
  assert.equal((await big).status, 200)
  assert.ok((await health(server)).sinks.opensearch.pendingLines > 0, 'part of the batch waits in the spool')
  await controlServer('opensearch', 'start')
  assert.equal(await count(url, stream, server), 2000 + n)
})

test('AWS SigV4 (es): requests signed with the standard chain\'s credentials pass the AWS SDK signer; a wrong secret stops delivery with LPR_ERR_SINK_OPENSEARCH_CREDENTIALS, nothing dead-lettered', { timeout: 180_000 }, async (t) => {
  const url = requireOpenSearch(t)
  if (!url) return
  const proxy = await startSigV4Proxy(url, new Map([['AKIDLPRTEST', 'right-secret']]), 'eu-west-1', 'es')
  t.after(() => proxy.close())
  // The standard chain's first source: the environment.
  const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY }
  t.after(() => {
    for (const [k, v] of [['AWS_ACCESS_KEY_ID', saved.id], ['AWS_SECRET_ACCESS_KEY', saved.secret]] as const) {
      if (v === undefined) delete process.env[k]
      else process.env[k] = v
    }
  })
  process.env.AWS_ACCESS_KEY_ID = 'AKIDLPRTEST'
  process.env.AWS_SECRET_ACCESS_KEY = 'right-secret'
  const ns = namespace()
  const env = { SINKS: 'opensearch', OPENSEARCH_URL: proxy.url, OPENSEARCH_AUTH: 'aws-sigv4', OPENSEARCH_AWS_REGION: 'eu-west-1', OPENSEARCH_NAMESPACE: ns, OPENSEARCH_RETRY_MS: '1000' }
  const good = await startServer(t, env)
  assert.equal((await post(good, '/logpush/dns_logs', batchText('dns_logs', 300))).status, 200)
  assert.equal(await count(url, `logs-cloudflare.dns_logs-${ns}`, good), 300)
  assert.equal(proxy.counts.refused, 0, 'every signed request passed the AWS SDK signer')
  assert.ok(proxy.counts.forwarded > 0)

  process.env.AWS_SECRET_ACCESS_KEY = 'wrong-secret'
  const bad = await startServer(t, { ...env, OPENSEARCH_NAMESPACE: namespace() })
  assert.equal((await post(bad, '/logpush/dns_logs', batchText('dns_logs', 50))).status, 200)
  const stopped = await until('delivery stopped', 60_000, async () => (await health(bad)).sinks.opensearch.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_OPENSEARCH_CREDENTIALS')
  assert.match(stopped.reason, /HTTP 403.*signature we calculated does not match/)
  assert.ok(proxy.counts.refused > 0)
  assert.deepEqual(await readDeadLetters({ dataDir: bad.dataDir }, 'dns_logs'), [], 'a refused credential dead-letters nothing')
  assert.ok((await health(bad)).sinks.opensearch.pendingLines > 0, 'the lines wait in the spool')
})

test('basic auth over TLS with OPENSEARCH_CA_FILE: the right password delivers; a wrong one (401) stops delivery with LPR_ERR_SINK_OPENSEARCH_CREDENTIALS', { timeout: 180_000 }, async (t) => {
  const url = requireOpenSearch(t)
  if (!url) return
  // The integ-test distribution has no security plugin: a TLS front that checks the password the
  // way the security plugin does (401 and WWW-Authenticate) and forwards what passes.
  const tls = await makeCertificates(await mkdtemp(join(tmpdir(), 'lpr-os-tls-')))
  const target = new URL(url)
  const want = `Basic ${Buffer.from('logpush:right-password').toString('base64')}`
  const front = createHttpsServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    if (req.headers.authorization !== want) {
      req.resume()
      res.writeHead(401, { 'www-authenticate': 'Basic realm="OpenSearch Security"', 'content-type': 'text/plain' }).end('Unauthorized')
      return
    }
    const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.headers)
      upRes.pipe(res)
    })
    up.on('error', () => res.destroy())
    req.pipe(up)
  })
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve))
  t.after(() => { front.closeAllConnections(); front.close() })
  const frontUrl = `https://127.0.0.1:${(front.address() as { port: number }).port}`
  const ns = namespace()
  const env = { SINKS: 'opensearch', OPENSEARCH_URL: frontUrl, OPENSEARCH_AUTH: 'basic', OPENSEARCH_USERNAME: 'logpush', OPENSEARCH_CA_FILE: tls.caFile, OPENSEARCH_NAMESPACE: ns, OPENSEARCH_RETRY_MS: '1000' }
  const good = await startServer(t, { ...env, OPENSEARCH_PASSWORD: 'right-password' })
  assert.equal((await post(good, '/logpush/dns_logs', batchText('dns_logs', 100))).status, 200)
  assert.equal(await count(url, `logs-cloudflare.dns_logs-${ns}`, good), 100)
  const bad = await startServer(t, { ...env, OPENSEARCH_PASSWORD: 'wrong-password', OPENSEARCH_NAMESPACE: namespace() })
  assert.equal((await post(bad, '/logpush/dns_logs', batchText('dns_logs', 10))).status, 200)
  const stopped = await until('delivery stopped', 60_000, async () => (await health(bad)).sinks.opensearch.stopped ?? undefined)
  assert.equal(stopped.code, 'LPR_ERR_SINK_OPENSEARCH_CREDENTIALS')
  assert.match(stopped.reason, /HTTP 401/)
  assert.deepEqual(await readDeadLetters({ dataDir: bad.dataDir }, 'dns_logs'), [])
})
