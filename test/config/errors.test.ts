// README promises that a bad setting stops the start with LPR_ERR_CONFIG_INVALID and a message
// naming it. The service used to print only the message, without the code. These tests try an
// invalid value for every setting that can have one, every check across settings and every
// CONFIG_FILE failure, and require the printed line to carry the code and the variable's name;
// a few run the real process to see the line on stderr.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { loadConfig, settings, startupErrorLine, type SettingDef } from '../../src/config/index.js'

const MAIN = fileURLToPath(new URL('../../src/main.js', import.meta.url))
const CODE = 'LPR_ERR_CONFIG_INVALID'

/** The line a start with this environment prints, or null when the configuration loads. */
function printed(env: Record<string, string>): string | null {
  try {
    loadConfig(env)
    return null
  } catch (err) {
    return startupErrorLine(err)
  }
}

/** Values a setting's definition refuses: wrong type, below its minimum, outside its enum or pattern. */
function invalidValues(s: SettingDef): string[] {
  const out: string[] = []
  if (s.type === 'integer') out.push('twelve', '1.5')
  if (s.type === 'boolean') out.push('maybe')
  if (s.minimum !== undefined) out.push(String(s.minimum - 1))
  if (s.enum) out.push('not-a-level')
  if (s.pattern) out.push('Not Valid!')
  return out
}

test('every invalid setting prints LPR_ERR_CONFIG_INVALID and its name', () => {
  let tried = 0
  for (const s of Object.values(settings) as SettingDef[]) {
    for (const value of invalidValues(s)) {
      const line = printed({ [s.env]: value })
      assert.ok(line, `${s.env}=${value} is refused`)
      assert.ok(line.startsWith(`logpush-receiver: ${CODE}: `), `${s.env}=${value}: ${line}`)
      assert.ok(line.includes(s.env), `${s.env}=${value}: the message names the variable: ${line}`)
      tried++
    }
  }
  assert.ok(tried >= 50, `${tried} invalid values tried`)
})

test('checks across settings print the code', () => {
  const cases: Array<Record<string, string>> = [
    { SPOOL_LOW_WATERMARK_BYTES: '100', SPOOL_HIGH_WATERMARK_BYTES: '100' },
    { SINKS: 'splunk' },
    { TLS_CERT_FILE: '/tmp/cert.pem' }
  ]
  for (const env of cases) {
    const line = printed(env)
    assert.ok(line?.startsWith(`logpush-receiver: ${CODE}: `), `${JSON.stringify(env)}: ${line}`)
  }
})

test('every CONFIG_FILE error prints the code', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-config-errors-'))
  const files: Record<string, string> = {
    'bad.yaml': 'datasets: [unclosed',
    'bad.json': '{"datasets": ',
    'unknown-key.yaml': 'sinks: file\n',
    'bad-setting.yaml': 'settings:\n  PORT: eighty\n',
    'unknown-setting.yaml': 'settings:\n  NOT_A_SETTING: 1\n',
    'bad-sink.yaml': 'datasets:\n  http_requests:\n    sinks: [kafka]\n',
    'sink-not-in-sinks.yaml': 'datasets:\n  http_requests:\n    sinks: [elasticsearch]\n'
  }
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text)
  for (const name of [...Object.keys(files), 'missing.yaml']) {
    const line = printed({ CONFIG_FILE: join(dir, name) }) ?? ''
    assert.ok(line.startsWith(`logpush-receiver: ${CODE}: `), `${name}: ${line}`)
    assert.ok(line.includes('CONFIG_FILE') || line.includes('PORT'), `${name}: names its source: ${line}`)
  }
})

test('the process prints the code on stderr and exits 1, also for errors found while building', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'lpr-config-errors-'))
  const unknownDataset = join(dir, 'unknown-dataset.yaml')
  await writeFile(unknownDataset, 'datasets:\n  not_a_dataset: {}\n')
  const cases: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ CONFIG_FILE: join(dir, 'missing.yaml') }, 'CONFIG_FILE'],
    [{ CONFIG_FILE: unknownDataset }, 'not_a_dataset']
  ]
  for (const [env, names] of cases) {
    const r = spawnSync(process.execPath, [MAIN], {
      env: Object.assign({ PATH: process.env.PATH, LOGPUSH_TOKENS: 'test-token-0123456789abcdef', DATA_DIR: join(dir, 'data'), HOST: '127.0.0.1', LOG_LEVEL: 'silent', PORT: '0' }, env),
      encoding: 'utf8',
      timeout: 60_000
    })
    assert.equal(r.status, 1, JSON.stringify(env))
    assert.match(r.stderr, new RegExp(`^logpush-receiver: ${CODE}: .*${names}`, 'm'))
    assert.ok(!/\n\s+at /.test(r.stderr), 'no stack for a configuration error')
  }
})
