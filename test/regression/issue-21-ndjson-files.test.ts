// Issue 21, item 9: the events file stays NDJSON. A pretty-printed HEC event was written into
// the .ndjson events file as several lines; one event must be one line in every file the service
// writes (events, dead letters), also for what an earlier release left spooled with its newlines.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync, gzipSync } from 'node:zlib'
import { oneLine } from '../../src/one-line.js'
import { blockCrc, blockHeader, encodeBlocks, frameRecord } from '../../src/spool/format.js'
import { ONE_LINE, PLAIN, PRETTY, PRETTY_STRING, STRING_ONE_LINE } from '../helpers/pretty-event.js'
import { TEST_TOKEN, readDeadLetters, readStore, startServer, type TestServer } from '../helpers/server.js'

test('oneLine: leaves out only the whitespace between tokens; numbers, strings and escapes keep their bytes; a line without a newline is kept as it is', () => {
  assert.equal(oneLine(Buffer.from(PRETTY)).toString(), ONE_LINE)
  assert.equal(JSON.stringify(JSON.parse(oneLine(Buffer.from(PRETTY)).toString())), JSON.stringify(JSON.parse(PRETTY)))
  // Spaces inside strings, escaped quotes and backslashes, a 19-digit integer, an exponent, UTF-8.
  const text = '{\r\n\t"a b" : "c  d\\\\",\n "e":\t[ 1.5e+10 , -0 , 1700000000123456789 ],\n "f": "\\"}\\n{\\"", "g": "déjà vu 😀" }'
  assert.equal(oneLine(Buffer.from(text)).toString(), '{"a b":"c  d\\\\","e":[1.5e+10,-0,1700000000123456789],"f":"\\"}\\n{\\"","g":"déjà vu 😀"}')
  // A raw newline inside a string (not valid JSON, but an old spool might hold one) becomes its escape.
  assert.equal(oneLine(Buffer.from('{"a":"x\ny\r",\n"b":"\\\n"}')).toString(), '{"a":"x\\ny\\r","b":"\\n"}')
  // Already one line: the very same bytes, a CR before the newline and spaces included.
  const line = Buffer.from('{"a": 1, "b" : "x"}\r')
  assert.equal(oneLine(line), line)
})

async function hec(server: TestServer, body: string): Promise<number> {
  const res = await fetch(`${server.url}/services/collector/event?dataset=http_requests`, {
    method: 'POST', body: gzipSync(body), headers: { authorization: `Splunk ${TEST_TOKEN}`, 'content-encoding': 'gzip' }
  })
  await res.arrayBuffer()
  return res.status
}

/** Every .ndjson(.gz) file under `dir`, inflated, by path. */
async function ndjsonFiles(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !/\.ndjson(\.gz)?$/.test(entry.name)) continue
    const path = join(entry.parentPath, entry.name)
    const data = await readFile(path)
    out.set(path, (entry.name.endsWith('.gz') ? gunzipSync(data) : data).toString('utf8'))
  }
  return out
}

/** Each file is NDJSON: lines that end in '\n', each one JSON object. */
function assertNdjson(files: Map<string, string>): void {
  for (const [path, text] of files) {
    assert.ok(text.endsWith('\n'), `${path} ends with a newline`)
    for (const line of text.slice(0, -1).split('\n')) {
      const value = JSON.parse(line) as unknown
      assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), `${path}: a JSON object per line: ${line.slice(0, 80)}`)
    }
  }
}

test('pretty-printed HEC events, kept or dead-lettered, are one line each in the events file and the dead-letter file', async (t) => {
  // The bug: the event was stored and written with its newlines, so the events file held one
  // event as six lines, none of them JSON.
  const server = await startServer(t, { SINKS: 'file' })
  const badSchema = '{\n  "RayID": "bad",\n  "EdgeResponseStatus": "not a number"\n}'
  const noEvent = '{\n  "host": "h",\n  "sourcetype": "cloudflare:json"\n}'
  const body = [`{"event": ${PRETTY}}`, `{"event": ${PRETTY_STRING}}`, `{"event": ${badSchema}}`, noEvent, `{"event":${PLAIN}}`].join('\n')
  assert.equal(await hec(server, body), 200)
  assert.equal(await readStore(server, 'events', 'http_requests'), `${ONE_LINE}\n${STRING_ONE_LINE}\n${PLAIN}\n`)
  const dead = await readDeadLetters(server, 'http_requests')
  assert.deepEqual(dead.map((d) => d.code).sort(), ['LPR_ERR_PIPELINE_HEC_ENVELOPE', 'LPR_ERR_PIPELINE_LINE_SCHEMA'])
  // A dead letter keeps the record as it came (in its JSON string), newlines and all.
  assert.ok(dead.some((d) => d.raw === badSchema))
  const files = await ndjsonFiles(server.dataDir)
  assert.ok([...files.keys()].some((p) => p.includes('/events/')) && [...files.keys()].some((p) => p.includes('/dead-letter/')), [...files.keys()].join(', '))
  assertNdjson(files)
})

test('an HEC event an earlier release spooled with its newlines is written to the events file as one line', async (t) => {
  // The bug: such a segment (a VERBATIM block, format v2) was copied into the events file as is.
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-verbatim-'))
  const segments = join(dataDir, 'spool', 'segments')
  await mkdir(segments, { recursive: true })
  const header = frameRecord(Buffer.from(JSON.stringify({ v: 2, dataset: 'http_requests', requestId: 'r1', receivedAt: '2026-11-29T00:00:00.000Z' })))
  const pretty = Buffer.from(PRETTY + '\n')
  const verbatim = Buffer.concat([blockHeader(1, pretty, blockCrc(1, pretty, true), true), pretty])
  await writeFile(join(segments, `000000000001.http_requests.3.${'A'.repeat(43)}.seg`), Buffer.concat([header, encodeBlocks([PLAIN]), verbatim, encodeBlocks(['{"RayID":"after"}'])]))
  const server = await startServer(t, { DATA_DIR: dataDir, SINKS: 'file' })
  assert.equal(await readStore(server, 'events', 'http_requests'), `${PLAIN}\n${ONE_LINE}\n{"RayID":"after"}\n`)
  assertNdjson(await ndjsonFiles(dataDir))
})
