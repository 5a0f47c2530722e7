// The user's manual (README and docs/) must list every environment variable the service reads, with
// its default (docs/configuration.md), and every error code it can answer with (docs/errors.md).
// These tests fail when code and documentation part.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { settings } from '../../src/config/index.js'
import { allCodes } from '../../src/errors.js'
import { packageRoot } from '../../src/paths.js'

const configuration = readFileSync(join(packageRoot, 'docs', 'configuration.md'), 'utf8')
const errors = readFileSync(join(packageRoot, 'docs', 'errors.md'), 'utf8')

function tableRows(): Map<string, string> {
  const rows = new Map<string, string>()
  for (const line of configuration.split('\n')) {
    const m = /^\| `([A-Z0-9_]+)` \| ([^|]*) \|/.exec(line)
    if (m) rows.set(m[1]!, m[2]!.trim())
  }
  return rows
}

test('docs/configuration.md lists every environment variable with its default', () => {
  const rows = tableRows()
  for (const s of Object.values(settings)) {
    assert.ok(rows.has(s.env), `docs/configuration.md has no row for ${s.env}`)
    const shown = rows.get(s.env)!
    const expected = s.default === undefined || s.default === '' ? '(none)' : `\`${String(s.default)}\``
    assert.equal(shown, expected, `${s.env} default in docs/configuration.md`)
  }
})

test('docs/errors.md error table lists exactly the codes the service emits', () => {
  const documented = new Set([...errors.matchAll(/^\| `(LPR_ERR_[A-Z_]+)` \|/gm)].map((m) => m[1]!))
  assert.deepEqual([...documented].sort(), [...allCodes].sort())
})

test('docs/configuration.md settings table lists each variable once, and only variables the service reads', () => {
  // The table once listed CONFIG_FILE three times; a Map keyed by name hid that.
  const start = configuration.indexOf('\n## Configuration\n')
  assert.ok(start >= 0, 'docs/configuration.md has the Configuration section')
  const next = configuration.indexOf('\n## ', start + 1)
  const section = configuration.slice(start, next < 0 ? undefined : next)
  const names = [...section.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]!)
  const duplicates = names.filter((n, i) => names.indexOf(n) !== i)
  assert.deepEqual(duplicates, [], 'each variable once')
  assert.deepEqual([...names].sort(), Object.values(settings).map((s) => s.env).sort(), 'the table and the settings the service reads are the same set')
})
