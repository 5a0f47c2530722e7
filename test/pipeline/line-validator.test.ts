// The one-pass validator (LINE_VALIDATOR=fast, src/pipeline/validator/) against the reference
// (JSON.parse, the nesting and duplicate-key walks, Ajv: checkParsed): for every line of every
// source below, the same verdict and the same reason code from the validator itself, and through
// checkLine the same reason text too (rejections other than nesting and duplicate keys are worded
// by the reference on purpose). The sources: every dataset's generated lines in every timestamp
// format, the Elastic fixtures (each line against every dataset), the hostile-input suite's
// lines, and a seeded fuzz set of mutated lines, each at the default MAX_LINE_DEPTH and a small one.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { datasetsFromSchemas, loadDatasets, type Dataset } from '../../src/pipeline/datasets.js'
import { checkLine, checkParsed, DEFAULT_MAX_DEPTH, LineChecker, type Tally } from '../../src/pipeline/line-checker.js'
import { planOf } from '../../src/pipeline/validator/plan.js'
import { ASK_REFERENCE } from '../../src/pipeline/validator/scan.js'
import { embeddable } from '../../src/pipeline/validator/template.js'
import type { DatasetSchema } from '../../src/dataset-schema.js'
import { LineRejectCode } from '../../src/errors.js'
import { TIMESTAMP_FORMATS, fullLine, loadSchemas, wrongTypeLine } from '../helpers/dataset-lines.js'
import { recordLine } from '../helpers/fixtures.js'
import { seededRandom as random } from '../helpers/seeded-random.js'

const reference = loadDatasets(schemasDir, 'ajv')
const fast = loadDatasets(schemasDir, 'fast')
const schemas = loadSchemas()

interface Mismatch { dataset: string, line: string, maxDepth: number, reference: string, fast: string }

/** Compares one line on one dataset; returns a description of any difference. */
function compare(name: string, line: string, maxDepth: number): Mismatch | null {
  const ref = checkParsed(reference.get(name)!, line, maxDepth)
  const f = fast.get(name)!
  const code = f.lineValidator!.check(line, maxDepth)
  const refCode = ref.ok ? null : ref.code
  const viaCheckLine = checkLine(f, line, maxDepth)
  const said = (v: typeof ref): string => (v.ok ? 'ok' : `${v.code}: ${v.reason}`)
  // Too deep and a key twice: which the reference says depends on which value JSON.parse kept.
  const undecided = code === ASK_REFERENCE && (refCode === LineRejectCode.tooDeep || refCode === LineRejectCode.duplicateKey)
  if ((code !== refCode && !undecided) || said(viaCheckLine) !== said(ref)) {
    return { dataset: name, line: line.length > 300 ? `${line.slice(0, 300)}…(${line.length} chars)` : line, maxDepth, reference: said(ref), fast: `${code ?? 'ok'} / ${said(viaCheckLine)}` }
  }
  if (ref.ok && !viaCheckLine.ok) throw new Error('unreachable')
  if (ref.ok && viaCheckLine.ok) {
    // The unknown fields counted: the same names. (The reference lists them in the record's
    // property order, integer-like names first; the validator in the line's order.)
    const known = reference.get(name)!.knownFields
    const expected = Object.keys(ref.record!).filter((k) => !known.has(k)).sort()
    const got = [...(viaCheckLine.record ? Object.keys(viaCheckLine.record).filter((k) => !known.has(k)) : viaCheckLine.unknownFields)].sort()
    if (JSON.stringify(expected) !== JSON.stringify(got)) return { dataset: name, line, maxDepth, reference: `unknown ${expected.join(',')}`, fast: `unknown ${got.join(',')}` }
  }
  return null
}

/** Lines accepted by a learned template so far, over every dataset. */
const templateHits = (): number => [...fast.values()].reduce((n, d) => n + d.lineValidator!.templateHits, 0)

