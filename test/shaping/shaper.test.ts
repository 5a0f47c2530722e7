// The shaping of one line: fields kept or dropped (the event time always kept), the privacy
// transforms, deterministic sampling within stated bounds, and the rules' checks at start.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, createHmac } from 'node:crypto'
import { buildShapers, schemasForElasticsearch, Tally, type Shaper, type ShapingRule } from '../../src/shaping/index.js'
import { truncateIp } from '../../src/shaping/transforms.js'
import { members } from '../../src/shaping/members.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'
import { BIG_UNIXNANO, loadSchema, recordLine } from '../helpers/fixtures.js'

const datasets = loadDatasets(schemasDir)
const KEY = 'k'.repeat(32)
const env = { LPR_TEST_HMAC_KEY: KEY }

function shaperOf(rules: ShapingRule[], dataset = 'http_requests', sink = 'file'): Shaper {
  const s = buildShapers(rules.map((r) => ({ datasets: [dataset], ...r })), [sink], datasets, env).get(sink)?.get(dataset)
  assert.ok(s, 'a shaper for the dataset')
  return s
}

const LINE = `{"RayID":"7c0a1b2c3d4e5f60","EdgeStartTimestamp":${BIG_UNIXNANO},"ClientIP":"198.51.100.23","ClientRequestURI":"\\/login?user=a%40b.c&t=1","ClientRequestHost":"example.com","Cookies":{"session":"s3cr3t"},"ClientRequestUserAgent":"caf\\u00e9 \\"x\\"","EdgeResponseStatus":403}`

test('a line is walked as spans of its own text, escapes and big integers as sent', () => {
  const ms = members(LINE)
  assert.deepEqual(ms.map((m) => m.name), ['RayID', 'EdgeStartTimestamp', 'ClientIP', 'ClientRequestURI', 'ClientRequestHost', 'Cookies', 'ClientRequestUserAgent', 'EdgeResponseStatus'])
  assert.equal(LINE.slice(ms[1]!.start, ms[1]!.end), BIG_UNIXNANO)
  assert.equal(LINE.slice(ms[5]!.start, ms[5]!.end), '{"session":"s3cr3t"}')
  // An escaped backslash before a closing quote, an escaped quote inside, brackets inside strings.
  const tricky = '{"a":"x\\\\","b":"y\\"}z","c":{"d":"}]","e":[1,"\\\\"]},"f":2}'
  assert.deepEqual(JSON.parse(tricky), { a: 'x\\', b: 'y"}z', c: { d: '}]', e: [1, '\\'] }, f: 2 })
  assert.deepEqual(members(tricky).map((m) => [m.name, tricky.slice(m.start, m.end)]), [['a', '"x\\\\"'], ['b', '"y\\"}z"'], ['c', '{"d":"}]","e":[1,"\\\\"]}'], ['f', '2']])
  assert.deepEqual(members(' { } '), [])
  assert.deepEqual(members('{ "a" : [1, {"b":"]"}] , "c":null }').map((m) => m.name), ['a', 'c'])
})

test('drop takes the named fields out; every other value goes out byte for byte, the 19-digit time included', () => {
  const s = shaperOf([{ name: 'no-cookies', drop: ['Cookies', 'ClientRequestUserAgent'] }])
  const out = s.shape(LINE, new Tally(1))!
  assert.equal(out, `{"RayID":"7c0a1b2c3d4e5f60","EdgeStartTimestamp":${BIG_UNIXNANO},"ClientIP":"198.51.100.23","ClientRequestURI":"\\/login?user=a%40b.c&t=1","ClientRequestHost":"example.com","EdgeResponseStatus":403}`)
})

test('keep sends only the named fields, and always the event time field', () => {
  const s = shaperOf([{ name: 'slim', keep: ['RayID', 'EdgeResponseStatus'] }])
  assert.equal(s.shape(LINE, new Tally(1)), `{"RayID":"7c0a1b2c3d4e5f60","EdgeStartTimestamp":${BIG_UNIXNANO},"EdgeResponseStatus":403}`)
  const dropTime = shaperOf([{ name: 'try', drop: ['EdgeStartTimestamp', 'Cookies'] }])
  assert.ok(dropTime.shape(LINE, new Tally(1))!.includes(`"EdgeStartTimestamp":${BIG_UNIXNANO}`), 'the event time stays even when dropped by name')
})

