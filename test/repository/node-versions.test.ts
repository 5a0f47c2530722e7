// package.json claimed Node 20, 22 and 24 while only 20 was ever run. .ci/run runs every major
// `engines` names (the newest with the whole suite, the others with a smoke set): this holds the
// two lists to each other, so a major cannot be claimed without being run, or run without a claim.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { packageRoot } from '../../src/paths.js'

function ciMajors(): { full: number, smoke: number[] } {
  const text = readFileSync(join(packageRoot, '.ci', 'run'), 'utf8')
  const full = /^FULL_MAJOR=(\d+)\b/m.exec(text)
  const smoke = /^SMOKE_MAJORS="([\d ]+)"/m.exec(text)
  assert.ok(full && smoke, '.ci/run sets FULL_MAJOR and SMOKE_MAJORS')
  return { full: Number(full[1]), smoke: smoke[1]!.trim().split(/\s+/).map(Number) }
}

function engineMajors(): number[] {
  const range = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node
  return range.split('||').map((part) => Number(/\^?(\d+)\./.exec(part.trim())?.[1])).sort((a, b) => a - b)
}

test('.ci/run runs every Node major package.json claims, the newest with the whole suite', () => {
  const engines = engineMajors()
  const { full, smoke } = ciMajors()
  assert.deepEqual([full, ...smoke].sort((a, b) => a - b), engines)
  assert.equal(full, Math.max(...engines))
})

test('the running Node is one package.json claims', () => {
  const major = Number(process.versions.node.split('.')[0])
  assert.ok(engineMajors().includes(major), `Node ${process.versions.node} is not in engines`)
})