function compareAll(lines: Iterable<readonly [string, string]>, depths: readonly number[] = [DEFAULT_MAX_DEPTH, 2]): { checked: number, rejected: Map<string, number>, mismatches: Mismatch[], templateHits: number } {
  const hits0 = templateHits()
  const mismatches: Mismatch[] = []
  const rejected = new Map<string, number>()
  let checked = 0
  for (const [name, line] of lines) {
    for (const maxDepth of depths) {
      checked++
      const m = compare(name, line, maxDepth)
      if (m) { if (mismatches.length < 20) mismatches.push(m); continue }
      const ref = checkParsed(reference.get(name)!, line, maxDepth)
      const key = ref.ok ? 'ok' : ref.code
      rejected.set(key, (rejected.get(key) ?? 0) + 1)
    }
  }
  return { checked, rejected, mismatches, templateHits: templateHits() - hits0 }
}

function * generatedLines(): Generator<[string, string]> {
  for (const [name, schema] of schemas) {
    for (const format of TIMESTAMP_FORMATS) {
      for (let i = 0; i < 3; i++) yield [name, fullLine(schema, format, i)]
      yield [name, wrongTypeLine(schema, format, 1).line]
    }
    for (const format of ['unixnano', 'unix', 'rfc3339'] as const) yield [name, recordLine(schema, 7, format)]
  }
}

test('every dataset in schemas/ has a generated validator', () => {
  for (const [name, schema] of schemas) {
    assert.ok(planOf(schema), `${name}: the generator covers its schema's keywords`)
    assert.ok(fast.get(name)!.lineValidator, name)
    assert.equal(reference.get(name)!.lineValidator, null, `${name}: LINE_VALIDATOR=ajv has no one-pass validator`)
  }
})

test('a schema using a keyword the generator does not cover is checked by Ajv alone', () => {
  const base = schemas.get('http_requests')!
  const uncovered: DatasetSchema[] = [
    { ...base, required: ['RayID'] } as DatasetSchema,
    { ...base, properties: { ...base.properties, RayID: { type: 'string', enum: ['a'] } as never } },
    { ...base, properties: { ...base.properties, RayID: { type: 'string', maxLength: 3 } as never } },
    { ...base, additionalProperties: false },
    { ...base, properties: { ...base.properties, RayID: { type: ['string', 'null'], items: { type: 'string', pattern: 'x' } } as never } }
  ]
  for (const schema of uncovered) {
    assert.equal(planOf(schema), null, JSON.stringify(schema).slice(0, 80))
    const d = datasetsFromSchemas([['http_requests', schema]], 'fast').get('http_requests')!
    assert.equal(d.lineValidator, null)
  }
  // And the rule still holds: Ajv refuses what the generator could not have known.
  const strict = datasetsFromSchemas([['http_requests', { ...base, required: ['RayID'] } as DatasetSchema]], 'fast').get('http_requests')!
  assert.equal(checkLine(strict, '{"EdgeResponseStatus":200}').ok, false)
})

test('differential: every dataset\'s generated lines, in every timestamp format, and a wrong-typed one', () => {
  const r = compareAll(generatedLines())
  assert.deepEqual(r.mismatches, [])
  assert.ok(r.templateHits > 500, `lines accepted by a template: ${r.templateHits}`)
  assert.ok(r.rejected.get('ok')! > 1000 && r.rejected.get('LPR_ERR_PIPELINE_LINE_SCHEMA')! >= schemas.size, JSON.stringify([...r.rejected]))
})

