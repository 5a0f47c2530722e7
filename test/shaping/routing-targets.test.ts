// Tenants need a target per tenant in every destination their lines reach.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { buildRouters, routableSinks, tenantRoutes } from '../../src/shaping/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { schemasDir } from '../../src/paths.js'

const datasets = loadDatasets(schemasDir)

test('routing or tenant tokens with a Kafka destination stop the start: one topic would hold every tenant\'s lines', () => {
  // The bug: Kafka (added beside routing) has one topic per dataset and no tenant target, so a
  // provider's routed or token-named tenants' lines all met in the same topic, silently.
  const rule = { name: 'z', datasets: ['http_requests'], field: 'ZoneName', table: { 'a.example': 'acme' } }
  const invalid = (why: RegExp) => (e: Error & { code?: string }) => e.code === 'LPR_ERR_CONFIG_INVALID' && why.test(e.message)
  assert.throws(() => buildRouters([rule], { acme: {} }, ['file', 'kafka'], datasets), invalid(/applies to kafka, which has no tenant target/))
  assert.throws(() => buildRouters([{ ...rule, sinks: ['kafka'] }], { acme: {} }, ['file', 'kafka'], datasets), invalid(/applies to kafka/))
  assert.equal(buildRouters([{ ...rule, sinks: ['file'] }], { acme: {} }, ['file', 'kafka'], datasets).get('file')?.size, 1, 'routing named for the files only is fine')
  assert.throws(() => tenantRoutes({ acme: {} }, ['opensearch', 'kafka']), invalid(/SINKS has kafka, which has no tenant target/))
  assert.equal(tenantRoutes({ acme: {} }, ['elasticsearch', 'opensearch', 'splunk', 'file', 'discard']).get('acme')?.namespace, 'acme')
})

test('Kafka keeps tenants apart only when every topic it may write names {tenant}', () => {
  const rule = { name: 'z', datasets: ['http_requests'], field: 'ZoneName', table: { 'a.example': 'acme' } }
  const invalid = (e: Error & { code?: string }) => e.code === 'LPR_ERR_CONFIG_INVALID' && /kafka/.test(e.message)
  const withTenant = routableSinks(['cloudflare.{tenant}.{dataset}'])
  assert.equal(buildRouters([rule], { acme: {} }, ['kafka'], datasets, withTenant).get('kafka')?.size, 1, 'KAFKA_TOPIC naming {tenant}: routing to Kafka is fine')
  assert.equal(tenantRoutes({ acme: {} }, ['kafka'], withTenant).get('acme')?.namespace, 'acme')
  // One dataset's own topic without {tenant} would hold every tenant's lines of that dataset.
  const oneWithout = routableSinks(['cloudflare.{tenant}.{dataset}', 'fixed.http_requests'])
  assert.throws(() => buildRouters([rule], { acme: {} }, ['kafka'], datasets, oneWithout), invalid)
  assert.throws(() => tenantRoutes({ acme: {} }, ['kafka'], oneWithout), invalid)
  assert.equal(routableSinks([]).has('kafka'), false, 'no Kafka topics, no Kafka target')
})
