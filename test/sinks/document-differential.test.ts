// Documents are built with less work per line since issue 26 (ECS field paths split once when
// the rules are compiled, a one-shot hash for the _id). The documents, the integration format's
// documents and the _ids must stay exactly the bytes they were: each is compared with the code as
// it was before (test/helpers/reference) for every dataset's generated lines in every timestamp
// format, and for every line of Elastic's published fixtures under every dataset's mapping.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compileEcs, documentId, documentText, integrationDocumentText, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { fullLine, loadSchemas, TIMESTAMP_FORMATS } from '../helpers/dataset-lines.js'
import { recordLine } from '../helpers/fixtures.js'
import * as refEcs from '../helpers/reference/ecs.js'
import * as refDoc from '../helpers/reference/document.js'

const ecs = loadEcs(join(schemasDir, 'ecs'))
const schemas = loadSchemas()
const INGESTED = '2026-12-07T09:08:07.654Z'

function files(dir: string): string[] {
  if (!existsSync(dir)) return []
  return readdirSync(dir).flatMap((f) => statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)])
}

/** Every JSON object line of Elastic's fixtures: the .log inputs and the event.original of expected documents. */
function fixtureLines(): string[] {
  const out = new Set<string>()
  for (const dir of ['elastic-ecs', 'elastic-integrations']) {
    for (const f of files(join(packageRoot, 'test', 'fixtures', dir))) {
      if (f.endsWith('.log')) {
        for (const l of readFileSync(f, 'utf8').split('\n')) if (l.trim().startsWith('{')) out.add(l)
      } else if (f.endsWith('-expected.json')) {
        const docs = (JSON.parse(readFileSync(f, 'utf8')) as { expected?: Array<{ event?: { original?: unknown } }> }).expected ?? []
        for (const d of docs) if (typeof d.event?.original === 'string' && d.event.original.trim().startsWith('{')) out.add(d.event.original)
      }
    }
  }
  return [...out]
}

/** Compares one line under one dataset; answers how many documents were compared (0 if it is not a JSON object). */
function compare(dataset: string, line: string): number {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return 0
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return 0
  const schema = schemas.get(dataset)!
  const mapping = ecs.mappings.get(dataset)
  const eventTimeField = schema['x-event-time']!
  const base = { dataset, namespace: 'default', eventTimeField, ingested: INGESTED }
  const now = documentText(line, structuredClone(record), { ...base, ...(mapping ? { ecs: builders.get(dataset)! } : {}) })
  const then = refDoc.documentText(line, structuredClone(record), { ...base, ...(mapping ? { ecs: refBuilders.get(dataset)! } : {}) })
  assert.equal(now, then, `${dataset}: ${line.slice(0, 200)}`)
  const ictx = { stream: 'http_request', namespace: 'default', eventTimeField, ingested: INGESTED }
  assert.equal(integrationDocumentText(line, record, ictx), refDoc.integrationDocumentText(line, record, ictx))
  assert.equal(documentId(dataset, line), refDoc.documentId(dataset, line))
  return 1
}

const builders = new Map([...ecs.mappings].map(([d, m]) => [d, compileEcs(m, ecs.types)]))
const refBuilders = new Map([...ecs.mappings].map(([d, m]) => [d, refEcs.compileEcs(m, ecs.types)]))

test('every dataset\'s generated lines, in every timestamp format, make the same documents and _ids as before', () => {
  let compared = 0
  for (const [dataset, schema] of schemas) {
    if (!ecs.mappings.has(dataset)) continue
    for (const format of TIMESTAMP_FORMATS) {
      for (let i = 0; i < 20; i++) compared += compare(dataset, fullLine(schema, format, i))
    }
    // The bench's lines too: escapes JSON.stringify never writes, a unixnano above 2^53.
    for (let i = 0; i < 20; i++) compared += compare(dataset, recordLine(schema, i))
  }
  assert.ok(compared > 30 * 6 * 20, `compared ${compared} documents`)
})

test('every line of Elastic\'s fixtures makes the same document and _id as before, under every dataset\'s mapping', () => {
  const lines = fixtureLines()
  assert.ok(lines.length >= 60, `${lines.length} fixture lines`)
  let compared = 0
  for (const dataset of ecs.mappings.keys()) {
    if (!schemas.has(dataset)) continue
    for (const line of lines) compared += compare(dataset, line)
  }
  assert.ok(compared >= 60 * 30, `compared ${compared} documents`)
})

test('lines that stress the builder make the same documents as before: nested fields of the same names, escapes, empty and odd values', () => {
  const lines = [
    '{}',
    ' { "Datetime" : 1652295571783000123 , "ClientIP" : "192.0.2.1" } ',
    '{"EdgeStartTimestamp":"2022-05-11T18:59:31.25+01:00","ClientRequestHost":"","ClientIP":"2001:db8::1","Subrequests":[{"EdgeStartTimestamp":1}]}',
    '{"EdgeStartTimestamp":1652295571783000123,"ClientRequestURI":"\\/a\\/b.php?x=1#f","ClientRequestHost":"ex\\u0061mple.com","ClientRequestScheme":"http","EdgeResponseStatus":404}',
    '{"Datetime":"1652295571","ColoCode":"AMS","IPProtocolName":"TCP","SourceIP":"198.51.100.1","DestinationIP":"198.51.100.2","SourcePort":1,"DestinationPort":2}',
    '{"Datetime":1652295571783000123,"IPProtocol":6,"SourceIP":"::ffff:192.0.2.1","DestinationIP":"::1","SourcePort":65535,"DestinationPort":0,"Verdict":"drop"}',
    '{"When":"2022-05-11T18:59:31Z","ActorIP":null,"Metadata":{},"NewValue":[],"OldValue":"{\\"a\\":1}"}'
  ]
  let compared = 0
  for (const dataset of ecs.mappings.keys()) {
    if (!schemas.has(dataset)) continue
    for (const line of lines) compared += compare(dataset, line)
  }
  assert.ok(compared >= lines.length * 30)
})
