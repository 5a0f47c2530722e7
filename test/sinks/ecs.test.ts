// The ECS mapping is data (schemas/ecs/<dataset>.yaml) read by one builder: these tests hold the
// data to the schemas (a misspelt Cloudflare field would silently map nothing) and pin what each
// named transform does.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { communityId, compileEcs, ecsMappings, loadEcs, ruleTargets, type EcsMapping, type EcsRule } from '../../src/sinks/elasticsearch/index.js'
import { schemasDir } from '../../src/paths.js'
import type { DatasetSchema } from '../../src/dataset-schema.js'

const ecs = loadEcs(join(schemasDir, 'ecs'))
const schemas = new Map(readdirSync(schemasDir).filter((f) => f.endsWith('.json')).map((f) =>
  [f.slice(0, -5), JSON.parse(readFileSync(join(schemasDir, f), 'utf8')) as DatasetSchema]))

function build(rules: EcsRule[], record: Record<string, unknown>): Record<string, any> {
  const out: Record<string, any> = {}
  compileEcs({ dataset: 't', elastic: null, rules }, ecs.types)(record, out)
  return out
}

test('every dataset schema has an ECS mapping file and every mapping file a schema', () => {
  assert.deepEqual([...ecs.mappings.keys()].sort(), [...schemas.keys()].sort())
})

test('every Cloudflare field a mapping reads is a field of its dataset', () => {
  for (const [dataset, mapping] of ecs.mappings) {
    const fields = new Set(Object.keys(schemas.get(dataset)?.properties ?? {}))
    for (const rule of mapping.rules) {
      for (const f of rule.from === undefined ? [] : typeof rule.from === 'string' ? [rule.from] : rule.from) {
        assert.ok(fields.has(f), `schemas/ecs/${dataset}.yaml reads ${f}, which schemas/${dataset}.json does not have`)
      }
    }
  }
})

test('no ECS object we write has the name of a Cloudflare field (the document would carry the key twice)', () => {
  for (const [dataset, mapping] of ecs.mappings) {
    const roots = new Set(['@timestamp', 'ecs', 'data_stream', 'event', ...mapping.rules.flatMap((r) => ruleTargets(r).map((t) => t.split('.')[0]!))])
    for (const f of Object.keys(schemas.get(dataset)?.properties ?? {})) assert.ok(!roots.has(f), `${dataset}.${f}`)
  }
})

test('every ECS field a mapping writes is in the index template with its type', () => {
  for (const [dataset, mapping] of ecs.mappings) {
    const props = ecsMappings(mapping, ecs.types)
    for (const target of mapping.rules.flatMap(ruleTargets)) {
      let node: any = { properties: props }
      for (const k of target.split('.')) node = node?.properties?.[k]
      assert.ok(node?.type, `${dataset}: ${target} is not mapped`)
    }
  }
  const http = ecsMappings(ecs.mappings.get('http_requests'), ecs.types) as any
  assert.deepEqual(http.source.properties.ip, { type: 'ip', ignore_malformed: true })
  assert.deepEqual(http.source.properties.port, { type: 'long' })
  assert.deepEqual(http['@timestamp'], { type: 'date_nanos' })
  assert.equal(http.url.properties.original.ignore_above, 8191)
})

