// `logpush-receiver schemas check` against the Cloudflare API double's field lists (GET
// …/logpush/datasets/{dataset}/fields): what it prints when Cloudflare and our reference agree and
// when they differ, what --write does to the reference and the schemas (in temporary copies),
// and how it fails (a dataset the scope lacks, a refused credential, a hostile field list).
import { test, type TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Ajv } from 'ajv'
import { cli } from '../helpers/cli.js'
import { schemasDir } from '../../src/paths.js'
import { defaultReferencePath, loadReference, scopesOf, type Reference } from '../../src/datasets/reference.js'
import { generateSchemas, schemaText } from '../../src/datasets/generate.js'
import { referenceFields, setDatasetFields, startCloudflareDouble, type CloudflareDouble } from '../helpers/cloudflare-double/index.js'

const CF_TOKEN = 'cf-api-token-0123456789'

interface Setup { double: CloudflareDouble, env: Record<string, string>, dir: string, reference: string, schemas: string }

/** The double, and copies of the reference and schemas/ for --write to change. */
async function setup(t: TestContext): Promise<Setup> {
  const { double, base } = await startCloudflareDouble()
  t.after(() => double.stop())
  double.accounts.add('acc1')
  double.zones.set('zone1', { account: 'acc1', name: 'example.com' })
  double.tokens.set(CF_TOKEN, { accounts: '*', zones: '*', permissions: ['logs:write'] })
  const dir = mkdtempSync(join(tmpdir(), 'lpr-schemas-check-'))
  const reference = join(dir, 'datasets.json')
  copyFileSync(defaultReferencePath, reference)
  const schemas = join(dir, 'schemas')
  mkdirSync(schemas)
  for (const f of readdirSync(schemasDir)) if (f.endsWith('.json')) copyFileSync(join(schemasDir, f), join(schemas, f))
  return { double, dir, reference, schemas, env: { CLOUDFLARE_API_URL: base, CLOUDFLARE_API_TOKEN: CF_TOKEN } }
}

const datasetsOf = (scope: 'zone' | 'account'): string[] => {
  const ref = loadReference()
  return Object.keys(ref).filter((id) => scopesOf(ref[id]!).includes(scope)).sort()
}

test('schemas check --zone: one field-list request per zone dataset; all agree, exit 0', async (t) => {
  const s = await setup(t)
  const r = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--reference', s.reference)
  assert.equal(r.code, 0, r.err + r.out)
  const zone = datasetsOf('zone')
  assert.ok(zone.includes('http_requests') && zone.includes('firewall_events') && !zone.includes('gateway_dns'))
  assert.deepEqual(s.double.requests.map((q) => `${q.method} ${q.path} ${q.status}`), zone.map((d) => `GET /zones/zone1/logpush/datasets/${d}/fields 200`))
  assert.match(r.out, new RegExp(`^${zone.length} dataset\\(s\\) of zone zone1 against Cloudflare's field lists: 0 differ, 0 could not be read\\.`))
  assert.match(r.out, /^http_requests: same fields \(\d+\)$/m)
  assert.deepEqual(s.double.violations, [])
})