test('differential: every line of the Elastic fixtures, against every dataset', () => {
  const dir = join(packageRoot, 'test', 'fixtures', 'elastic-integrations')
  const lines: string[] = []
  for (const stream of readdirSync(dir, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'data_stream')) {
    for (const file of readdirSync(join(dir, stream.name)).filter((f) => f.endsWith('.log'))) {
      for (const line of readFileSync(join(dir, stream.name, file), 'utf8').split('\n')) if (line.trim() !== '') lines.push(line)
    }
  }
  assert.ok(lines.length > 50)
  const r = compareAll(function * () { for (const line of lines) for (const name of schemas.keys()) yield [name, line] as const }(), [DEFAULT_MAX_DEPTH])
  assert.deepEqual(r.mismatches, [])
  assert.ok(r.rejected.get('ok')! > 1000 && r.rejected.get('LPR_ERR_PIPELINE_LINE_SCHEMA')! > 20, JSON.stringify([...r.rejected]))
})

const good = (n: number): string => `{"RayID":"good-${n}","EdgeResponseStatus":200,"ClientRequestHost":"example.com"}`
const deep = (levels: number): string => `{"RayID":"deep","Nested":${'['.repeat(levels)}${']'.repeat(levels)}}`
const hugeKey = 'K'.repeat(60_000)

/** The lines of the hostile-input suite (test/regression/issue-11-*.test.ts) and more of their kind. */
const HOSTILE: readonly string[] = [
  good(1), `\ufeff${good(2)}`, `${good(3)}\r`, `${good(4)}\ufeff`,
  '{"EdgeResponseStatus":"x","EdgeResponseStatus":200}',
  '{"RayID":"n","RequestHeaders":{"a":"1","b":"2","a":"3"}}',
  '{"RayID":"q\\":","ClientRequestPath":"\\\\","ClientRequestHost" : "h:\\"x\\":"}',
  '{"RayID":"a","\\u0052ayID":"b"}', '{"x":1,"\\u0078":2}', '{"__proto__":1,"__proto__":2}', '{"__proto__":{"a":1}}',
  '{"constructor":1,"toString":"x","hasOwnProperty":null}',
  deep(100), deep(30_000), deep(5), deep(30), deep(31), deep(32),
  `{"a":${'{"a":'.repeat(40)}1${'}'.repeat(40)}}`, `{"a":${'{"a":'.repeat(30)}1${'}'.repeat(30)}}`,
  `{"a":${'['.repeat(31)}${']'.repeat(31)},"a":1}`, `{"a":${'['.repeat(40)}${']'.repeat(40)},"a":1}`,
  `{"RayID":"${'€'.repeat(30_000)}"}`,
  `{"RayID":"k","${hugeKey}":1}`, `{"RayID":"k2","RequestHeaders":"${hugeKey}"}`,
  '{"RayID":"schema-1","EdgeResponseStatus":"two hundred"}',
  'a,b,c', '1,2,3', '', ' ', '[]', '[{}]', '"x"', '1', 'null', 'true', '{', '}', '{}', ' {} ', '{}x', '{} {}', '{"a":}', '{"a" 1}', '{"a":1,}', '{,}', '{"a":1 "b":2}',
  `[${'['.repeat(50_000)}${']'.repeat(50_000)}]`, `${'['.repeat(50_000)}`,
  '{"events":[{"RayID":"a"}]}',
  '{"RayID":"\\ud800","ClientRequestHost":"\\udc00\\ud800x","EdgeStartTimestamp":"2025-01-01T00:00:00Z"}',
  '{"RayID":"\ud800 raw lone surrogate"}',
  '{"RayID":"tab\there"}', '{"RayID":"nul\u0000"}', '{"RayID":"del\u007f"}', '{"RayID":"ls\u2028ps\u2029"}',
  '{"RayID":"\\x41"}', '{"RayID":"\\u12"}', '{"RayID":"\\u12G4"}', '{"RayID":"\\\'"}', '{"RayID":"end\\"}',
  '{"EdgeResponseStatus":1.0}', '{"EdgeResponseStatus":1e3}', '{"EdgeResponseStatus":1.5e1}', '{"EdgeResponseStatus":1.25e1}',
  '{"EdgeResponseStatus":-0}', '{"EdgeResponseStatus":1e400}', '{"EdgeResponseStatus":-1e400}', '{"EdgeResponseStatus":1e-400}',
  `{"EdgeResponseStatus":1${'0'.repeat(400)}}`, `{"EdgeResponseStatus":1${'0'.repeat(300)}}`, '{"EdgeResponseStatus":12345678901234567890}',
  '{"EdgeResponseStatus":1.0000000000000001}', '{"EdgeResponseStatus":01}', '{"EdgeResponseStatus":.5}', '{"EdgeResponseStatus":1.}',
  '{"EdgeResponseStatus":+1}', '{"EdgeResponseStatus":-}', '{"EdgeResponseStatus":NaN}', '{"EdgeResponseStatus":Infinity}', '{"EdgeResponseStatus":1E+2}', '{"EdgeResponseStatus":1e}',
  '{"EdgeStartTimestamp":"2025-01-01T00:00:00Z"}', '{"EdgeStartTimestamp":"2025-01-01T00:00:00\\u005a"}', '{"EdgeStartTimestamp":"2025-01-01 00:00:00+01:00"}',
  '{"EdgeStartTimestamp":"yesterday"}', '{"EdgeStartTimestamp":1652295571783000123}', '{"EdgeStartTimestamp":1e400}', '{"EdgeStartTimestamp":"1652295571783000123"}',
  '{"EdgeStartTimestamp":"2025-01-01T00:00:00Z\\n"}', '{"EdgeStartTimestamp":"\\uff11"}', '{"EdgeStartTimestamp":1.5}', '{"EdgeStartTimestamp":[]}',
  '{"BotTags":["a",1]}', '{"BotTags":[["a"]]}', '{"BotTags":"bing"}', '{"BotTags":[null]}', '{"BotTags":[]}', '{"BotTags":null}',
  '{"RayID":null,"RayID":null}', '{"RayID":1}', '{"RayID":{}}', '{"RayID":[]}', '{"RayID":true}',
  '{ "RayID" : "s" , "EdgeResponseStatus" : 200 }', '\t{"RayID":"s"}\r\n', '{"RayID":"s"}\n\n', '{"a":{"b":{}},"a2":[{"c":1},{"c":1}]}'
]

