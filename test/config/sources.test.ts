// Bucket sources in CONFIG_FILE: defaults applied, mistakes refused at start with the reason.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describeConfig, loadConfig } from '../../src/config/index.js'

async function file(text: string): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'lpr-cfg-')), 'receiver.yaml')
  await writeFile(path, text)
  return path
}

const R2 = `sources:
  - name: r2-http
    bucket: cf-logs
    prefix: http_requests/{DATE}/
    dataset: http_requests
    endpoint: https://0123456789abcdef.r2.cloudflarestorage.com
    region: auto
    accessKeyIdEnv: R2_ACCESS_KEY_ID
    secretAccessKeyEnv: R2_SECRET_ACCESS_KEY
  - name: s3-firewall
    bucket: acme-logpush
    prefix: firewall/{DATE}/
    dataset: firewall_events
    region: eu-west-1
    pollSeconds: 30
`

test('sources from CONFIG_FILE, with defaults; key variables named, never read into the config', async () => {
  const config = loadConfig({ CONFIG_FILE: await file(R2), R2_SECRET_ACCESS_KEY: 'very-secret' })
  assert.equal(config.sources.length, 2)
  const [r2, s3] = config.sources
  assert.equal(r2!.region, 'auto')
  assert.equal(r2!.forcePathStyle, false)
  assert.equal(r2!.pollSeconds, 60)
  assert.equal(r2!.closeAfterHours, 24)
  assert.equal(s3!.pollSeconds, 30)
  assert.equal(s3!.accessKeyIdEnv, undefined, 'no keys named: the standard AWS chain')
  assert.ok(!JSON.stringify(describeConfig(config)).includes('very-secret'))
})

test('source mistakes stop the start with LPR_ERR_CONFIG_INVALID', async () => {
  const bad: Array<[string, RegExp]> = [
    [R2.replace('http_requests/{DATE}/', 'http_requests/'), /prefix/],
    [R2.replace('name: s3-firewall', 'name: r2-http'), /used twice/],
    [R2.replace('    secretAccessKeyEnv: R2_SECRET_ACCESS_KEY\n', ''), /go together/],
    [R2.replace('pollSeconds: 30', 'pollSecs: 30'), /pollSecs/]
  ]
  for (const [text, why] of bad) {
    const path = await file(text)
    assert.throws(() => loadConfig({ CONFIG_FILE: path }), (err: Error & { code?: string }) => err.code === 'LPR_ERR_CONFIG_INVALID' && why.test(err.message), String(why))
  }
  const path = await file(R2)
  assert.throws(() => loadConfig({ CONFIG_FILE: path, DEDUPE_WINDOW_SECONDS: '0' }), /DEDUPE_WINDOW_SECONDS/)
})