test('a mapping file with an unknown transform or an untyped ECS field does not load', async (t) => {
  const { mkdtemp, writeFile, copyFile, rm } = await import('node:fs/promises')
  const { tmpdir } = await import('node:os')
  const dir = await mkdtemp(join(tmpdir(), 'ecs-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  await copyFile(join(schemasDir, 'ecs', '_types.yaml'), join(dir, '_types.yaml'))
  await writeFile(join(dir, 'x.yaml'), 'ecs:\n  - { from: A, to: source.ip, transform: reverse }\n')
  assert.throws(() => loadEcs(dir), /unknown transform "reverse"/)
  await writeFile(join(dir, 'x.yaml'), 'ecs:\n  - { from: A, to: source.nickname }\n')
  assert.throws(() => loadEcs(dir), /"source.nickname" has no type/)
})

test('copy converts to the ECS type and drops what does not fit (never a mapping error)', () => {
  const out = build([
    { from: 'P', to: 'source.port' }, { from: 'Q', to: 'destination.port' }, { from: 'I', to: 'source.ip' },
    { from: 'J', to: 'destination.ip' }, { from: 'N', to: 'rule.id' }, { from: 'E', to: 'user.id' }
  ], { P: '443', Q: 'n/a', I: '2001:db8::1', J: '', N: 1234, E: '' })
  assert.deepEqual(out, { source: { port: 443, ip: '2001:db8::1' }, rule: { id: '1234' } })
})

test('the first present of several fields; constants; value-if-present; append without duplicates', () => {
  const out = build([
    { to: 'event.kind', value: 'event' },
    { from: ['A', 'B'], to: 'rule.id' },
    { from: 'C', to: 'event.type', value: 'x' },
    { from: 'I', to: 'related.ip', append: true },
    { from: 'J', to: 'related.ip', append: true },
    { from: 'K', to: 'related.ip', append: true }
  ], { A: '', B: 'b', I: '192.0.2.1', J: '192.0.2.1', K: ['192.0.2.2', 'bad'] })
  assert.deepEqual(out, { event: { kind: 'event' }, rule: { id: 'b' }, related: { ip: ['192.0.2.1', '192.0.2.2'] } })
})

test('map (exact key, then lowercase, then default), lowercase/uppercase, split, string, strip', () => {
  const rules: EcsRule[] = [
    { from: 'O', to: 'event.outcome', transform: 'map', map: { pass: 'success', drop: 'failure' } },
    { from: 'S', to: 'event.severity', transform: 'map', map: { high: 73 } },
    { from: 'R', to: 'event.kind', transform: 'map', map: { unset: 'event' }, default: 'alert' },
    { from: 'B', to: 'event.action', transform: 'map', map: { true: 'on' } },
    { from: 'C', to: 'source.geo.country_iso_code', transform: 'uppercase' },
    { from: 'T', to: 'network.transport', transform: 'lowercase' },
    { from: 'L', to: 'rule.id', transform: 'split' },
    { from: 'N', to: 'network.iana_number', transform: 'string' },
    { from: 'Q', to: 'url.query', strip: '?' }
  ]
  assert.deepEqual(build(rules, { O: 'drop', S: 'High', R: 'malicious', B: true, C: 'gb', T: 'TCP', L: 'a, b,,c', N: 6, Q: '?x=1' }), {
    event: { outcome: 'failure', severity: 73, kind: 'alert', action: 'on' },
    source: { geo: { country_iso_code: 'GB' } },
    network: { transport: 'tcp', iana_number: '6' },
    rule: { id: ['a', 'b', 'c'] },
    url: { query: 'x=1' }
  })
  assert.deepEqual(build(rules, { O: 'other' }), {}, 'an unmapped value without default sets nothing')
})

test('url keeps the text as sent and splits it the way Elastic\'s uri_parts does', () => {
  const one = build([{ from: 'U', to: 'url', transform: 'url' }], { U: 'https://user:pw@[2001:db8::1]:8443/a/../b.tar.gz?q=%20x#frag' })
  assert.deepEqual(one.url, {
    original: 'https://user:pw@[2001:db8::1]:8443/a/../b.tar.gz?q=%20x#frag', scheme: 'https', domain: '2001:db8::1', port: 8443,
    path: '/a/../b.tar.gz', query: 'q=%20x', fragment: 'frag', extension: 'gz', username: 'user'
  })
  const parts = build([{ from: ['S', 'H', 'U'], to: 'url', transform: 'url' }], { S: 'http', H: 'example.com', U: '/x' })
  assert.deepEqual(parts.url, { original: 'http://example.com/x', scheme: 'http', domain: 'example.com', path: '/x' })
  assert.deepEqual(build([{ from: 'U', to: 'url', transform: 'url' }], { U: 'not a url' }), {})
})

test('pair, json with a path, date, duration, scale', () => {
  const out = build([
    { from: 'P', to: ['network.protocol', 'http.version'], transform: 'pair', separator: '/' },
    { from: 'T', to: ['tls.version_protocol', 'tls.version'], transform: 'pair', separator: 'v' },
    { from: 'J', to: 'event.id', transform: 'json', path: 'a.b' },
    { from: 'E', to: 'http.request.method', path: 'Request.Method' },
    { from: 'S', to: 'event.start', transform: 'date' },
    { from: ['S', 'F'], to: 'event.duration', transform: 'duration' },
    { from: 'M', to: 'event.end', transform: 'date' },
    { from: 'W', to: 'network.bytes', transform: 'scale', factor: 0.125 }
  ], { P: 'HTTP/2', T: 'TLSv1.3', J: '{"a":{"b":"x"}}', E: { Request: { Method: 'GET' } }, S: '2024-01-01T00:00:00.5Z', F: '2024-01-01T00:00:01.75Z', M: 1704067200123, W: 80 })
  assert.deepEqual(out, {
    network: { protocol: 'http', bytes: 10 }, http: { version: '2', request: { method: 'GET' } }, tls: { version_protocol: 'tls', version: '1.3' },
    event: { id: 'x', start: '2024-01-01T00:00:00.500000000Z', duration: 1_250_000_000, end: '2024-01-01T00:00:00.123000000Z' }
  })
  assert.deepEqual(build([{ from: 'P', to: ['network.protocol', 'http.version'], transform: 'pair' }], { P: 'none' }), {})
})

test('community_id follows the Community ID v1 spec (its published TCP example) and is direction-free', () => {
  const id = communityId('128.232.110.120', '66.35.250.204', 34855, 80, 6)
  assert.equal(id, '1:LQU9qZlK+B5F3KDmev6m5PMibrg=')
  assert.equal(communityId('66.35.250.204', '128.232.110.120', 80, 34855, 6), id)
  const out = build([{ from: ['S', 'D', 'SP', 'DP', 'P'], to: 'network.community_id', transform: 'community_id' }], { S: '128.232.110.120', D: '66.35.250.204', SP: 34855, DP: 80, P: 'TCP' })
  assert.equal(out.network.community_id, id)
  assert.equal(communityId('192.0.2.1', '192.0.2.2', 0, 0, 1), undefined, 'ICMP is not hashed with ports we do not have')
})

test('every dataset gets event.kind/category/type and at least one field from its line', () => {
  for (const [dataset, mapping] of ecs.mappings) {
    const targets = new Set(mapping.rules.flatMap(ruleTargets))
    for (const f of ['event.kind', 'event.category', 'event.type']) assert.ok(targets.has(f), `${dataset}: ${f}`)
    assert.ok(mapping.rules.some((r: EcsRule) => r.from !== undefined), dataset)
  }
  const covered = [...ecs.mappings.values()].filter((m: EcsMapping) => m.elastic !== null)
  assert.equal(covered.length, 25, 'the datasets Elastic\'s integration has a stream for')
})

test('docs/elasticsearch.md\'s ECS coverage table has a row per dataset with its Elastic stream', async () => {
  const { packageRoot } = await import('../../src/paths.js')
  const readme = readFileSync(join(packageRoot, 'docs', 'elasticsearch.md'), 'utf8')
  const rows = new Map([...readme.matchAll(/^\| ([a-z0-9_]+) \| (`([a-z_]+)`|—) \| [a-z_, ]+ \| /gm)].map((m) => [m[1]!, m[3] ?? null]))
  for (const [dataset, mapping] of ecs.mappings) assert.equal(rows.get(dataset), mapping.elastic, `docs/elasticsearch.md row for ${dataset}`)
})

test('http_outcome: success below 400, failure from 400, nothing for what is not a status', () => {
  const rule: EcsRule = { from: 'S', to: 'event.outcome', transform: 'http_outcome' }
  assert.deepEqual(build([rule], { S: 399 }), { event: { outcome: 'success' } })
  assert.deepEqual(build([rule], { S: 400 }), { event: { outcome: 'failure' } })
  assert.deepEqual(build([rule], { S: 0 }), {})
})

test('date reads a unixnano time from the line, all its digits', () => {
  const line = '{"ConnectTimestamp":1652295571783000123,"DisconnectTimestamp":1652295572783000999}'
  const out: Record<string, any> = {}
  compileEcs({ dataset: 't', elastic: null, rules: [
    { from: 'ConnectTimestamp', to: 'event.start', transform: 'date' },
    { from: ['ConnectTimestamp', 'DisconnectTimestamp'], to: 'event.duration', transform: 'duration' }
  ] }, ecs.types)(JSON.parse(line), out, line)
  assert.deepEqual(out.event, { start: '2022-05-11T18:59:31.783000123Z', duration: 1_000_000_876 })
})
