// Filters in Cloudflare's Logpush filter syntax: every example of Cloudflare's filter page
// (cloudflare/cloudflare-docs src/content/docs/logs/logpush/logpush-job/filters.mdx) compiles
// unchanged against the http_requests schema and means what the page says; the types each
// operator takes are Cloudflare's table; a field the dataset lacks or an operator on the wrong
// type is refused with its name.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { compileFilter, FilterError } from '../../src/shaping/index.js'
import { loadSchema } from '../helpers/fixtures.js'

const http = loadSchema('http_requests')
const firewall = loadSchema('firewall_events')
const f = (filter: unknown, schema = http): ((r: Record<string, unknown>) => boolean) => compileFilter(filter, schema, 'test')

// The operator table's examples, each wrapped in "where" as a job's filter holds them.
const TABLE: Array<[condition: Record<string, unknown>, passes: Record<string, unknown>, fails: Record<string, unknown>]> = [
  [{ key: 'ClientRequestHost', operator: 'eq', value: 'example.com' }, { ClientRequestHost: 'example.com' }, { ClientRequestHost: 'www.example.com' }],
  [{ key: 'ClientCountry', operator: '!eq', value: 'ca' }, { ClientCountry: 'us' }, { ClientCountry: 'ca' }],
  [{ key: 'BotScore', operator: 'lt', value: '30' }, { BotScore: 29 }, { BotScore: 30 }],
  [{ key: 'BotScore', operator: 'leq', value: '30' }, { BotScore: 30 }, { BotScore: 31 }],
  [{ key: 'BotScore', operator: 'gt', value: '30' }, { BotScore: 31 }, { BotScore: 30 }],
  [{ key: 'BotScore', operator: 'geq', value: '30' }, { BotScore: 30 }, { BotScore: 29 }],
  [{ key: 'ClientRequestPath', operator: 'startsWith', value: '/foo' }, { ClientRequestPath: '/foo/bar' }, { ClientRequestPath: '/bar/foo' }],
  [{ key: 'ClientRequestPath', operator: 'endsWith', value: '/foo' }, { ClientRequestPath: '/bar/foo' }, { ClientRequestPath: '/foo/bar' }],
  [{ key: 'ClientRequestPath', operator: '!startsWith', value: '/foo' }, { ClientRequestPath: '/bar/foo' }, { ClientRequestPath: '/foo/bar' }],
  [{ key: 'ClientRequestPath', operator: '!endsWith', value: '/foo' }, { ClientRequestPath: '/foo/bar' }, { ClientRequestPath: '/bar/foo' }],
  [{ key: 'ClientRequestPath', operator: 'contains', value: '/static' }, { ClientRequestPath: '/a/static/b.css' }, { ClientRequestPath: '/a/b.css' }],
  [{ key: 'ClientRequestPath', operator: '!contains', value: '/static' }, { ClientRequestPath: '/a/b.css' }, { ClientRequestPath: '/static/b.css' }],
  [{ key: 'EdgeResponseStatus', operator: 'in', value: [200, 201] }, { EdgeResponseStatus: 201 }, { EdgeResponseStatus: 404 }],
  [{ key: 'EdgeResponseStatus', operator: '!in', value: [200, 201] }, { EdgeResponseStatus: 404 }, { EdgeResponseStatus: 200 }]
]

for (const [condition, passes, fails] of TABLE) {
  test(`Cloudflare's example ${JSON.stringify(condition)} keeps and drops what its operator says`, () => {
    const p = f({ where: condition })
    assert.equal(p(passes), true)
    assert.equal(p(fails), false)
  })
}

test('and/or nest as the page shows: X AND (Y OR Z), (X AND Y) OR Z', () => {
  const X = { key: 'ClientRequestHost', operator: 'eq', value: 'example.com' }
  const Y = { key: 'EdgeResponseStatus', operator: 'geq', value: 500 }
  const Z = { key: 'ClientCountry', operator: 'eq', value: 'de' }
  const andOr = f({ where: { and: [X, { or: [Y, Z] }] } })
  const orAnd = f({ where: { or: [{ and: [X, Y] }, Z] } })
  const r = (host: string, status: number, country: string): Record<string, unknown> => ({ ClientRequestHost: host, EdgeResponseStatus: status, ClientCountry: country })
  assert.equal(andOr(r('example.com', 503, 'us')), true)
  assert.equal(andOr(r('example.com', 200, 'de')), true)
  assert.equal(andOr(r('other.com', 503, 'de')), false)
  assert.equal(orAnd(r('other.com', 200, 'de')), true)
  assert.equal(orAnd(r('example.com', 503, 'us')), true)
  assert.equal(orAnd(r('example.com', 200, 'us')), false)
})

test("the page's API example moves unchanged, as the escaped JSON string a job's filter holds", () => {
  // From the page's cURL example: JSON.stringify({ where: { and: [contains /static, eq example.com] } }).
  const jobFilter = JSON.stringify({ where: { and: [{ key: 'ClientRequestPath', operator: 'contains', value: '/static' }, { key: 'ClientRequestHost', operator: 'eq', value: 'example.com' }] } })
  const p = f(jobFilter)
  assert.equal(p({ ClientRequestPath: '/static/app.js', ClientRequestHost: 'example.com' }), true)
  assert.equal(p({ ClientRequestPath: '/static/app.js', ClientRequestHost: 'example.org' }), false)
  assert.equal(p({ ClientRequestPath: '/app.js', ClientRequestHost: 'example.com' }), false)
})

