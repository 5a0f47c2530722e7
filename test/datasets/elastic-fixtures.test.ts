// Real-shaped lines, not only generated ones: every line of Elastic's published pipeline test
// inputs for its Cloudflare Logpush integration (test/fixtures/elastic-integrations/) must pass
// our schemas, except the lines listed here and in docs/datasets.md with the error in the fixture itself.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { checkLine } from '../../src/pipeline/line-checker.js'

const FIXTURES = join(packageRoot, 'test', 'fixtures', 'elastic-integrations')

/** Elastic's data stream names -> Cloudflare's dataset ids. */
export const STREAMS: Readonly<Record<string, string>> = {
  access_request: 'access_requests',
  audit: 'audit_logs',
  casb: 'casb_findings',
  device_posture: 'device_posture_results',
  dex_application_tests: 'dex_application_tests',
  dex_device_state_events: 'dex_device_state_events',
  dns: 'dns_logs',
  dns_firewall: 'dns_firewall_logs',
  email_security_alerts: 'email_security_alerts',
  firewall_event: 'firewall_events',
  gateway_dns: 'gateway_dns',
  gateway_http: 'gateway_http',
  gateway_network: 'gateway_network',
  http_request: 'http_requests',
  magic_ids: 'magic_ids_detections',
  nel_report: 'nel_reports',
  network_analytics: 'network_analytics_logs',
  network_session: 'zero_trust_network_sessions',
  page_shield_events: 'page_shield_events',
  sinkhole_http: 'sinkhole_http_logs',
  spectrum_event: 'spectrum_events',
  warp_config_changes: 'warp_config_changes',
  warp_toggle_changes: 'warp_toggle_changes',
  workers_trace: 'workers_trace_events'
}

/** `<stream>/<file>:<line>` -> the reason we give; docs/datasets.md explains each. */
const KNOWN_FIXTURE_ERRORS: Readonly<Record<string, string>> = {
  // Cloudflare documents IPv4Options as a string (a list of option numbers); the fixture's own
  // 2025 lines (4 and 5) send "" like Cloudflare does.
  'network_analytics/test-pipeline-network-analytics.log:1': '/IPv4Options must be string or null',
  'network_analytics/test-pipeline-network-analytics.log:2': '/IPv4Options must be string or null',
  'network_analytics/test-pipeline-network-analytics.log:3': '/IPv4Options must be string or null',
  // Cloudflare documents nel_reports' ClientIPASN as an int; the fixture quotes it ("13335").
  'nel_report/test-pipeline-nel-report.log:1': '/ClientIPASN must be integer or null',
  'nel_report/test-pipeline-nel-report.log:2': '/ClientIPASN must be integer or null',
  'nel_report/test-pipeline-nel-report.log:3': '/ClientIPASN must be integer or null',
  // An older test input: BotScore quoted ("20") and BotTags a bare string ("bing"); Cloudflare
  // sends an int and an array of strings (as the newer test-pipeline-http-request.log does).
  'http_request/test-pipeline-http_request.log:1': '/BotScore must be integer or null',
  'http_request/test-pipeline-http_request.log:2': '/BotScore must be integer or null'
}

test('every line of Elastic\'s pipeline test inputs passes our schemas, or is a known error of the fixture', () => {
  const datasets = loadDatasets(schemasDir)
  const seen: string[] = []
  const unexpected: string[] = []
  let lines = 0
  // data_stream/ keeps the integration's own layout (expected outputs, fields files) for the ECS tests.
  for (const stream of readdirSync(FIXTURES, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name !== 'data_stream').map((e) => e.name).sort()) {
    const id = STREAMS[stream]
    assert.ok(id, `no dataset for Elastic's stream ${stream}`)
    const dataset = datasets.get(id)
    assert.ok(dataset, `no schema for ${id}`)
    for (const file of readdirSync(join(FIXTURES, stream)).filter((f) => f.endsWith('.log')).sort()) {
      readFileSync(join(FIXTURES, stream, file), 'utf8').split('\n').forEach((line, i) => {
        if (line.trim() === '') return
        lines++
        const where = `${stream}/${file}:${i + 1}`
        const verdict = checkLine(dataset, line)
        const known = KNOWN_FIXTURE_ERRORS[where]
        if (verdict.ok && known) unexpected.push(`${where}: accepted, but listed as a known fixture error`)
        else if (!verdict.ok && verdict.reason !== known) unexpected.push(`${where}: ${verdict.reason}`)
        if (known) seen.push(where)
      })
    }
  }
  assert.deepEqual(unexpected, [], `lines of Elastic's fixtures we reject (or no longer reject):\n  ${unexpected.join('\n  ')}`)
  assert.deepEqual(seen.sort(), Object.keys(KNOWN_FIXTURE_ERRORS).sort(), 'every known fixture error is a line of the fixtures')
  assert.ok(lines > 0)
  const readme = readFileSync(join(packageRoot, 'docs', 'datasets.md'), 'utf8')
  for (const where of Object.keys(KNOWN_FIXTURE_ERRORS)) assert.ok(readme.includes(`\`${where}\``), `docs/datasets.md explains ${where}`)
})
