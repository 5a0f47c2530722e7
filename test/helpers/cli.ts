// The CLI in-process, as its tests run it: exit code, what it printed, and that output parsed when it is JSON.
import { run } from '../../src/cli/run.js'

export async function cli(env: Record<string, string>, ...argv: string[]): Promise<{ code: number, out: string, err: string, json: any }> {
  let out = ''
  let err = ''
  const code = await run(argv, { env, stdout: (s) => { out += s }, stderr: (s) => { err += s } })
  let json: unknown
  try { json = JSON.parse(out) } catch { json = undefined }
  return { code, out, err, json }
}