test('differential: the hostile-input lines, on http_requests and on every other dataset', () => {
  const r = compareAll(function * () { for (const line of HOSTILE) for (const name of schemas.keys()) yield [name, line] as const }())
  assert.deepEqual(r.mismatches, [])
  for (const code of ['ok', 'LPR_ERR_PIPELINE_LINE_NOT_JSON', 'LPR_ERR_PIPELINE_LINE_NOT_OBJECT', 'LPR_ERR_PIPELINE_LINE_TOO_DEEP', 'LPR_ERR_PIPELINE_LINE_DUPLICATE_KEY', 'LPR_ERR_PIPELINE_LINE_SCHEMA']) {
    assert.ok((r.rejected.get(code) ?? 0) > 0, `some line was ${code}: ${JSON.stringify([...r.rejected])}`)
  }
})


const CHARS = [...'{}[]",:\\ 0123456789-+.eEtrufalsnxu/', '\u0000', '\t', '\r', '\n', '\ufeff', '\ud800', '\udc00', 'é', '€', '\u2028']
const VALUES = [
  '"s"', '1', '1.5', '-0', '1.0', '1e3', '1E+2', '1e400', '-1e400', '12345678901234567890', `1${'0'.repeat(400)}`, 'true', 'false', 'null', '[]', '{}', '[1,"a"]', '[{}]', '["x"]',
  '[1.5]', '[1e400]', '"\\u0041"', '"\\ud800"', '"\\uDC00x"', '"\\x"', '"\\u12"', '"2025-01-01T00:00:00Z"', '"2025-01-01T00:00:00\\u005a"', '"1652295571783000123"', '1652295571783000123',
  '"abc\\"def"', '01', '.5', '1.', '+1', '-', 'NaN', '"\u0001"', '"\u2028"', '{"a":1,"a":2}', '[[[[[[[[[[]]]]]]]]]]', '{"a":{"a":{"a":{}}}}', 'tru', 'nul', '"', '"\\"'
]

