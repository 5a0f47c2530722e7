// Documents are built with less work per line since issue 26 (ECS field paths split once when
// the rules are compiled, a one-shot hash for the _id). The documents, the integration format's
// documents and the _ids must stay exactly the bytes they were. The code before that change
// (commit 9d5acfa) made every one of them for every dataset's generated lines in every timestamp
// format, every line of Elastic's published fixtures under every dataset's mapping, and lines
// that stress the builder; the SHA-256 of what it made, per dataset and per set of lines, is kept
// in test/fixtures/document-digests.json, and the code of now must make the same bytes.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, type Hash } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { compileEcs, documentId, documentText, integrationDocumentText, loadEcs } from '../../src/sinks/elasticsearch/index.js'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { fullLine, loadSchemas, TIMESTAMP_FORMATS } from '../helpers/dataset-lines.js'
import { recordLine } from '../helpers/fixtures.js'

const ecs = loadEcs(join(schemasDir, 'ecs'))
const schemas = loadSchemas()
const INGESTED = '2026-12-07T09:08:07.654Z'
const builders = new Map([...ecs.mappings].map(([d, m]) => [d, compileEcs(m, ecs.types)]))

type LineSet = 'generated' | 'fixtures' | 'stress'
const before = JSON.parse(readFileSync(join(packageRoot, 'test', 'fixtures', 'document-digests.json'), 'utf8')) as Record<LineSet, Record<string, string>>

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

/** Adds one line's document, integration document and _id under one dataset to `hash`; answers 1, or 0 if the line is not a JSON object. */
function add(hash: Hash, dataset: string, line: string): number {
  let record: Record<string, unknown>
  try {
    record = JSON.parse(line) as Record<string, unknown>
  } catch {
    return 0
  }
  if (typeof record !== 'object' || record === null || Array.isArray(record)) return 0
  const eventTimeField = schemas.get(dataset)!['x-event-time']!
  const ecsBuilder = ecs.mappings.has(dataset) ? { ecs: builders.get(dataset)! } : {}
  hash.update(documentText(line, structuredClone(record), { dataset, namespace: 'default', eventTimeField, ingested: INGESTED, ...ecsBuilder })).update('\n')
  hash.update(integrationDocumentText(line, record, { stream: 'http_request', namespace: 'default', eventTimeField, ingested: INGESTED })).update('\n')
  hash.update(documentId(dataset, line)).update('\n')
  return 1
}

/** Each dataset's digest of what `lines` make, compared with the code before; answers how many documents were made. */
function sameAsBefore(set: LineSet, lines: (dataset: string) => readonly string[]): number {
  let made = 0
  const now: Record<string, string> = {}
  for (const dataset of ecs.mappings.keys()) {
    if (!schemas.has(dataset)) continue
    const hash = createHash('sha256')
    for (const line of lines(dataset)) made += add(hash, dataset, line)
    now[dataset] = hash.digest('hex')
  }
  for (const [dataset, digest] of Object.entries(now)) assert.equal(digest, before[set][dataset], `${set}: ${dataset}'s documents differ from the code before`)
  assert.deepEqual(Object.keys(now).sort(), Object.keys(before[set]).sort(), `${set}: the same datasets as before`)
  return made
}

test('every dataset\'s generated lines, in every timestamp format, make the same documents and _ids as before', () => {
  const made = sameAsBefore('generated', (dataset) => {
    const schema = schemas.get(dataset)!
    // The bench's lines too: escapes JSON.stringify never writes, a unixnano above 2^53.
    return [...TIMESTAMP_FORMATS.flatMap((format) => Array.from({ length: 20 }, (_, i) => fullLine(schema, format, i))), ...Array.from({ length: 20 }, (_, i) => recordLine(schema, i))]
  })
  assert.ok(made > 30 * 6 * 20, `made ${made} documents`)
})

test('every line of Elastic\'s fixtures makes the same document and _id as before, under every dataset\'s mapping', () => {
  const lines = fixtureLines()
  assert.ok(lines.length >= 60, `${lines.length} fixture lines`)
  const made = sameAsBefore('fixtures', () => lines)
  assert.ok(made >= 60 * 30, `made ${made} documents`)
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
  const made = sameAsBefore('stress', () => lines)
  assert.ok(made >= lines.length * 30)
})