test('without a rewrite the stored string itself goes out', () => {
  const s = shaperOf([{ name: 'errors', filter: { where: { key: 'EdgeResponseStatus', operator: 'geq', value: 400 } } }])
  assert.equal(s.shape(LINE, new Tally(1)), LINE)
})

test('hmac-sha256 gives a stable keyed pseudonym that joins across datasets', () => {
  const rule: ShapingRule = { name: 'pseudo', transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'LPR_TEST_HMAC_KEY' }] }
  const out = JSON.parse(shaperOf([rule]).shape(LINE, new Tally(1))!) as Record<string, unknown>
  assert.equal(out.ClientIP, createHmac('sha256', KEY).update('198.51.100.23').digest('hex'))
  // firewall_events names the client the same way: the same address, the same pseudonym.
  const fw = shaperOf([{ ...rule }], 'firewall_events').shape('{"Datetime":"2026-01-01T00:00:00Z","ClientIP":"198.51.100.23"}', new Tally(1))!
  assert.equal((JSON.parse(fw) as Record<string, unknown>).ClientIP, out.ClientIP)
  const other = buildShapers([{ ...rule, datasets: ['http_requests'] }], ['file'], datasets, { LPR_TEST_HMAC_KEY: 'another-key-of-32-bytes-xxxxxxxx' }).get('file')!.get('http_requests')!
  assert.notEqual((JSON.parse(other.shape(LINE, new Tally(1))!) as Record<string, unknown>).ClientIP, out.ClientIP, 'another key, another pseudonym')
})

test('truncate-ip keeps /24 and /48 by default, and what it is told; an IPv4-mapped address by the IPv4 prefix', () => {
  // The bug: ::ffff:a.b.c.d (an IPv4 client seen by a dual-stack listener) was cut at /48 like any
  // IPv6 address, so every such client became "::" instead of its /24 network.
  const cases: Array<[ip: string, v4: number, v6: number, out: string | null]> = [
    ['::ffff:198.51.100.23', 24, 48, '::ffff:198.51.100.0'],
    ['::FFFF:198.51.100.23', 16, 48, '::ffff:198.51.0.0'],
    ['::ffff:c633:6417', 24, 48, '::ffff:198.51.100.0'],
    ['::ffff:198.51.100.23', 32, 0, '::ffff:198.51.100.23'],
    ['198.51.100.23', 24, 48, '198.51.100.0'],
    ['198.51.100.23', 16, 48, '198.51.0.0'],
    ['2001:db8:abcd:12::1', 24, 48, '2001:db8:abcd::'],
    ['2001:db8:abcd:12::1', 24, 56, '2001:db8:abcd::'],
    ['2001:db8:abcd:1234::1', 24, 56, '2001:db8:abcd:1200::'],
    // A zone id is local to the host and goes; garbage is no address.
    ['fe80::1%eth0', 24, 48, 'fe80::'],
    ['::ffff:198.51.100.23x', 24, 48, null],
    ['not an ip', 24, 48, null]
  ]
  for (const [ip, v4, v6, out] of cases) assert.equal(truncateIp(ip, v4, v6), out, ip)
  const s = shaperOf([{ name: 'net', transforms: [{ field: '@ip', type: 'truncate-ip', ipv4Prefix: 16 }] }])
  const out = JSON.parse(s.shape(LINE, new Tally(1))!) as Record<string, unknown>
  assert.equal(out.ClientIP, '198.51.0.0')
  assert.equal(JSON.parse(s.shape('{"ClientIP":"garbage"}', new Tally(1))!).ClientIP, null, 'what is not an address is not let through')
})

test('remove-query keeps the path; mask puts a fixed string; absent and null fields stay as they are', () => {
  const s = shaperOf([{ name: 'uri', transforms: [{ field: 'ClientRequestURI', type: 'remove-query' }, { field: ['Cookies', 'ClientRequestUserAgent'], type: 'mask', with: 'xxx' }] }])
  const out = JSON.parse(s.shape(LINE, new Tally(1))!) as Record<string, unknown>
  assert.equal(out.ClientRequestURI, '/login')
  assert.equal(out.Cookies, 'xxx')
  assert.equal(out.ClientRequestUserAgent, 'xxx')
  assert.equal(s.shape('{"EdgeStartTimestamp":1,"Cookies":null}', new Tally(1)), '{"EdgeStartTimestamp":1,"Cookies":null}')
})