function mutate(line: string, rnd: () => number): string {
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rnd() * a.length)]!
  const at = Math.floor(rnd() * (line.length + 1))
  switch (Math.floor(rnd() * 11)) {
    case 0: return line.slice(0, at) + pick(CHARS) + line.slice(at + 1)
    case 1: return line.slice(0, at) + line.slice(at + 1)
    case 2: return line.slice(0, at) + pick(CHARS) + line.slice(at)
    case 3: return line.slice(0, at)
    case 4: {
      // A key of the line written again at the start of its object (top level or nested).
      const keys = [...line.matchAll(/"([A-Za-z0-9_-]+)":/g)]
      if (keys.length === 0) return line
      const k = pick(keys)
      const open = line.lastIndexOf('{', k.index)
      return open < 0 ? line : `${line.slice(0, open + 1)}${k[0]}${pick(VALUES)},${line.slice(open + 1)}`
    }
    case 5: {
      const levels = 25 + Math.floor(rnd() * 15)
      const inner = rnd() < 0.5 ? `${'['.repeat(levels)}${']'.repeat(levels)}` : `${'{"d":'.repeat(levels)}1${'}'.repeat(levels)}`
      return replaceValue(line, inner, rnd)
    }
    case 6: case 7: return replaceValue(line, pick(VALUES), rnd)
    case 8: return rnd() < 0.5 ? `\ufeff${line}` : line.slice(0, at) + '\ufeff' + line.slice(at)
    case 9: {
      // A key written with an escape: the same key to the reference.
      const keys = [...line.matchAll(/"([A-Za-z])([A-Za-z0-9_]*)":/g)]
      if (keys.length === 0) return line
      const k = pick(keys)
      const escaped = `"\\u${k[1]!.charCodeAt(0).toString(16).padStart(4, '0')}${k[2]}":`
      return line.slice(0, k.index) + escaped + line.slice(k.index! + k[0].length)
    }
    default: return line.slice(0, at) + pick([' ', '\t', '\r', '  \n ']) + line.slice(at)
  }
}

