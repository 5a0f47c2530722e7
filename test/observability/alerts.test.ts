// The alert rules and the Grafana dashboard shipped in src/observability/ are only worth shipping
// if Prometheus accepts them and they name metrics the service exports. promtool (Debian's
// prometheus package) checks the rules and runs their unit tests; the dashboard's queries are
// checked by the same parser, wrapped as recording rules. With CI=true a missing promtool fails.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { packageRoot } from '../../src/paths.js'
import { exportedNames } from '../helpers/metric-names.js'

const run = promisify(execFile)
const PROMTOOL = process.env.PROMTOOL_PATH ?? ['/usr/bin/promtool', '/usr/local/bin/promtool'].find((p) => existsSync(p))
const skip = !PROMTOOL && process.env.CI !== 'true' ? 'no promtool (apt-get install prometheus); CI=true makes this a failure' : false
const alerts = join(packageRoot, 'src', 'observability', 'alerts')
const dashboardPath = join(packageRoot, 'src', 'observability', 'dashboards', 'logpush-receiver.grafana.json')

/** Metric names a PromQL expression reads: identifiers of our three families, not label names or functions. */
function metricNames(expr: string): string[] {
  const withoutLabels = expr.replace(/\{[^}]*\}/g, '{}').replace(/by \([^)]*\)/g, '')
  return [...withoutLabels.matchAll(/\b((?:lpr|process|nodejs)_[a-z0-9_]+)\b/g)].map((m) => m[1]!)
}

test('promtool accepts the alert rules and their unit tests pass', { skip }, async () => {
  assert.ok(PROMTOOL, 'CI=true: promtool must be installed (apt-get install -y prometheus); .ci/run installs it')
  const check = await run(PROMTOOL, ['check', 'rules', 'logpush-receiver.rules.yml'], { cwd: alerts })
  assert.match(check.stdout, /SUCCESS: \d+ rules found/)
  const unit = await run(PROMTOOL, ['test', 'rules', 'logpush-receiver.rules.test.yml'], { cwd: alerts })
  assert.match(unit.stdout, /SUCCESS/)
})

test('the alert rules use only metrics the service exports', async () => {
  const rules = readFileSync(join(alerts, 'logpush-receiver.rules.yml'), 'utf8')
  const exprs = [...rules.matchAll(/^\s+expr: (?:\|\n((?:\s{10,}.*\n)+)|(.*))$/gm)].map((m) => m[1] ?? m[2]!)
  assert.ok(exprs.length >= 6, `${exprs.length} rules read`)
  const exported = await exportedNames()
  for (const expr of exprs) for (const name of metricNames(expr)) assert.ok(exported.has(name), `rule reads ${name}, which /metrics does not export`)
})

test('the Grafana dashboard parses, reads only exported metrics, and its queries are valid PromQL', { skip }, async () => {
  const dashboard = JSON.parse(readFileSync(dashboardPath, 'utf8')) as {
    uid: string
    panels: Array<{ id: number, type: string, targets?: Array<{ expr: string }> }>
    templating: { list: Array<{ definition?: string }> }
  }
  assert.equal(dashboard.uid, 'logpush-receiver')
  const ids = dashboard.panels.map((p) => p.id)
  assert.equal(new Set(ids).size, ids.length, 'panel ids are unique')
  const exprs = dashboard.panels.flatMap((p) => p.targets ?? []).map((t) => t.expr)
  assert.ok(exprs.length >= 15, `${exprs.length} queries`)
  const exported = await exportedNames()
  const used = new Set([...exprs, ...dashboard.templating.list.map((v) => v.definition ?? '')].flatMap(metricNames))
  for (const name of used) assert.ok(exported.has(name), `dashboard reads ${name}, which /metrics does not export`)
  for (const must of ['lpr_lines_accepted_total', 'lpr_lines_rejected_total', 'lpr_sink_up', 'lpr_sink_oldest_pending_age_seconds', 'lpr_spool_bytes']) {
    assert.ok(used.has(must), `dashboard shows ${must}`)
  }

  // Grafana's variables replaced by what they stand for, each query becomes a recording rule.
  assert.ok(PROMTOOL, 'CI=true: promtool must be installed')
  const dir = await mkdtemp(join(tmpdir(), 'lpr-dashboard-'))
  const file = join(dir, 'dashboard-queries.yml')
  const rules = exprs.map((e, i) => `      - record: dashboard:query${i}\n        expr: ${JSON.stringify(e.replaceAll('$__rate_interval', '5m').replaceAll('$instance', '.*'))}`)
  await writeFile(file, `groups:\n  - name: dashboard\n    rules:\n${rules.join('\n')}\n`)
  const check = await run(PROMTOOL, ['check', 'rules', file])
  assert.match(check.stdout, new RegExp(`SUCCESS: ${exprs.length} rules found`))
})
