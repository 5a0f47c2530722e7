// Every dataset of the reference, every field filled, every timestamp format: a job for any
// dataset must be taken (not a 404), every line stored byte for byte, and a line with one field
// of the wrong type dead-lettered with that field named.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { TIMESTAMP_FORMATS, fullLine, loadSchemas, wrongTypeLine } from '../helpers/dataset-lines.js'
import { post, readDeadLetters, readStore, startServer } from '../helpers/server.js'

test('all 37 datasets: full lines in the five timestamp formats stored byte-exact, a wrong type dead-lettered by name', async (t) => {
  const server = await startServer(t, { SINKS: 'file', PARSE_WORKERS: '1' })
  const schemas = loadSchemas()
  assert.equal(schemas.size, 37)
  const expected = new Map<string, { good: string, field: string }>()
  for (const [id, schema] of schemas) {
    let good = ''
    for (const [i, format] of TIMESTAMP_FORMATS.entries()) good += fullLine(schema, format, i) + '\n'
    const bad = wrongTypeLine(schema, 'rfc3339ns', 9)
    const r = await post(server, `/logpush/${id}`, good + bad.line + '\n')
    assert.equal(r.status, 200, `${id}: ${JSON.stringify(r.json)}`)
    assert.deepEqual(r.json, { dataset: id, accepted: TIMESTAMP_FORMATS.length, rejected: 1 }, id)
    expected.set(id, { good, field: bad.field })
  }
  for (const [id, { good, field }] of expected) {
    assert.equal(await readStore(server, 'events', id), good, `${id}: stored bytes`)
    const dead = await readDeadLetters(server, id)
    assert.equal(dead.length, 1, id)
    assert.equal(dead[0].code, 'LPR_ERR_PIPELINE_LINE_SCHEMA', id)
    assert.match(dead[0].reason, new RegExp(`^/${field} must be `), `${id}: ${dead[0].reason}`)
  }
})
