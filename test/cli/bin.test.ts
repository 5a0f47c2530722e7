// The `logpush-receiver` executable as npm installs it: package.json "bin" names a built file with
// a shebang, the package's files include it (and the schemas it reads), and the process exits
// with the documented codes. (npx from a clone and `npm install -g` of the packed tarball were
// verified by hand: docs/jobs.md, "Managing Logpush jobs"; they take npm tens of seconds here.)
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { packageRoot } from '../../src/paths.js'

const exec = promisify(execFile)

async function bin(): Promise<string> {
  const pkg = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as { bin: Record<string, string> }
  return join(packageRoot, pkg.bin['logpush-receiver']!)
}

async function runBin(args: string[], env: Record<string, string> = {}): Promise<{ code: number, stdout: string, stderr: string }> {
  try {
    const r = await exec(process.execPath, [await bin(), ...args], { env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout: r.stdout, stderr: r.stderr }
  } catch (err) {
    const e = err as { code: number, stdout: string, stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

test('bin: the built entry has a shebang; --help exits 0, a usage error 2, an unreachable API 1', async () => {
  assert.match(await readFile(await bin(), 'utf8'), /^#!\/usr\/bin\/env node\n/)
  const help = await runBin(['jobs', 'create', '--help'])
  assert.equal(help.code, 0)
  assert.match(help.stdout, /^Usage: logpush-receiver jobs create --dataset D \(--zone Z \| --account A\) \[options\]/)
  assert.match(help.stdout, /Exit codes: 0 done, 1 refused by Cloudflare or failed/)
  const overview = await runBin([])
  assert.equal(overview.code, 2)
  assert.match(overview.stderr, /\n  jobs create +create a Logpush job/)
  const usage = await runBin(['jobs', 'list'])
  assert.equal(usage.code, 2)
  assert.equal(usage.stderr, 'logpush-receiver: give at least one --zone Z or --account A\nUsage: logpush-receiver jobs list (--zone Z | --account A)...\n')
  // Port 9 on loopback: nothing listens, the connection is refused at once.
  const down = await runBin(['jobs', 'list', '--zone', 'z'], { CLOUDFLARE_API_TOKEN: 't', CLOUDFLARE_API_URL: 'http://127.0.0.1:9/client/v4' })
  assert.equal(down.code, 1)
  assert.match(down.stderr, /^logpush-receiver: LPR_ERR_CLOUDFLARE_API: Cloudflare API: Connection error\./)
  const config = await runBin(['token', 'generate'], { PORT: 'not-a-number' })
  assert.equal(config.code, 2)
  assert.match(config.stderr, /^logpush-receiver: LPR_ERR_CONFIG_INVALID: /)
})

test('package: npm pack ships the built CLI and the schemas (dist/ is not in git, so "files" must name it)', async () => {
  const { stdout } = await exec('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: packageRoot })
  const files = new Set((JSON.parse(stdout) as Array<{ files: Array<{ path: string }> }>)[0]!.files.map((f) => f.path))
  const pkg = JSON.parse(await readFile(join(packageRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>, main: string }
  assert.ok(files.has(pkg.bin['logpush-receiver']!), 'the bin target is packed')
  assert.ok(files.has(pkg.main), 'the service entry is packed')
  assert.ok(files.has('schemas/http_requests.json') && files.has('schemas/audit_logs.json'))
  assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('src/')), 'no tests or TypeScript sources')
})
