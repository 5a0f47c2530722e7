// `npm run replay` applies the shaping in force: replayed dead letters go through the spool and
// each destination's rules like any batch, so a filtered destination does not get lines its
// rules keep back, and the spool (and a destination without rules) still gets them exact.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { post, readStore, startServer } from '../helpers/server.js'
import { brokenSchemas, fixable, runReplay } from '../helpers/replay-run.js'

test('a replay goes to each destination through the shaping in force', async (t) => {
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-shaping-replay-'))
  // Dead letters first: a service on a schema that calls ClientASN a string refuses all 12 lines.
  const writer = await startServer(t, { DATA_DIR: dataDir, SCHEMAS_DIR: await brokenSchemas(), PARSE_WORKERS: '0' })
  const lines = Array.from({ length: 12 }, (_, k) => fixable(k + 1))
  assert.equal((await post(writer, '/logpush/http_requests', lines.join('\n') + '\n')).json.rejected, 12)
  await writer.built.close()

  // The fixed schema, and a rule for the destination: ASNs from 13340 on, without the path.
  const configPath = join(dataDir, '..', `receiver-${process.pid}.json`)
  await writeFile(configPath, JSON.stringify({ shaping: [{ name: 'big-asn', datasets: ['http_requests'], filter: { where: { key: 'ClientASN', operator: 'geq', value: 13340 } }, drop: ['ClientRequestPath'] }] }))
  const run = await runReplay(t, dataDir, [], undefined, { CONFIG_FILE: configPath, SINKS: 'file' })
  assert.equal(run.code, 0, run.stderr)
  assert.equal(run.report.replayed, 12)
  const kept = lines.filter((_, k) => 13335 + k + 1 >= 13340).map((l) => l.replace(',"ClientRequestPath":"\\/caf\\u00e9"', ''))
  assert.equal(kept.length, 8)
  assert.equal(await readStore({ dataDir }, 'events', 'http_requests'), kept.join('\n') + '\n', 'filtered and shaped, the 19-digit time as sent')
})

test('a tenant\'s dead letters are replayed only as that tenant, to its own folder, never to another target', async (t) => {
  // The bug: a replay sent every dead letter with the service's own token, so lines a tenant's
  // token had sent (refused by an older schema) came back without their tenant and landed in the
  // destination's shared target (or whichever tenant their fields routed to).
  const dataDir = await mkdtemp(join(tmpdir(), 'lpr-tenant-replay-'))
  const acmeToken = 'acme-token-0123456789abcdef'
  const configPath = join(dataDir, '..', `receiver-tenant-${process.pid}.json`)
  await writeFile(configPath, JSON.stringify({ tenants: { acme: {} }, tokens: [{ tokenEnv: 'LPR_TEST_ACME_TOKEN', tenant: 'acme' }] }))
  const env = { CONFIG_FILE: configPath, SINKS: 'file', LPR_TEST_ACME_TOKEN: acmeToken }
  const writer = await startServer(t, { ...env, DATA_DIR: dataDir, SCHEMAS_DIR: await brokenSchemas(), PARSE_WORKERS: '0' })
  const lines = Array.from({ length: 4 }, (_, k) => fixable(k + 1))
  assert.equal((await post({ url: writer.url, token: acmeToken }, '/logpush/http_requests', lines.join('\n') + '\n')).json.rejected, 4)
  await writer.built.close()

  const plain = await runReplay(t, dataDir, [], undefined, env)
  assert.equal(plain.code, 0, plain.stderr)
  assert.equal(plain.report.replayed, 0, 'a replay with the service\'s own token leaves the tenant\'s lines')
  assert.equal(plain.report.otherTenant, 4)
  const asAcme = await runReplay(t, dataDir, ['--tenant', 'acme'], undefined, env)
  assert.equal(asAcme.code, 0, asAcme.stderr)
  assert.equal(asAcme.report.replayed, 4)
  assert.equal(await readStore({ dataDir }, 'events', 'acme/http_requests'), lines.join('\n') + '\n', 'back in the tenant\'s folder')
  assert.equal(await readStore({ dataDir }, 'events', 'http_requests').catch(() => ''), '', 'nothing in the shared folder')
  const unknown = await runReplay(t, dataDir, ['--tenant', 'bravo'], undefined, env)
  assert.equal(unknown.code, 1)
  assert.match(unknown.stderr, /no token in CONFIG_FILE tokens names this tenant/)
})
