// docs/shaping.md promises copy-paste examples: each YAML block of the page is read as a
// CONFIG_FILE and its rules checked against the schemas exactly as a start would, so an example
// that names a field a dataset lacks, or no longer matches the file's shape, fails here.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../../src/config/index.js'
import { loadDatasets } from '../../src/pipeline/index.js'
import { packageRoot, schemasDir } from '../../src/paths.js'
import { buildRouters, buildShapers } from '../../src/shaping/index.js'

test('every YAML example of docs/shaping.md loads and passes the start-time checks', async () => {
  const page = await readFile(join(packageRoot, 'docs', 'shaping.md'), 'utf8')
  const blocks = [...page.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]!)
  assert.equal(blocks.length, 4, 'the three common cases and the tenant tokens')
  const dir = await mkdtemp(join(tmpdir(), 'lpr-shaping-docs-'))
  const keyFile = join(dir, 'pseudonym-key')
  await writeFile(keyFile, 'k'.repeat(32))
  const datasets = loadDatasets(schemasDir)
  for (const [i, block] of blocks.entries()) {
    const path = join(dir, `example-${i}.yaml`)
    await writeFile(path, block.replace('/run/secrets/pseudonym-key', keyFile))
    const env = { LOGPUSH_TOKENS: 'test-token-0123456789abcdef', CONFIG_FILE: path, SPLUNK_HEC_TOKEN: 'x', LPR_PSEUDONYM_KEY: 'p'.repeat(32), ACME_LOGPUSH_TOKEN: 'a'.repeat(32), BRAVO_LOGPUSH_TOKEN: 'b'.repeat(32) }
    const config = loadConfig(env)
    const sinks = config.sinks.split(',')
    const shapers = buildShapers(config.shaping, sinks, datasets, env)
    const routers = buildRouters(config.routing, config.tenants, sinks, datasets)
    assert.ok(shapers.size + routers.size + config.tenantTokens.length > 0, `example ${i + 1} configures something`)
  }
})
