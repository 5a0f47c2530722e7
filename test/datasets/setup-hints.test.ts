// The destination_conf hints printed at the first start tell, per dataset, which Cloudflare API
// path creates its job: zone datasets under /zones, account datasets under /accounts, and the
// datasets that exist in both scopes name both.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnService } from '../helpers/process.js'
import { loadSchemas } from '../helpers/dataset-lines.js'

test('the start-up hints name the Logpush jobs API path of every dataset\'s scope', async (t) => {
  const svc = await spawnService(t, { LOGPUSH_TOKENS: '', PUBLIC_URL: 'https://logs.example.com' })
  const schemas = loadSchemas()
  const deadline = Date.now() + 10_000
  while (!svc.output().includes('zero_trust_network_sessions (') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  const lines = svc.output().split('\n')
  const want: Record<string, string> = {
    http_requests: 'POST /zones/{zone_id}/logpush/jobs',
    gateway_dns: 'POST /accounts/{account_id}/logpush/jobs',
    firewall_events: 'POST /zones/{zone_id}/logpush/jobs or /accounts/{account_id}/logpush/jobs'
  }
  for (const [id, schema] of schemas) {
    const line = lines.find((l) => l.startsWith(`  ${id} (`))
    assert.ok(line, `${id}: no hint in\n${svc.output()}`)
    const path = want[id] ?? `POST ${schema['x-scope']!.map((s) => s === 'zone' ? '/zones/{zone_id}/logpush/jobs' : '/accounts/{account_id}/logpush/jobs').join(' or ')}`
    assert.ok(line.startsWith(`  ${id} (${path}): https://logs.example.com/logpush/${id}?header_Authorization=Bearer%20`), line)
  }
  svc.child.kill('SIGTERM')
  await svc.exited
})