test('a field Cloudflare added and one it dropped are named; --write records both and regenerates that schema only', async (t) => {
  const s = await setup(t)
  const live = referenceFields('dns_logs')
  assert.ok('QueryName' in live)
  delete live.QueryName
  live.QueryCategory = 'Category of the queried name.'
  setDatasetFields(s.double, 'dns_logs', live)
  const before = Object.fromEntries(readdirSync(s.schemas).map((f) => [f, statSync(join(s.schemas, f)).mtimeMs]))
  const referenceBefore = readFileSync(s.reference, 'utf8')

  const r = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'dns_logs', '--reference', s.reference, '--schemas-dir', s.schemas)
  assert.equal(r.code, 1, 'a difference is exit 1, so a scheduled run can alert')
  assert.match(r.out, /^dns_logs: 1 field\(s\) Cloudflare has that our schema lacks: QueryCategory$/m)
  assert.match(r.out, /^dns_logs: 1 field\(s\) we have that Cloudflare dropped: QueryName$/m)
  assert.match(r.out, /Run again with --write/)
  assert.equal(readFileSync(s.reference, 'utf8'), referenceBefore, 'nothing written without --write')

  // The UTC day before and after the run: a midnight while it ran makes either the one written.
  const dayBefore = new Date().toISOString().slice(0, 10)
  const w = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'dns_logs', '--reference', s.reference, '--schemas-dir', s.schemas, '--write', '--json')
  const dayAfter = new Date().toISOString().slice(0, 10)
  assert.equal(w.code, 0, w.err + w.out)
  assert.deepEqual(w.json.written, ['dns_logs'])
  const ref = JSON.parse(readFileSync(s.reference, 'utf8')) as Reference
  const added = ref.dns_logs!.fields.find((f) => f.name === 'QueryCategory')!
  assert.equal(added.type_unverified, true)
  assert.equal(added.description, 'Category of the queried name.')
  const dropped = ref.dns_logs!.fields.find((f) => f.name === 'QueryName')!
  assert.equal(dropped.deprecated, true)
  assert.ok(dropped.removed === dayBefore || dropped.removed === dayAfter, `removed ${String(dropped.removed)}: the day of the run (${dayBefore} or ${dayAfter})`)
  assert.equal((ref.dns_logs as { field_count?: number }).field_count, ref.dns_logs!.fields.length)
  // Every other dataset of the reference is as it was.
  const old = JSON.parse(referenceBefore) as Reference
  for (const id of Object.keys(old)) if (id !== 'dns_logs') assert.deepEqual(ref[id], old[id], id)

  // The regenerated schema: what the generator makes of the new reference, and only that file changed.
  const schema = JSON.parse(readFileSync(join(s.schemas, 'dns_logs.json'), 'utf8'))
  assert.equal(readFileSync(join(s.schemas, 'dns_logs.json'), 'utf8'), schemaText(generateSchemas(ref).get('dns_logs')!))
  for (const [f, mtime] of Object.entries(before)) if (f !== 'dns_logs.json') assert.equal(statSync(join(s.schemas, f)).mtimeMs, mtime, f)
  // The new field's type is unknown: any value passes; the dropped one keeps its type, deprecated.
  assert.equal(schema.properties.QueryCategory['x-unverified'], true)
  assert.equal(schema.properties.QueryName.deprecated, true)
  const validate = new Ajv({ strict: false }).compile(schema)
  for (const v of ['x', 3, { a: 1 }, null]) assert.ok(validate({ QueryCategory: v }), JSON.stringify(v))
  assert.ok(!validate({ QueryName: 3 }), 'the dropped field still has its type')

  // Checked again: the drop is known, nothing new; exit 0.
  const again = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'dns_logs', '--reference', s.reference)
  assert.equal(again.code, 0, again.out)
  assert.match(again.out, /^dns_logs: same fields \(\d+\); 1 recorded as dropped earlier: QueryName$/m)
  assert.deepEqual(s.double.violations, [])
})

test('--account: a dataset the account does not have is reported, the others are still checked, exit 1', async (t) => {
  const s = await setup(t)
  const { datasetFieldsState } = await import('../helpers/cloudflare-double/index.js')
  datasetFieldsState(s.double).unavailable.add('accounts/gateway_dns')
  const r = await cli(s.env, 'schemas', 'check', '--account', 'acc1', '--reference', s.reference, '--json')
  assert.equal(r.code, 1)
  const rows = r.json.datasets as Array<{ dataset: string, error?: string, fields?: number }>
  assert.deepEqual(rows.map((x) => x.dataset), datasetsOf('account'))
  assert.match(rows.find((x) => x.dataset === 'gateway_dns')!.error!, /HTTP 400: dataset gateway_dns is not available for this account \(code 1002\)/)
  assert.ok(rows.filter((x) => x.dataset !== 'gateway_dns').every((x) => x.error === undefined && typeof x.fields === 'number'))
  assert.deepEqual(s.double.violations, [])
})