test('"in" takes a JSON array; the string "200,201" that Cloudflare\'s API refuses (cloudflare-docs#26491) is refused too', () => {
  const good = f({ where: { and: [{ key: 'EdgeResponseStatus', operator: 'in', value: [200, 201] }] } })
  assert.equal(good({ EdgeResponseStatus: 200 }), true)
  assert.throws(() => f({ where: { and: [{ key: 'EdgeResponseStatus', operator: 'in', value: '200,201' }] } }), (e: Error) => e instanceof FilterError && /"in" takes a non-empty JSON array/.test(e.message))
  const strings = f({ where: { key: 'ClientCountry', operator: 'in', value: ['de', 'fr'] } })
  assert.equal(strings({ ClientCountry: 'fr' }), true)
  assert.equal(strings({ ClientCountry: 'it' }), false)
})

test('contains on an array field matches an element', () => {
  const p = f({ where: { key: 'BotDetectionTags', operator: 'contains', value: 'api' } })
  assert.equal(p({ BotDetectionTags: ['browser', 'api'] }), true)
  assert.equal(p({ BotDetectionTags: ['browser'] }), false)
  const ints = f({ where: { key: 'BotDetectionIDs', operator: 'contains', value: 7 } })
  assert.equal(ints({ BotDetectionIDs: [3, 7] }), true)
})

test('a field absent or null: positive operators are false, negated ones true', () => {
  assert.equal(f({ where: { key: 'ClientCountry', operator: 'eq', value: 'ca' } })({}), false)
  assert.equal(f({ where: { key: 'ClientCountry', operator: '!eq', value: 'ca' } })({ ClientCountry: null }), true)
  assert.equal(f({ where: { key: 'BotScore', operator: 'lt', value: 30 } })({ BotScore: null }), false)
  assert.equal(f({ where: { key: 'EdgeResponseStatus', operator: '!in', value: [200] } })({}), true)
})

test('eq on a bool field takes true/false or their strings', () => {
  const field = Object.entries(http.properties).find(([, s]) => s['x-cloudflare-type'] === 'bool')![0]
  assert.equal(f({ where: { key: field, operator: 'eq', value: true } })({ [field]: true }), true)
  assert.equal(f({ where: { key: field, operator: 'eq', value: 'false' } })({ [field]: true }), false)
})

test('a field the dataset lacks is refused, naming it', () => {
  assert.throws(() => f({ where: { and: [{ key: 'EdgeResponseStatus', operator: 'geq', value: 400 }, { key: 'NoSuchField', operator: 'eq', value: 'x' }] } }),
    (e: Error) => e instanceof FilterError && e.message.includes('"NoSuchField"') && e.message.includes('where.and[1]'))
  // BotScore is an http_requests field, not a firewall_events one.
  assert.throws(() => f({ where: { key: 'BotScore', operator: 'lt', value: 30 } }, firewall), /"BotScore" is not a field/)
})

test("an operator on a type Cloudflare's table does not allow is refused, naming both", () => {
  const refused: Array<[Record<string, unknown>, RegExp]> = [
    [{ key: 'ClientRequestHost', operator: 'lt', value: 3 }, /operator "lt" does not apply to field "ClientRequestHost" of type string/],
    [{ key: 'BotScore', operator: 'startsWith', value: '3' }, /"startsWith" does not apply to field "BotScore" of type int/],
    [{ key: 'BotScore', operator: 'contains', value: '3' }, /"contains" does not apply to field "BotScore"/],
    [{ key: 'BotDetectionTags', operator: 'eq', value: 'api' }, /"eq" does not apply to field "BotDetectionTags" of type array\[string\]/],
    [{ key: 'ClientRequestHost', operator: 'like', value: 'x' }, /unknown operator "like"/]
  ]
  for (const [condition, why] of refused) assert.throws(() => f({ where: condition }), why)
  const objectField = Object.entries(http.properties).find(([, s]) => s['x-cloudflare-type'] === 'object')![0]
  assert.throws(() => f({ where: { key: objectField, operator: 'eq', value: 'x' } }), /of type object/)
})

test('values of the wrong kind and malformed filters are refused', () => {
  assert.throws(() => f({ where: { key: 'BotScore', operator: 'lt', value: 'thirty' } }), /is not a number/)
  assert.throws(() => f({ where: { key: 'ClientRequestHost', operator: 'eq', value: 3 } }), /is not a string/)
  assert.throws(() => f({ and: [] }), /must be an object with "where"/)
  assert.throws(() => f({ where: { and: [] } }), /non-empty list/)
  assert.throws(() => f('{"where":'), /not JSON/)
  assert.throws(() => f({ where: { key: 'BotScore', operator: 'lt' } }), /a condition is/)
})

test('a filter nested deeper than the bound stops the start with a message naming it, not a stack overflow', () => {
  // The bug: and/or lists were compiled recursively without a bound, so a deeply nested filter
  // threw a RangeError (Maximum call stack size exceeded) at start instead of a coded config error.
  let where: unknown = { key: 'EdgeResponseStatus', operator: 'eq', value: 200 }
  for (let i = 0; i < 20_000; i++) where = { and: [where] }
  assert.throws(() => f({ where }), (e: Error) => e instanceof FilterError && /nest deeper than 32 levels/.test(e.message))
  // 32 levels still compile and work.
  let ok: unknown = { key: 'EdgeResponseStatus', operator: 'eq', value: 200 }
  for (let i = 0; i < 31; i++) ok = { or: [ok] }
  assert.equal(f({ where: ok })({ EdgeResponseStatus: 200 }), true)
})
