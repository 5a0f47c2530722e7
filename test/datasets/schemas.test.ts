// schemas/ is generated from Cloudflare's field reference (schemas/reference/datasets.json) by
// `npm run schemas`. These tests fail, naming each difference, when the two disagree: after a
// refresh of the reference they list exactly what Cloudflare changed.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { cp, mkdir, mkdtemp, readdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { defaultReferencePath, loadReference } from '../../src/datasets/reference.js'
import { generateSchemas } from '../../src/datasets/generate.js'
import { schemaDifferences } from '../../src/datasets/schema.js'
import { eventTime } from '../../src/sinks/event-time.js'
import { TIMESTAMP_FORMATS, fullLine, fullLineEventTime, loadSchemas } from '../helpers/dataset-lines.js'

// The reference is part of the repository (a clone once failed here: it used to sit outside it).
test('the field reference is in the repository, in schemas/reference/', () => {
  assert.equal(relative(packageRoot, defaultReferencePath), join('schemas', 'reference', 'datasets.json'))
  assert.ok(existsSync(defaultReferencePath), `${defaultReferencePath} is missing`)
})

test('schemas/ agrees with the field reference: every field, its type, event time and scope', () => {
  const expected = generateSchemas(loadReference())
  const actual = loadSchemas()
  const differences: string[] = []
  for (const [id, schema] of expected) {
    const file = actual.get(id)
    if (!file) differences.push(`${id}: in the reference, no schemas/${id}.json`)
    else differences.push(...schemaDifferences(id, file, schema))
  }
  for (const id of actual.keys()) if (!expected.has(id)) differences.push(`schemas/${id}.json: not a dataset of the reference`)
  assert.deepEqual(differences, [], `schemas/ and the reference disagree (run npm run schemas):\n  ${differences.join('\n  ')}`)
})

test('the comparison names a missing field, an extra field and a changed type', () => {
  const expected = generateSchemas(loadReference()).get('dns_logs')!
  const changed = structuredClone(expected)
  delete changed.properties.QueryName
  changed.properties.Brand = { type: 'string' }
  changed.properties.ResponseCode = { ...changed.properties.ResponseCode, type: ['string', 'null'] }
  const diff = schemaDifferences('dns_logs', changed, expected)
  assert.equal(diff.length, 3, diff.join('\n'))
  assert.match(diff[0]!, /^dns_logs\.QueryName: in the reference \(string\), missing from schemas\/dns_logs\.json$/)
  assert.match(diff[1]!, /^dns_logs\.ResponseCode: schemas\/dns_logs\.json has .*"string","null".*, the reference gives .*"integer","null"/)
  assert.match(diff[2]!, /^dns_logs\.Brand: in schemas\/dns_logs\.json, not in the reference$/)
})

test('schemas/ holds exactly one top-level file per dataset id of the reference', async () => {
  const ids = Object.keys(loadReference()).sort()
  assert.equal(ids.length, 37)
  const files = (await readdir(schemasDir, { withFileTypes: true })).filter((e) => e.isFile()).map((e) => e.name).sort()
  assert.deepEqual(files, ids.map((id) => `${id}.json`))
})

test('the service loads every dataset, and ignores subfolders of schemas/', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-schemas-'))
  await cp(schemasDir, dir, { recursive: true })
  await mkdir(join(dir, 'ecs', 'nested.json'), { recursive: true })
  await writeFile(join(dir, 'ecs', 'http_requests.json'), '{"not": "a dataset schema"}')
  const datasets = loadDatasets(dir)
  assert.deepEqual([...datasets.keys()], [...loadSchemas().keys()])
  assert.equal(datasets.size, 37)
  for (const d of datasets.values()) {
    assert.ok(d.knownFields.has(d.eventTimeField), d.name)
    assert.equal(d.validate({}), true, `${d.name}: compiles, and an empty line is valid`)
  }
})

test('every dataset\'s event time is read from its full line in all five timestamp formats', () => {
  for (const [id, schema] of loadSchemas()) {
    for (const format of TIMESTAMP_FORMATS) {
      const line = fullLine(schema, format, 3)
      assert.equal(eventTime(line, JSON.parse(line), schema['x-event-time']), fullLineEventTime(schema, format, 3), `${id} ${format}`)
    }
  }
})

test('a unixnano event time is read from the top level, not from a nested record of the same field', () => {
  // http_requests' Subrequests holds whole http_requests records, each with its own
  // EdgeStartTimestamp; reading the first match in the text took the subrequest's time.
  const line = '{"Subrequests":[{"EdgeStartTimestamp":1600000000000000001}],"EdgeStartTimestamp":1764300000123456789}'
  assert.equal(eventTime(line, JSON.parse(line), 'EdgeStartTimestamp'), '2025-11-28T03:20:00.123456789Z')
  const quoted = '{"EdgeStartTimestamp":"1764300000123456789"}'
  assert.equal(eventTime(quoted, JSON.parse(quoted), 'EdgeStartTimestamp'), '2025-11-28T03:20:00.123456789Z', 'quoted unixnano digits')
  const keyInString = '{"Note":"\\"EdgeStartTimestamp\\":1600000000000000001","EdgeStartTimestamp":1764300000123456789}'
  assert.equal(eventTime(keyInString, JSON.parse(keyInString), 'EdgeStartTimestamp'), '2025-11-28T03:20:00.123456789Z')
})
