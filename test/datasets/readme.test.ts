// The dataset table (docs/datasets.md) is what users read to create their jobs: its scope (which API path) and
// event-time columns must say what schemas/ does, for every dataset.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/paths.js'
import { loadSchemas } from '../helpers/dataset-lines.js'

test('docs/datasets.md lists every dataset with the scope and event-time field of its schema', () => {
  const readme = readFileSync(join(packageRoot, 'docs', 'datasets.md'), 'utf8')
  const rows = new Map<string, { scope: string, eventTime: string }>()
  for (const line of readme.split('\n')) {
    const m = /^\| `([a-z0-9_]+)` \| ([a-z ]+) \| \d+ \| `([A-Za-z0-9]+)`/.exec(line)
    if (m) rows.set(m[1]!, { scope: m[2]!, eventTime: m[3]! })
  }
  const schemas = loadSchemas()
  assert.deepEqual([...rows.keys()].sort(), [...schemas.keys()])
  for (const [id, schema] of schemas) {
    assert.deepEqual(rows.get(id), { scope: schema['x-scope']!.join(' and '), eventTime: schema['x-event-time'] }, id)
  }
})
