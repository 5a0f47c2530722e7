// The main-thread pipeline (PARSE_WORKERS=0) and the parse workers must give the same answers,
// the same stored bytes and the same dead letters for the same bodies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { gzipSync } from 'node:zlib'
import { BIG_UNIXNANO, batchText } from '../helpers/fixtures.js'
import { TEST_TOKEN, post, readDeadLetters, readStore, startServer } from '../helpers/server.js'

const mixed = batchText('http_requests', 400) + 'not json\n\n{"RayID":"x","ClientASN":"nan"}\n' +
  `{"RayID":"big","EdgeStartTimestamp":${BIG_UNIXNANO},"Brand":"new"}` // no final newline

for (const workers of ['0', '2']) {
  test(`PARSE_WORKERS=${workers}: bytes, dead letters, counters and refusals`, async (t) => {
    const server = await startServer(t, { PARSE_WORKERS: workers, MAX_LINE_BYTES: '65536' })
    const r = await post(server, '/logpush/http_requests', mixed)
    assert.deepEqual(r.json, { dataset: 'http_requests', accepted: 401, rejected: 2 })
    assert.equal(await readStore(server, 'events', 'http_requests'), batchText('http_requests', 400) + `{"RayID":"big","EdgeStartTimestamp":${BIG_UNIXNANO},"Brand":"new"}\n`)
    const dead = await readDeadLetters(server, 'http_requests')
    assert.deepEqual(dead.map((d) => [d.line, d.code]), [[401, 'LPR_ERR_PIPELINE_LINE_NOT_JSON'], [403, 'LPR_ERR_PIPELINE_LINE_SCHEMA']])
    const stats = server.built.stats.dataset('http_requests')
    assert.equal(stats.unknownFields.get('Brand'), 1)
    assert.equal(stats.rejectedByCode.get('LPR_ERR_PIPELINE_LINE_SCHEMA'), 1)

    // A big body split over many chunks, with a line straddling every chunk boundary.
    const big = batchText('network_analytics_logs', 6000, 'rfc3339')
    assert.deepEqual((await post(server, '/logpush/network_analytics_logs', big)).json, { dataset: 'network_analytics_logs', accepted: 6000, rejected: 0 })
    assert.equal(await readStore(server, 'events', 'network_analytics_logs'), big)

    const refusals: Array<[string, number, string]> = [
      ['a,b,c\n1,2,3\n', 400, 'LPR_ERR_PIPELINE_NOT_NDJSON'],
      ['{"events":[{"RayID":"a"}]}\n', 400, 'LPR_ERR_PIPELINE_NOT_NDJSON'],
      [batchText('http_requests', 50, 'unix', 9000) + `{"RayID":"${'x'.repeat(70_000)}"}\n`, 413, 'LPR_ERR_PIPELINE_LINE_TOO_LONG'],
      ['{"RayID":"' + 'y'.repeat(200_000), 413, 'LPR_ERR_PIPELINE_LINE_TOO_LONG']
    ]
    for (const [body, status, code] of refusals) {
      const res = await fetch(`${server.url}/logpush/http_requests`, { method: 'POST', body: gzipSync(body), headers: { authorization: `Bearer ${TEST_TOKEN}`, 'content-encoding': 'gzip' } })
      assert.equal(res.status, status, code)
      assert.equal(((await res.json()) as any).code, code)
    }
    assert.equal((await readStore(server, 'events', 'http_requests')).split('\n').length - 1, 401, 'refused bodies stored nothing')
  })
}