function replaceValue(line: string, value: string, rnd: () => number): string {
  const values = [...line.matchAll(/":("(?:[^"\\]|\\.)*"|-?[0-9.eE+-]+|true|false|null|\[\]|\{\})/g)]
  if (values.length === 0) return line
  const v = values[Math.floor(rnd() * values.length)]!
  const start = v.index + 2
  return line.slice(0, start) + value + line.slice(start + v[1]!.length)
}

test('differential: 30,000 mutated lines (byte flips, truncations, duplicated and escaped keys, deep nesting, wrong types, numbers, escapes, surrogates, BOMs)', () => {
  const rnd = random(26)
  const names = [...schemas.keys()]
  const bases: Array<[string, string]> = []
  for (const [name, schema] of schemas) bases.push([name, fullLine(schema, TIMESTAMP_FORMATS[bases.length % 5]!, 1)], [name, recordLine(schema, 3, 'rfc3339')])
  bases.push(['http_requests', '{"RayID":"q\\":","ClientRequestPath":"\\\\","ClientRequestHost" : "h:\\"x\\":","RequestHeaders":{"a":"1","b":"2"}}'])
  const lines: Array<[string, string]> = []
  for (let n = 0; n < 30_000; n++) {
    let [name, line] = bases[Math.floor(rnd() * bases.length)]!
    const times = 1 + Math.floor(rnd() * 3)
    for (let m = 0; m < times; m++) line = mutate(line, rnd)
    // Now and then on another dataset than the one it was made for.
    if (rnd() < 0.1) name = names[Math.floor(rnd() * names.length)]!
    lines.push([name, line])
  }
  const r = compareAll(lines)
  assert.deepEqual(r.mismatches, [])
  assert.ok(r.templateHits > 1000, `lines accepted by a template: ${r.templateHits}`)
  for (const code of ['ok', 'LPR_ERR_PIPELINE_LINE_NOT_JSON', 'LPR_ERR_PIPELINE_LINE_TOO_DEEP', 'LPR_ERR_PIPELINE_LINE_DUPLICATE_KEY', 'LPR_ERR_PIPELINE_LINE_SCHEMA']) {
    assert.ok((r.rejected.get(code) ?? 0) > 100, `the fuzz set has lines that are ${code}: ${JSON.stringify([...r.rejected])}`)
  }
})

test('differential: lines a template was learned from, mutated: a template accepts only what the reference accepts', () => {
  // Each dataset's validator first learns the templates of its generated lines (in the order of
  // the schema and in a shuffled order), then judges mutations of those lines, most of them
  // near misses of a template: one character changed, a value of another type, a key twice.
  const rnd = random(2026)
  const lines: Array<[string, string]> = []
  for (const [name, schema] of schemas) {
    const base = fullLine(schema, 'unixnano', 4)
    const entries = Object.entries(JSON.parse(fullLine(schema, 'unix', 5)) as Record<string, unknown>)
    entries.sort(() => rnd() - 0.5)
    const shuffled = JSON.stringify(Object.fromEntries(entries))
    for (const l of [base, shuffled, fullLine(schema, 'rfc3339ns', 6)]) lines.push([name, l])
    for (let n = 0; n < 400; n++) lines.push([name, mutate(rnd() < 0.5 ? base : shuffled, rnd)])
  }
  const r = compareAll(lines, [DEFAULT_MAX_DEPTH])
  assert.deepEqual(r.mismatches, [])
  assert.ok(r.templateHits > 1000, `lines accepted by a template: ${r.templateHits}`)
  assert.ok((r.rejected.get('LPR_ERR_PIPELINE_LINE_SCHEMA') ?? 0) > 1000 && (r.rejected.get('LPR_ERR_PIPELINE_LINE_NOT_JSON') ?? 0) > 1000, JSON.stringify([...r.rejected]))
})

test('a field\'s pattern goes into a template only when it cannot match a quote, a backslash or a control character', () => {
  const timestamp = schemas.get('http_requests')!.properties.EdgeStartTimestamp!.pattern!
  assert.ok(embeddable(timestamp))
  assert.equal(embeddable('^([AB]{2}|\\d+)$'), '"(?:([AB]{2}|\\d+))"')
  // Ranges are refused, not reasoned about ([ -~] holds the quote and the backslash).
  for (const p of ['^([A-Z])$', '^(.*)$', '^([^a]+)$', '^([ -~]+)$', '^(a)|(b)$', '^(\\s+)$', '^(\\\\)$', '^(")$', '^(?:a)$', '^((?=a)a)$', '^(\\u0022)$', '^(\\x22)$', '^(\\W)$', '^(a\\)$', 'a', '^(a)', '(a)$', '^(é)$', '^(\\p{L})$']) {
    assert.equal(embeddable(p), null, p)
  }
})

test('differential: templates of a schema with every kind of field, against near misses', () => {
  // Objects, arrays of objects, untyped fields, numbers, booleans and a pattern: what a template
  // may hold (empty objects, arrays of scalars) and what it must leave to the scanner.
  const schema = {
    type: 'object',
    additionalProperties: true,
    'x-event-time': 'T',
    properties: {
      T: { type: ['integer', 'string', 'null'], pattern: '^(\\d{1,19}|\\d{4}-\\d{2}-\\d{2})$' },
      O: { type: ['object', 'null'] },
      A: { type: ['array', 'null'], items: { type: 'object' } },
      I: { type: ['array', 'null'], items: { type: 'integer' } },
      S: { type: ['array', 'null'], items: { type: 'string' } },
      U: {},
      N: { type: ['number', 'null'] },
      B: { type: 'boolean' },
      Z: { type: 'integer' }
    }
  } as unknown as DatasetSchema
  const ref = datasetsFromSchemas([['kinds', schema]], 'ajv').get('kinds')!
  const teachers = [
    '{"T":1652295571783000123,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":"2025-01-02","O":null,"A":[{}],"I":[],"S":[],"U":[1,"a",null,{}],"N":null,"B":false,"Z":-0}',
    '{"U":1e400,"Z":12345678901234567890,"T":null}'
  ]
  const near = [
    '{"T":"2025-01-02x","O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":"2025-01-0\\u0032","O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{"a":1,"a":1},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{"a":1},"A":[{"b":1,"b":1}],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2.5],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,1e400],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a\u0001"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":{"x":{"y":[]}},"N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1e400,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3.5}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3,"New":1}',
    `{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"${'x'.repeat(70_000)}","N":1.5,"B":true,"Z":3}`,
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}\r',
    '{"T":1, "O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}',
    '{"T":1,"O":{},"A":[],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}}',
    '{"T":"","O":{},"A":[[]],"I":[1,2],"S":["a"],"U":"x","N":1.5,"B":true,"Z":3}'
  ]
  const rnd = random(7)
  const lines = [...teachers]
  for (let round = 0; round < 3; round++) {
    lines.push(...teachers, ...near)
    for (let n = 0; n < 300; n++) lines.push(mutate(teachers[n % teachers.length]!, rnd))
  }
  const mismatches: string[] = []
  let hits = 0
  for (const maxDepth of [DEFAULT_MAX_DEPTH, 3, 2]) {
    // A validator of its own per limit: templates are learned under it.
    const fastKinds = datasetsFromSchemas([['kinds', schema]], 'fast').get('kinds')!
    for (const line of lines) {
      const want = checkParsed(ref, line, maxDepth)
      const code = fastKinds.lineValidator!.check(line, maxDepth)
      const refCode = want.ok ? null : want.code
      if (code !== refCode && !(code === ASK_REFERENCE && (refCode === LineRejectCode.tooDeep || refCode === LineRejectCode.duplicateKey))) mismatches.push(`${maxDepth} ${line.slice(0, 200)}: ${String(code)} vs ${String(refCode)}`)
    }
    hits += fastKinds.lineValidator!.templateHits
  }
  assert.deepEqual(mismatches, [])
  assert.ok(hits > 20, `template hits ${hits}`)
})