test('transforms on one field chain in order: truncate, then hash the network', () => {
  const s = shaperOf([{ name: 'net-hash', transforms: [{ field: 'ClientIP', type: 'truncate-ip' }, { field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'LPR_TEST_HMAC_KEY' }] }])
  assert.equal(JSON.parse(s.shape(LINE, new Tally(1))!).ClientIP, createHmac('sha256', KEY).update('198.51.100.0').digest('hex'))
})

test('filters and samples count per rule what they keep back', () => {
  const s = shaperOf([
    { name: 'errors', filter: { where: { key: 'EdgeResponseStatus', operator: 'geq', value: 400 } } },
    { name: 'tenth', sample: 0.1 }
  ])
  const tally = new Tally(2)
  for (let i = 0; i < 1000; i++) s.shape(`{"RayID":"${i.toString(16)}","EdgeResponseStatus":${i % 2 === 0 ? 200 : 500}}`, tally)
  assert.equal(tally.filtered[0], 500)
  assert.equal(tally.passed[0], 500)
  assert.equal(tally.passed[1]! + tally.sampled[1]!, 500)
})

test('sampling keeps the share it is given within stated bounds, the same records everywhere, nested shares as subsets', () => {
  // 200,000 distinct RayIDs at share 0.1: the kept count is Binomial(n, p) if the hash is uniform;
  // sigma = sqrt(n p (1-p)) = 134.2, and the test allows 5 sigma (671 lines; a false alarm once
  // in 1.7 million). The ids are fixed, so the outcome is too: the bound is what it must stay in.
  const n = 200_000
  const tenth = shaperOf([{ name: 's', sample: 0.1 }])
  const again = shaperOf([{ name: 's', sample: 0.1 }], 'http_requests', 'elasticsearch')
  const half = shaperOf([{ name: 's', sample: 0.5 }])
  let kept = 0
  let keptHalf = 0
  for (let i = 0; i < n; i++) {
    const ray = createHash('sha1').update(String(i)).digest('hex').slice(0, 16)
    const line = `{"RayID":"${ray}","EdgeStartTimestamp":${i}}`
    const a = tenth.shape(line, new Tally(1)) !== null
    assert.equal(again.shape(line, new Tally(1)) !== null, a, 'another destination keeps the same records')
    const b = half.shape(line, new Tally(1)) !== null
    if (a) { kept++; assert.ok(b, 'every record kept at 0.1 is kept at 0.5') }
    if (b) keptHalf++
  }
  const sigma = Math.sqrt(n * 0.1 * 0.9)
  assert.ok(Math.abs(kept - n * 0.1) <= 5 * sigma, `kept ${kept} of ${n} at 0.1 (bounds ${n * 0.1} ± ${Math.round(5 * sigma)})`)
  assert.ok(Math.abs(keptHalf - n * 0.5) <= 5 * Math.sqrt(n * 0.25), `kept ${keptHalf} at 0.5`)
  // The same RayID in another dataset is the same decision.
  const fw = shaperOf([{ name: 's', sample: 0.1 }], 'firewall_events')
  const ray = createHash('sha1').update('7').digest('hex').slice(0, 16)
  assert.equal(fw.shape(`{"RayID":"${ray}","Datetime":1}`, new Tally(1)) !== null, tenth.shape(`{"RayID":"${ray}","EdgeStartTimestamp":9}`, new Tally(1)) !== null)
})

test('a dataset without RayID samples by the whole line, or by the field sampleBy names', () => {
  const byLine = shaperOf([{ name: 's', sample: 0.5 }], 'dns_logs')
  const line = '{"Timestamp":1,"QueryName":"example.com"}'
  const first = byLine.shape(line, new Tally(1))
  for (let i = 0; i < 5; i++) assert.equal(byLine.shape(line, new Tally(1)), first, 'the same line, the same decision')
  assert.throws(() => shaperOf([{ name: 's', sample: 0.5, sampleBy: 'RayID' }], 'dns_logs'), /sampleBy names field "RayID"/)
})

