// In-process TLS for users without a TLS-terminating balancer: HTTP/1.1 and HTTP/2 on one port
// (ALPN), and a certificate renewed on disk is picked up on SIGHUP without a restart.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, readFile } from 'node:fs/promises'
import { connect as h2connect } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { spawnService } from '../helpers/process.js'

async function makeCert(dir: string, name: string): Promise<{ cert: string, key: string, pem: string }> {
  const cert = join(dir, `${name}.crt`)
  const key = join(dir, `${name}.key`)
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', `/CN=${name}`,
    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', key, '-out', cert], { stdio: 'ignore' })
  return { cert, key, pem: await readFile(cert, 'utf8') }
}

function h1Post(url: string, ca: string, body: Buffer, token: string): Promise<{ status: number, json: any, alpn: string | false | null, peer: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, 'content-encoding': 'gzip' } }, (res) => {
      let text = ''
      const socket = res.socket as import('node:tls').TLSSocket
      const alpn = socket.alpnProtocol
      const peer = socket.getPeerX509Certificate?.()?.fingerprint256 ?? ''
      res.on('data', (d: Buffer) => { text += d.toString() })
      res.on('end', () => resolve({ status: res.statusCode!, json: JSON.parse(text), alpn, peer }))
    })
    req.on('error', reject)
    req.end(body)
  })
}

function h2Post(origin: string, ca: string, path: string, body: Buffer, token: string): Promise<{ status: number, json: any, peer: string }> {
  return new Promise((resolve, reject) => {
    const session = h2connect(origin, { ca })
    session.on('error', reject)
    const stream = session.request({ ':method': 'POST', ':path': path, authorization: `Bearer ${token}`, 'content-encoding': 'gzip' })
    let status = 0
    let text = ''
    stream.on('response', (h) => { status = Number(h[':status']) })
    stream.on('data', (d: Buffer) => { text += d.toString() })
    stream.on('end', () => {
      const peer = (session.socket as import('node:tls').TLSSocket).getPeerX509Certificate?.()?.fingerprint256 ?? ''
      session.close()
      resolve({ status, json: JSON.parse(text), peer })
    })
    stream.on('error', reject)
    stream.end(body)
  })
}

test('TLS: HTTP/1.1 and HTTP/2 on one port, certificate reloaded on SIGHUP', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-tls-'))
  const first = await makeCert(dir, 'first')
  const second = await makeCert(dir, 'second')
  // The service reads these paths; "renewing" copies the second pair over them.
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key') }
  execFileSync('cp', [first.cert, live.cert]); execFileSync('cp', [first.key, live.key])
  const service = await spawnService(t, { TLS_CERT_FILE: live.cert, TLS_KEY_FILE: live.key })
  const url = `${service.url}/logpush/http_requests`

  const h1 = await h1Post(url, first.pem, gzipSync(batchText('http_requests', 20)), service.token)
  assert.equal(h1.status, 200)
  assert.deepEqual(h1.json, { dataset: 'http_requests', accepted: 20, rejected: 0 })
  assert.equal(h1.alpn, false, 'a client without ALPN gets HTTP/1.1')
  const h2 = await h2Post(service.url, first.pem, '/logpush/http_requests', gzipSync(batchText('http_requests', 30, 'unixnano', 20)), service.token)
  assert.equal(h2.status, 200)
  assert.deepEqual(h2.json, { dataset: 'http_requests', accepted: 30, rejected: 0 })
  assert.equal(h2.peer, new X509Certificate(first.pem).fingerprint256)
  const bad = await h2Post(service.url, first.pem, '/logpush/nope', gzipSync('x\n'), service.token)
  assert.equal(bad.status, 404, 'errors travel over HTTP/2 too')

  execFileSync('cp', [second.cert, live.cert]); execFileSync('cp', [second.key, live.key])
  service.child.kill('SIGHUP')
  const expected = new X509Certificate(second.pem).fingerprint256
  let after = ''
  // A deadline, not a count of tries: 50 tries 100 ms apart gave the reload about 5 s whatever
  // the machine's load.
  const deadline = Date.now() + 30_000
  for (let i = 0; Date.now() < deadline && after !== expected; i++) {
    await new Promise((r) => setTimeout(r, 100))
    after = (await h2Post(service.url, second.pem, '/logpush/http_requests', gzipSync(batchText('http_requests', 1, 'unixnano', 1000 + i)), service.token).catch(() => ({ peer: '' }))).peer
  }
  assert.equal(after, expected, 'new connections get the renewed certificate')
  assert.equal(service.child.exitCode, null, 'no restart needed')
})