test('LineChecker: the same outcomes and counts with either validator, the first-line framing check included', () => {
  const run = (datasets: ReadonlyMap<string, Dataset>, lines: readonly string[]): unknown => {
    const counts = { rejected: [] as string[], unknown: [] as string[], drift: [] as string[] }
    const tally: Tally = { accepted: 0, countRejected: (c) => counts.rejected.push(c), countUnknownField: (f) => counts.unknown.push(f), countTypeMismatch: (f) => counts.drift.push(f) }
    const checker = new LineChecker(datasets.get('http_requests')!, 1 << 20, tally)
    const outcomes = lines.map((l) => checker.check(Buffer.from(l)))
    return { outcomes, counts: { ...counts, unknown: counts.unknown.sort() }, accepted: tally.accepted, finish: checker.finish() }
  }
  const bodies: string[][] = [
    [`\ufeff${good(1)}`, '{"RayID":"x","Extra":1,"Other":[1]}', '{"EdgeResponseStatus":"x","BotScore":"y","RayID":2}', '', '{"a":1,"a":2}', deep(40), 'not json'],
    ['{"events":[{"RayID":"a"}]}', good(2)],
    ['a,b,c', '1,2,3'],
    ['[1]']
  ]
  for (const body of bodies) assert.deepEqual(run(fast, body), run(reference, body), body.join(' | '))
})