test('mistakes stop the start with LPR_ERR_CONFIG_INVALID, naming the rule, dataset and field', () => {
  const fails = (rules: ShapingRule[], why: RegExp, e: NodeJS.ProcessEnv = env): void => {
    assert.throws(() => buildShapers(rules, ['file', 'splunk'], datasets, e), (err: Error & { code?: string }) => err.code === 'LPR_ERR_CONFIG_INVALID' && why.test(err.message), String(why))
  }
  fails([{ name: 'r', datasets: ['http_requests'], filter: { where: { key: 'Nope', operator: 'eq', value: 'x' } } }], /rule "r" for dataset http_requests: filter.*"Nope" is not a field/)
  fails([{ name: 'r', datasets: ['http_requests'], filter: { where: { key: 'ClientIP', operator: 'gt', value: 1 } } }], /"gt" does not apply to field "ClientIP" of type string/)
  // A rule for every dataset must fit every dataset: ClientRequestHost is not everywhere.
  fails([{ name: 'all', drop: ['ClientRequestHost'] }], /drop names field "ClientRequestHost", which dataset \w+ does not have/)
  fails([{ name: 'r', sinks: ['elasticsearch'], drop: ['Cookies'] }], /names destination "elasticsearch", which is not in SINKS/)
  fails([{ name: 'r', datasets: ['nope'] }], /names dataset "nope", which has no schema/)
  fails([{ name: 'r', datasets: ['http_requests'], transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'UNSET_KEY_VAR' }] }], /UNSET_KEY_VAR \(keyEnv\) is not set/)
  fails([{ name: 'r', datasets: ['http_requests'], transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'K' }] }], /at least 16 bytes/, { K: 'short' })
  fails([{ name: 'r', datasets: ['http_requests'], transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyFile: '/nonexistent/key' }] }], /keyFile cannot be read: ENOENT/)
  fails([{ name: 'r', datasets: ['http_requests'] }, { name: 'r', datasets: ['dns_logs'] }], /two rules are named "r"/)
  fails([{ name: 'both', datasets: ['http_requests'], keep: ['RayID'], drop: ['Cookies'] }], /has keep and drop: give one of the two/)
})

test('rules apply only to their destinations and datasets; "@ip" names every IP field of each', () => {
  const shapers = buildShapers([{ name: 'gdpr', transforms: [{ field: '@ip', type: 'hmac-sha256', keyEnv: 'LPR_TEST_HMAC_KEY' }] }, { name: 'splunk-only', sinks: ['splunk'], datasets: ['http_requests'], drop: ['Cookies'] }], ['file', 'splunk'], datasets, env)
  assert.equal(shapers.get('file')!.size, datasets.size, 'a rule without datasets applies to each')
  assert.match(shapers.get('splunk')!.get('http_requests')!.describe(), /gdpr: hmac-sha256 @ip \(ClientIP, .*\) \| splunk-only: drop 1 fields/)
  assert.doesNotMatch(shapers.get('file')!.get('http_requests')!.describe(), /splunk-only/)
  const line = recordLine(loadSchema('http_requests'), 3)
  const out = JSON.parse(shapers.get('file')!.get('http_requests')!.shape(line, new Tally(1))!) as Record<string, unknown>
  const orig = JSON.parse(line) as Record<string, unknown>
  for (const f of ['ClientIP', 'EdgeServerIP', 'OriginIP']) assert.equal(out[f], createHmac('sha256', KEY).update(String(orig[f])).digest('hex'), f)
})

test('Elasticsearch maps a field it gets hashed as a keyword, one it gets truncated still as an ip', () => {
  const shapers = buildShapers([{ name: 'h', datasets: ['http_requests'], transforms: [{ field: 'ClientIP', type: 'hmac-sha256', keyEnv: 'LPR_TEST_HMAC_KEY' }, { field: 'OriginIP', type: 'truncate-ip' }] }], ['elasticsearch'], datasets, env)
  const schemas = schemasForElasticsearch(datasets, shapers)
  assert.equal(schemas.get('http_requests')!.properties.ClientIP!['x-es-type'], undefined)
  assert.equal(schemas.get('http_requests')!.properties.OriginIP!['x-es-type'], 'ip')
  assert.equal(datasets.get('http_requests')!.schema.properties.ClientIP!['x-es-type'], 'ip', 'the dataset itself is not changed')
  assert.equal(schemas.get('firewall_events'), datasets.get('firewall_events')!.schema)
})
