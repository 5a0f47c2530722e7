#!/usr/bin/env node
// The `logpush-receiver` executable (package.json "bin"): the process around run.ts.
import { createInterface } from 'node:readline/promises'
import { run } from './run.js'

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr })
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim())
  } finally {
    rl.close()
  }
}

process.exitCode = await run(process.argv.slice(2), {
  env: process.env,
  stdout: (text) => { process.stdout.write(text) },
  stderr: (text) => { process.stderr.write(text) },
  ...(process.stdin.isTTY ? { confirm } : {})
})
