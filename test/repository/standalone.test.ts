// The repository stands alone: a clone with nothing beside it must build and pass. A fresh clone
// once failed 3 tests and could not run `npm run schemas`, because the field reference was read
// from ../shared/research/datasets.json, a folder beside the checkout. This test reads every file
// under src/, test/ and .ci/ (and package.json's scripts) and fails on any relative path that
// climbs out of the repository from where it is resolved.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, posix } from 'node:path'
import { tmpdir } from 'node:os'
import { packageRoot } from '../../src/paths.js'

/**
 * Where a relative path in `file` (relative to the repository root, '/'-separated) is resolved:
 * import specifiers and `new URL(…, import.meta.url)` from the compiled file's folder (TypeScript
 * runs from dist/, one level deeper than its source); a Markdown link, or a comment in
 * TypeScript, from the file's own folder;
 * every other relative path from the working directory, which is the repository root for npm
 * scripts, the test runner and .ci/run.
 */
function base(file: string, line: string, next: string): string {
  const dir = posix.dirname(file)
  if (file.endsWith('.md')) return dir
  // A comment naming a file beside this one (`../failure-policy.ts`) means it from the source's folder.
  if (/\.[cm]?ts$/.test(file) && /^\s*(\/\/|\/?\*)/.test(line)) return dir
  const fileRelative = /^\s*(import|export)\b.*\bfrom\s|\bfrom\s+['"]|^\s*import\s*['"]|\bimport\s*\(|import\.meta\.url/.test(line) || /^\s*import\.meta\.url/.test(next)
  if (!fileRelative) return '.'
  return /\.[cm]?ts$/.test(file) ? posix.join('dist', dir) : dir
}

/** Every relative path in `text` that leaves the repository, as `file:line: path`. */
export function pathsLeavingRepository(file: string, text: string): string[] {
  const found: string[] = []
  const lines = text.split('\n')
  // A path that starts with one or more '../' (not '.../', not the middle of '/a/../b' or of a
  // word); in shell and scripts also a bare '..' (`cd ..`). In TypeScript a bare '..' is a path
  // segment joined to a folder (join(dir, '..')), not a path of its own.
  const ts = /\.[cm]?ts$/.test(file)
  const climb = ts ? /(?<![\w./-])((?:\.\.\/)+)([^\s'"`)]*)/g : /(?<![\w./-])((?:\.\.\/)+|\.\.(?=['"`\s);]|$))([^\s'"`)]*)/g
  lines.forEach((line, i) => {
    // Hostile input in a test (a routing value of '../etc') is a value, not a path the repository
    // reads; such a line says so with this marker. Only tests may: the service never needs it.
    if (file.startsWith('test/') && line.includes('not-a-path:')) return
    for (const m of line.matchAll(climb)) {
      const path = m[1]! + m[2]!
      const from = base(file, line, lines[i + 1] ?? '')
      const resolved = posix.normalize(posix.join(from, path))
      if (resolved === '..' || resolved.startsWith('../')) found.push(`${file}:${i + 1}: ${path} (from ${from === '.' ? 'the repository root' : from + '/'})`)
    }
  })
  return found
}

function filesUnder(dir: string): string[] {
  const out: string[] = []
  for (const entry of readdirSync(join(packageRoot, dir), { withFileTypes: true })) {
    const rel = posix.join(dir, entry.name)
    if (entry.isDirectory()) out.push(...filesUnder(rel))
    else if (entry.isFile()) out.push(rel)
  }
  return out
}

test('no file under src/, test/ or .ci/, and no npm script, names a path outside the repository', () => {
  const found: string[] = []
  for (const file of ['src', 'test', '.ci'].flatMap(filesUnder)) {
    if (file === 'test/repository/standalone.test.ts') continue // its examples below are such paths on purpose
    const bytes = readFileSync(join(packageRoot, file))
    if (bytes.includes(0)) continue // binary (a screenshot, a gzip fixture): no paths to read
    found.push(...pathsLeavingRepository(file, bytes.toString('utf8')))
  }
  // Absolute paths beside the checkout (its parent folder, e.g. /work/ for /work/logpush-receiver).
  const parent = dirname(packageRoot.replace(/\/+$/, ''))
  if (parent !== '/' && parent !== tmpdir()) {
    for (const file of ['src', 'test', '.ci'].flatMap(filesUnder)) {
      if (file === 'test/repository/standalone.test.ts') continue
      const text = readFileSync(join(packageRoot, file), 'latin1')
      const at = text.indexOf(`${parent}/`)
      if (at >= 0) found.push(`${file}: ${text.slice(at, at + 60).split(/\s/)[0]} (an absolute path beside the repository)`)
    }
  }
  const scripts = (JSON.parse(readFileSync(join(packageRoot, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts
  for (const [name, script] of Object.entries(scripts)) found.push(...pathsLeavingRepository(`package.json#scripts.${name}`, script))
  assert.deepEqual(found, [], `paths that leave the repository:\n  ${found.join('\n  ')}`)
})

test('the check catches what once broke a clone, and lets the repository\'s own climbs through', () => {
  // The line that made a fresh clone fail: four levels up from dist/src/datasets/ is beside the checkout.
  const old = "export const defaultReferencePath = fileURLToPath(new URL('../../../../shared/research/datasets.json', import.meta.url))"
  assert.deepEqual(pathsLeavingRepository('src/datasets/reference.ts', old), [
    'src/datasets/reference.ts:1: ../../../../shared/research/datasets.json (from dist/src/datasets/)'
  ])
  // Split over lines, as a formatter would: caught either way.
  assert.equal(pathsLeavingRepository('src/datasets/reference.ts', "new URL(\n  '../../../../shared/x.json',\n  import.meta.url)").length, 1)
  assert.equal(pathsLeavingRepository('src/datasets/reference.ts', "new URL('../../../../shared/x.json',\n  import.meta.url)").length, 1)
  // Read from the working directory (the repository root): any climb leaves it.
  assert.equal(pathsLeavingRepository('src/a.ts', "readFileSync('../shared/research/datasets.json')").length, 1)
  assert.equal(pathsLeavingRepository('test/a/b.test.ts', "spawn('node', ['../../other-repo/x.js'])").length, 1)
  assert.equal(pathsLeavingRepository('.ci/run', 'cp ../shared/research/datasets.json schemas/').length, 1)
  assert.equal(pathsLeavingRepository('.ci/run', 'cd ..').length, 1)
  assert.equal(pathsLeavingRepository('src/a.ts', "readFileSync('../x') // not-a-path: claimed").length, 1, 'the marker exempts test lines only')
  assert.equal(pathsLeavingRepository('test/a.test.ts', "value('../etc') // not-a-path: hostile value").length, 0)
  assert.equal(pathsLeavingRepository('package.json#scripts.schemas', 'node dist/src/datasets/generate.js --reference ../shared/x.json').length, 1)
  // An import that climbs one level too many from its compiled place.
  assert.equal(pathsLeavingRepository('test/a/b.test.ts', "import { x } from '../../../../lib/x.js'").length, 1)
  // Climbs that stay inside: imports, and URLs from dist/src/ to the package root.
  assert.deepEqual(pathsLeavingRepository('test/a/b.test.ts', "import { x } from '../../src/x.js'"), [])
  assert.deepEqual(pathsLeavingRepository('src/paths.ts', "export const schemasDir = fileURLToPath(new URL('../../schemas/', import.meta.url))"), [])
  assert.deepEqual(pathsLeavingRepository('.ci/run', 'cd "$(dirname "$0")/.."'), [])
  // A comment names files from its own folder; one that climbs out of the repository from there still fails.
  assert.deepEqual(pathsLeavingRepository('src/sources/bucket/classify.ts', '// failure policy (../failure-policy.ts) applied'), [])
  assert.equal(pathsLeavingRepository('src/a/b.ts', ' * read from ../../../shared/research/datasets.json').length, 1)
  // Markdown links are read from the page's folder.
  assert.deepEqual(pathsLeavingRepository('test/fixtures/x/SOURCES.md', 'see ../y/NOTICE.md'), [])
  assert.equal(pathsLeavingRepository('test/fixtures/x/SOURCES.md', 'see ../../../../shared/NOTICE.md').length, 1)
  // An import split over lines.
  assert.deepEqual(pathsLeavingRepository('src/intake/decode.ts', "import {\n  A\n} from '../errors.js'"), [])
  // Not paths that climb: '...', a URL's own '/a/../b', a word ending in '..', a segment joined to a folder.
  assert.deepEqual(pathsLeavingRepository('test/x.ts', "const u = 'https://h/a/../b.gz'; const e = '.../validate'; wait.."), [])
  assert.deepEqual(pathsLeavingRepository('src/spool/spool.ts', "await fsyncDir(fs, join(path, '..'))"), [])
})
