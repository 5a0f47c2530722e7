// npm run replay -- --dataset <id> [--tenant <name>] [--since <time>] [--unrecognised] [--batch-bytes <n>] [--url <service url>]
//
// --tenant replays the dead letters of batches a tenant's token sent (CONFIG_FILE tokens), with
// that token, so they reach that tenant's targets again; without it only dead letters no tenant's
// token sent are replayed (with the service's own token). One tenant's lines are never sent with
// another token.
//
// --unrecognised replays, instead of the dataset's own dead letters, the HEC batches kept under
// dead-letter/_unknown/ that the schemas now tell as this dataset (after its schema was added).
// Configured like the service (the same environment and CONFIG_FILE, above all DATA_DIR). When
// the service runs (DATA_DIR/service.lock names a live process and its URL) the valid dead
// letters go to it; otherwise the service's code runs in this process on a loopback port for the
// time of the replay, and its destinations get what they take within a few seconds (the rest
// stays spooled for the service's next start). The report is one JSON line on stdout; logs go to
// stderr. Exit code 0: done; 1: nothing or part done (the reason on stderr; run it again).
import { mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { pino } from 'pino'
import { buildApp, type BuiltApp } from '../app.js'
import { loadConfig } from '../config/index.js'
import { DirLock, DirectoryInUse, readLock, serviceLockPath } from '../data-dir-lock.js'
import { ensureTokens, recogniseDataset } from '../intake/index.js'
import { createLogger } from '../observability/index.js'
import { loadDatasets } from '../pipeline/index.js'
import { schemasDir } from '../paths.js'
import { ReplayRefused, httpSend, replay } from './replay.js'

const DEFAULT_BATCH_BYTES = 4 * 1024 * 1024
// In-process mode: how long the destinations may take the replayed lines before it exits, ms.
const DELIVERY_GRACE_MS = 5000

/** The URL of the service running on this DATA_DIR, or null when none runs. */
async function serviceUrl(dataDir: string): Promise<string | null> {
  // A service that has just started announces its URL once it listens: wait for it a little.
  for (let i = 0; ; i++) {
    const owner = await readLock(serviceLockPath(dataDir))
    if (!owner) return null
    if (owner.url) return owner.url
    if (i === 100) fail(`process ${owner.pid ?? '?'} holds ${serviceLockPath(dataDir)} but announces no URL; pass --url`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

function fail(message: string): never {
  process.stderr.write(`replay: ${message}\n`)
  process.exit(1)
}

async function main(): Promise<void> {
  let args
  try {
    args = parseArgs({
      options: {
        dataset: { type: 'string' },
        since: { type: 'string' },
        'batch-bytes': { type: 'string' },
        url: { type: 'string' },
        tenant: { type: 'string' },
        unrecognised: { type: 'boolean' }
      },
      strict: true
    }).values
  } catch (err) {
    fail((err as Error).message)
  }
  if (!args.dataset) fail('--dataset <id> is required (the dead letters of DATA_DIR/dead-letter/<id>/ are replayed)')
  const since = args.since !== undefined ? new Date(args.since) : undefined
  if (since && Number.isNaN(since.getTime())) fail(`--since ${args.since}: not a date or time (e.g. 2026-11-28T12:00:00Z)`)
  const wanted = args['batch-bytes'] !== undefined ? Number(args['batch-bytes']) : DEFAULT_BATCH_BYTES
  if (!Number.isInteger(wanted) || wanted < 1024) fail('--batch-bytes must be an integer of at least 1024')

  const config = loadConfig()
  // A batch the intake would refuse as too large would stay pending for ever.
  const batchBytes = Math.min(wanted, config.maxBodyBytes, config.maxInflatedBytes)
  const dataDir = resolve(config.dataDir)
  const schemas = config.schemasDir !== '' ? resolve(config.schemasDir) : schemasDir
  const datasets = loadDatasets(schemas)
  const dataset = datasets.get(args.dataset)
  if (!dataset) fail(`no schema for dataset "${args.dataset}" in ${schemas}`)

  // One replay of a dataset at a time: two would both send the same lines.
  await mkdir(join(dataDir, 'replay'), { recursive: true })
  const replayLock = await DirLock.acquire(join(dataDir, 'replay', `${dataset.name}.lock`)).catch((err: unknown) => {
    if (err instanceof DirectoryInUse) fail(`another replay of ${dataset.name} is running (${err.message})`)
    throw err
  })

  let token: string
  if (args.tenant !== undefined) {
    const named = config.tenantTokens.find((t) => t.tenant === args.tenant)
    if (!named) fail(`--tenant ${args.tenant}: no token in CONFIG_FILE tokens names this tenant`)
    token = named.token
  } else {
    token = (await ensureTokens(config.tokens, dataDir)).tokens[0]!
  }
  let url = args.url ?? await serviceUrl(dataDir)
  let built: BuiltApp | null = null
  if (url === null) {
    // No service runs on this DATA_DIR: run its code here, with its lock.
    const log = createLogger(config.logLevel, pino.destination(2))
    // Intake only, on a loopback port of its own: nothing but this replay talks to it.
    built = await buildApp({ ...config, port: 0, host: '127.0.0.1', adminOnIntake: true }, log)
    url = built.url
  }
  process.stderr.write(`replay: ${built ? 'no service runs on this DATA_DIR: running its code in this process' : `sending to the service at ${url}`}\n`)
  try {
    const report = await replay({
      dataDir,
      dataset,
      ...(since ? { since } : {}),
      ...(args.unrecognised ? { recognise: recogniseDataset(datasets) } : {}),
      batchBytes,
      ...(args.tenant !== undefined ? { tenant: args.tenant } : {}),
      maxDepth: config.maxLineDepth,
      send: httpSend(url, token)
    })
    process.stdout.write(JSON.stringify(report) + '\n')
    if (report.refusedByService > 0) {
      process.stderr.write(`replay: stopped: the service refused ${report.refusedByService} lines the schema on disk accepts, so it runs an older schema. Restart it, then replay again (those lines are dead letters again, and not counted as replayed).\n`)
      process.exitCode = 1
    }
  } finally {
    if (built) await built.close(DELIVERY_GRACE_MS)
    await replayLock.release()
  }
}

main().catch((err: unknown) => {
  // Typically the running service validates with an older schema than the one on disk.
  const hint = err instanceof ReplayRefused ? '. If the service runs an older schema than the one on disk, restart it and replay again: the interrupted batch is sent again first' : ''
  fail((err as Error).message + hint)
})