test('a credential Cloudflare refuses stops at the first request, with the API\'s message', async (t) => {
  const s = await setup(t)
  s.double.tokens.set(CF_TOKEN, { accounts: '*', zones: '*', permissions: ['logs:read'] })
  const r = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--reference', s.reference)
  assert.equal(r.code, 1)
  assert.match(r.err, /LPR_ERR_CLOUDFLARE_API: Cloudflare API: HTTP 403: Authentication error \(code 10000\)/)
  assert.equal(s.double.requests.length, 1)
})

test('a field list with a name no dataset could have is refused for that dataset and nothing is written', async (t) => {
  const s = await setup(t)
  const live = referenceFields('nel_reports')
  setDatasetFields(s.double, 'nel_reports', { ...live, 'Evil\nName': 'x' })
  setDatasetFields(s.double, 'dns_logs', { ...referenceFields('dns_logs'), ['A'.repeat(5000)]: 'long' })
  const before = readFileSync(s.reference, 'utf8')
  const r = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--reference', s.reference, '--schemas-dir', s.schemas, '--write')
  assert.equal(r.code, 1)
  assert.match(r.out, /^nel_reports: could not read Cloudflare's field list: the field list has a field name we cannot keep: "Evil\\nName"$/m)
  assert.match(r.out, /^dns_logs: could not read Cloudflare's field list: the field list has a field name we cannot keep: "A{128}"$/m)
  assert.ok(r.out.length < 20_000, 'what the API sends is bounded before it is printed')
  assert.equal(readFileSync(s.reference, 'utf8'), before)
})

test('usage: a dataset of the other scope, an unknown dataset, no scope', async (t) => {
  const s = await setup(t)
  const a = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'gateway_dns')
  assert.equal(a.code, 2)
  assert.match(a.err, /gateway_dns is not a zone dataset \(scopes: account\)/)
  const b = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'no_such')
  assert.equal(b.code, 2)
  assert.match(b.err, /unknown dataset "no_such"/)
  const c = await cli(s.env, 'schemas', 'check')
  assert.equal(c.code, 2)
  assert.match(c.err, /give --zone <zone id> or --account <account id>/)
  const h = await cli(s.env, '--help')
  assert.match(h.out, /schemas check\s+compare our dataset schemas/)
  assert.equal(s.double.requests.length, 0)
})

test('a field recorded as dropped that Cloudflare lists again is named, and --write takes the record back', async (t) => {
  const s = await setup(t)
  setDatasetFields(s.double, 'nel_reports', Object.fromEntries(Object.entries(referenceFields('nel_reports')).slice(1)))
  const first = Object.keys(referenceFields('nel_reports'))[0]!
  assert.equal((await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'nel_reports', '--reference', s.reference, '--schemas-dir', s.schemas, '--write')).code, 0)
  assert.equal(loadReference(s.reference).nel_reports!.fields.find((f) => f.name === first)!.deprecated, true)
  setDatasetFields(s.double, 'nel_reports', referenceFields('nel_reports'))
  const r = await cli(s.env, 'schemas', 'check', '--zone', 'zone1', '--dataset', 'nel_reports', '--reference', s.reference, '--schemas-dir', s.schemas, '--write')
  assert.equal(r.code, 0, r.out)
  assert.match(r.out, new RegExp(`^nel_reports: 1 field\\(s\\) recorded as dropped that Cloudflare lists again: ${first}$`, 'm'))
  const field = loadReference(s.reference).nel_reports!.fields.find((f) => f.name === first)!
  assert.equal(field.removed, undefined)
})
