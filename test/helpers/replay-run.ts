// Running `npm run replay` as a child process, and the broken schema that makes dead letters
// (a copy of schemas/ in which ClientASN is a string: real values are integers), for the replay tests.
import type { TestContext } from 'node:test'
import { spawn } from 'node:child_process'
import { cp, mkdtemp, readFile, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { schemasDir } from '../../src/paths.js'

export const REPLAY = fileURLToPath(new URL('../../src/replay/main.js', import.meta.url))
export const NANO = '1652295571783000123'
/** Refused by the broken schema (ClientASN: string), valid under the real one; keeps a unixnano. */
export const fixable = (i: number): string => `{"RayID":"n${i}","ClientASN":${13335 + i},"EdgeStartTimestamp":${NANO},"ClientRequestPath":"\\/caf\\u00e9"}`

export async function brokenSchemas(): Promise<string> {
  const dir = join(await mkdtemp(join(tmpdir(), 'lpr-schemas-')), 'schemas')
  await cp(schemasDir, dir, { recursive: true })
  const path = join(dir, 'http_requests.json')
  const schema = JSON.parse(await readFile(path, 'utf8'))
  schema.properties.ClientASN.type = 'string'
  await writeFile(path, JSON.stringify(schema))
  return dir
}

export interface Run { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string, report: any }

/** Replays http_requests of `dataDir` (more settings in `env`); `onSpawn` gets a way to kill it. */
export function runReplay(t: TestContext, dataDir: string, args: string[], onSpawn?: (kill: () => void) => void, env: Record<string, string> = {}): Promise<Run> {
  const child = spawn(process.execPath, [REPLAY, '--dataset', 'http_requests', ...args], {
    env: { PATH: process.env.PATH, LOGPUSH_TOKENS: 'test-token-0123456789abcdef', LOG_LEVEL: 'warn', DATA_DIR: dataDir, ...env },
    stdio: ['ignore', 'pipe', 'pipe']
  })
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  onSpawn?.(() => child.kill('SIGKILL'))
  return new Promise((resolve) => child.once('exit', (code, signal) => {
    let report: any = null
    try { report = JSON.parse(stdout.trim().split('\n').pop() ?? '') } catch {}
    resolve({ code, signal, stdout, stderr, report })
  }))
}
