// Issue 11, item 1: a client could crash the whole process. An upload whose connection closed
// within about a millisecond of its first body bytes made a stream error while the staging file
// was being opened, before any pipeline listened to that stream: an unhandled 'error', and Node
// exited with every request in flight. This test sends uploads that end badly at every stage of a
// request (headers only, a few body bytes, mid-gzip, during staging, a reset, broken chunked
// bodies, slow senders) while good batches keep coming. The server runs in this test's process,
// so a crash fails the test; every good batch must get its 200 and be stored, and nothing of a
// broken upload may be stored or left in staging.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { connect, type Socket } from 'node:net'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { batchText } from '../helpers/fixtures.js'
import { TEST_TOKEN, post, readDeadLetters, readStore, startServer } from '../helpers/server.js'

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A raw HTTP/1.1 exchange: `act` writes what it likes; resolves when the socket is gone (or after `timeoutMs`). */
function raw(port: number, act: (s: Socket) => void | Promise<void>, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve) => {
    let answer = ''
    const s = connect(port, '127.0.0.1', () => { void act(s) })
    s.on('data', (d: Buffer) => { answer += d.toString('latin1') })
    s.on('error', () => {})
    const timer = setTimeout(() => s.destroy(), timeoutMs)
    s.on('close', () => { clearTimeout(timer); resolve(answer) })
  })
}

function head(length: number | 'chunked', dataset = 'http_requests', extra = ''): string {
  return `POST /logpush/${dataset} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TEST_TOKEN}\r\nContent-Encoding: gzip\r\n` +
    (length === 'chunked' ? 'Transfer-Encoding: chunked\r\n' : `Content-Length: ${length}\r\n`) + extra + '\r\n'
}

for (const workers of ['0', '1']) {
  test(`PARSE_WORKERS=${workers}: uploads that end badly at any stage end only themselves`, async (t) => {
    const server = await startServer(t, { PARSE_WORKERS: workers, REQUEST_TIMEOUT_MS: '20000' })
    const port = Number(new URL(server.url).port)
    // A body large enough that staging, gunzip and the parse worker are all busy when it breaks.
    const bad = gzipSync(batchText('http_requests', 3000, 'unix', 100_000))
    const half = Math.floor(bad.length / 2)

    const abuses: Array<() => Promise<string>> = []
    for (let round = 0; round < 6; round++) {
      const pause = round % 3 // 0, 1 or 2 ms: the window in which the staging file is opened
      abuses.push(
        // Headers only, then gone.
        () => raw(port, (s) => { s.end(head(bad.length)) }),
        () => raw(port, (s) => { s.write(head(bad.length)); s.destroy() }),
        // A few body bytes, then gone or reset.
        () => raw(port, async (s) => { s.write(head(bad.length)); s.write(bad.subarray(0, 10 + round)); await sleep(pause); s.destroy() }),
        () => raw(port, async (s) => { s.write(head(bad.length)); s.write(bad.subarray(0, 64)); await sleep(pause); s.resetAndDestroy() }),
        // Mid-gzip, while lines are being checked and staged.
        () => raw(port, async (s) => { s.write(head(bad.length)); s.write(bad.subarray(0, half)); await sleep(pause + 5); s.destroy() }),
        () => raw(port, async (s) => { s.write(head(bad.length)); s.write(bad.subarray(0, half)); await sleep(pause); s.resetAndDestroy() }),
        // Chunked bodies with a bad chunk size, a chunk longer than what follows, a bad terminator.
        () => raw(port, (s) => { s.write(head('chunked')); s.write(`100\r\n`); s.write(bad.subarray(0, 256)); s.end('\r\nzz\r\n') }),
        () => raw(port, (s) => { s.write(head('chunked')); s.write(`${(half * 2).toString(16)}\r\n`); s.write(bad.subarray(0, half)); s.end() }),
        () => raw(port, (s) => { s.write(head('chunked')); s.write(`40\r\n`); s.write(bad.subarray(0, 64)); s.end('XX0\r\n\r\n') }),
        () => raw(port, (s) => { s.write(head('chunked')); s.end(`-5\r\nabcde\r\n0\r\n\r\n`) }),
        // A slow sender that gives up halfway.
        () => raw(port, async (s) => {
          s.write(head(bad.length))
          for (let i = 0; i < 10; i++) { s.write(bad.subarray(i * 100, (i + 1) * 100)); await sleep(20) }
          s.destroy()
        })
      )
    }

    // Good batches, sent while the abuse goes on; a slow but complete sender among them.
    const good: string[] = []
    const senders = [0, 1, 2].map(async (sender) => {
      for (let i = 0; i < 6; i++) {
        const text = batchText('http_requests', 200, 'unixnano', (sender * 6 + i) * 200)
        const r = await post(server, '/logpush/http_requests', text)
        assert.equal(r.status, 200, JSON.stringify(r.json))
        assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 200, rejected: 0 })
        good.push(text)
      }
    })
    const slowText = batchText('http_requests', 50, 'rfc3339', 50_000)
    const slowBody = gzipSync(slowText)
    // Given 60 s: raw()'s 5 s cut it off when the abuse and the good batches kept a loaded machine
    // busy (a flake audit). Connection: close ends the exchange once it is answered, not at the
    // server's keep-alive timeout.
    const slow = raw(port, async (s) => {
      s.write(head(slowBody.length, 'http_requests', 'Connection: close\r\n'))
      for (let at = 0; at < slowBody.length; at += 500) { s.write(slowBody.subarray(at, at + 500)); await sleep(15) }
    }, 60_000)
    const attacks = (async () => { for (let i = 0; i < abuses.length; i += 4) await Promise.all(abuses.slice(i, i + 4).map((a) => a())) })()

    await Promise.all([...senders, attacks])
    const slowAnswer = await slow
    assert.match(slowAnswer, /^HTTP\/1\.1 200/, 'the slow but complete sender is answered 200')

    // Still up: a fresh batch goes through.
    const after = batchText('http_requests', 10, 'unix', 90_000)
    assert.equal((await post(server, '/logpush/http_requests', after)).status, 200)

    // Exactly the good batches are stored: nothing half-received, nothing twice.
    const stored = (await readStore(server, 'events', 'http_requests')).split('\n').filter(Boolean).sort()
    const expected = [...good, slowText, after].join('').split('\n').filter(Boolean).sort()
    assert.equal(stored.length, expected.length)
    assert.deepEqual(stored, expected)
    assert.deepEqual(await readDeadLetters(server, 'http_requests'), [])
    assert.deepEqual(await readdir(join(server.dataDir, 'spool', 'staging')), [], 'no staging file left behind')
  })
}
