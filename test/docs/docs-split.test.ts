// README.md was one 1,733-line page (up to commit 2eeb39d) and was split into a short front door and
// topic pages under docs/. These tests keep the split honest: every section of the old README still
// exists as a heading of the same level somewhere, and every relative link in README.md and docs/
// leads to a file that exists and, when it names an anchor, to a heading that exists there.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { packageRoot } from '../../src/paths.js'

/** Every "##" and "###" heading of README.md at commit 2eeb39d, in order. */
const OLD_HEADINGS = [
  '## Two commands',
  '## Point Logpush at it',
  '## Managing Logpush jobs',
  '## Guarantees: what a 200 means',
  '## What an answer means',
  '## Where the events go',
  '## Elasticsearch',
  '### ECS fields',
  '### Differences from Elastic\'s integration',
  '## Splunk',
  '## Logpush to a bucket (S3, R2, S3-compatible)',
  '## Pull instead of push',
  '### Audit logs',
  '### Logpull (a zone\'s HTTP requests)',
  '## A configuration file for routing',
  '## Health',
  '## The status page',
  '## Watching the Logpush jobs',
  '## Running it in production',
  '## Performance',
  '## Datasets',
  '### Elastic\'s test lines',
  '## Replay dead letters',
  '## Configuration',
  '## Errors',
  '## Development',
]

const docsDir = join(packageRoot, 'docs')
const pages = ['README.md', ...readdirSync(docsDir).filter((f) => f.endsWith('.md')).sort().map((f) => `docs/${f}`)]
const text = new Map(pages.map((p) => [p, readFileSync(join(packageRoot, p), 'utf8')]))

/** The lines of a Markdown page outside fenced code blocks (a `#` line in a shell example is no heading). */
function proseLines(markdown: string): string[] {
  const lines: string[] = []
  let fenced = false
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) { fenced = !fenced; continue }
    if (!fenced) lines.push(line)
  }
  return lines
}

function headings(markdown: string): string[] {
  return proseLines(markdown).filter((l) => /^#{1,6} /.test(l)).map((l) => l.trimEnd())
}

/** The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>()
  const out = new Set<string>()
  for (const h of headings(markdown)) {
    const base = h.replace(/^#+ /, '').toLowerCase().replace(/[^\p{L}\p{N}\p{M} _-]/gu, '').replace(/ /g, '-')
    const n = seen.get(base) ?? 0
    seen.set(base, n + 1)
    out.add(n === 0 ? base : `${base}-${n}`)
  }
  return out
}

test('every section of the pre-split README is a heading of the same level in README.md or docs/', () => {
  const all = new Map<string, string[]>()
  for (const [page, md] of text) for (const h of headings(md)) all.set(h, [...(all.get(h) ?? []), page])
  const missing = OLD_HEADINGS.filter((h) => !all.has(h))
  assert.deepEqual(missing, [], 'old README sections found nowhere')
  const twice = OLD_HEADINGS.filter((h) => all.get(h)!.length > 1)
  assert.deepEqual(twice, [], 'old README sections on more than one page (one place per fact)')
})

test('every relative link in README.md and docs/ points at an existing file and heading', () => {
  const broken: string[] = []
  let checked = 0
  for (const [page, md] of text) {
    for (const line of proseLines(md)) {
      for (const m of line.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1]!
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue // https:, mailto: ...
        checked++
        const [path, anchor] = target.split('#') as [string, string | undefined]
        const file = path === '' ? join(packageRoot, page) : resolve(dirname(join(packageRoot, page)), path)
        if (!file.startsWith(packageRoot) || !existsSync(file)) { broken.push(`${page}: ${target} (no such file)`); continue }
        if (anchor === undefined) continue
        if (!statSync(file).isFile() || !file.endsWith('.md')) { broken.push(`${page}: ${target} (anchor into a file that is not Markdown)`); continue }
        const md2 = text.get(relative(packageRoot, file)) ?? readFileSync(file, 'utf8')
        if (!anchors(md2).has(anchor)) broken.push(`${page}: ${target} (no heading #${anchor})`)
      }
    }
  }
  assert.deepEqual(broken, [])
  assert.ok(checked >= 40, `relative links found (${checked})`)
})

test('README stays a front door: short, and links every docs/ page', () => {
  const readme = text.get('README.md')!
  // 200 lines, plus the Performance section's before/after tables (issue 26 asks for them there)
  // and the OpenSearch and Kafka compose overrides (issue 23).
  assert.ok(readme.split('\n').length <= 240, `README.md has ${readme.split('\n').length} lines`)
  for (const page of pages.filter((p) => p.startsWith('docs/'))) assert.ok(readme.includes(`](${page})`) || readme.includes(`](${page}#`), `README links ${page}`)
  for (const h of ['## Two commands']) assert.ok(headings(readme).includes(h), `README has ${h}`)
})
