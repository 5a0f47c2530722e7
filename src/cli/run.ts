// The `logpush-receiver` command line: Logpush job management against Cloudflare's API, through the
// same modules the service uses (settings, tokens, dataset schemas, bucket sources, API client),
// so the CLI and the service agree on PUBLIC_URL, LOGPUSH_TOKENS, DATA_DIR and CONFIG_FILE.
//
// Exit codes: 0 done; 1 the API or the destination refused, or a runtime failure (the API's
// message shown verbatim); 2 usage error (bad or missing option, unknown command or dataset,
// invalid configuration). `run` takes its environment and output as arguments so tests call it
// in-process; main.ts is the process.
import { readdirSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import type Cloudflare from 'cloudflare'
import type { CloudflareCredentials } from '../cloudflare-api/client.js'
import { loadConfig, settings, type Config } from '../config/index.js'
import type { DatasetSchema } from '../dataset-schema.js'
// auth.ts itself, not the intake room's door: the door loads the whole ingest path, which a
// command-line tool that only reads tokens and builds URLs does not need.
import { newToken, readTokens } from '../intake/auth.js'
import { schemasDir } from '../paths.js'
import { createRequest, fieldNames, needsOwnership, Quiet, redactConf, scopeFor, serviceDestination, TIMESTAMP_FORMATS, UsageError, type Scope, type TimestampFormat } from './job-request.js'
import { obtainChallenge, challengeReader } from './ownership.js'
import { pointsAt, swapToken, usesToken } from './rotation.js'
import { schemasCheck } from './schemas.js'

export interface CliIo {
  readonly env: NodeJS.ProcessEnv
  readonly stdout: (text: string) => void
  readonly stderr: (text: string) => void
  /** Asks a yes/no question on the terminal; absent when stdin is not one. */
  readonly confirm?: (question: string) => Promise<boolean>
}

const PROG = 'logpush-receiver'

// The SDK is loaded on first use: it is most of the start-up time, and --help, --dry-run and
// the token commands that touch no API do not need it.
const api = (): Promise<typeof import('../cloudflare-api/client.js')> => import('../cloudflare-api/client.js')

type Options = NonNullable<ParseArgsConfig['options']>

// Options every command takes.
const COMMON: Options = {
  help: { type: 'boolean', short: 'h' },
  json: { type: 'boolean' },
  'api-token-file': { type: 'string' },
  'show-secrets': { type: 'boolean' }
}
const SCOPE: Options = { zone: { type: 'string' }, account: { type: 'string' } }
const SCOPES: Options = { zone: { type: 'string', multiple: true }, account: { type: 'string', multiple: true } }

const COMMON_HELP = `Common options:
  --json                 machine-readable output on stdout (errors too, as {"error": ...})
  --api-token-file FILE  read the Cloudflare API token from FILE (else CLOUDFLARE_API_TOKEN,
                         or CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY)
  --show-secrets         show tokens inside destination_conf (redacted by default)
  -h, --help             this help

Settings come from the environment and CONFIG_FILE, as for the service: PUBLIC_URL, LOGPUSH_TOKENS
(or DATA_DIR/token), CONFIG_FILE (bucket sources), SCHEMAS_DIR, CLOUDFLARE_API_URL.
Exit codes: 0 done, 1 refused by Cloudflare or failed (the API's message is shown), 2 usage error.`

export interface Command {
  readonly summary: string
  readonly usage: string
  readonly help: string
  readonly options: Options
  readonly positionals: number
  run(ctx: Ctx): Promise<void>
}

export interface Ctx {
  readonly io: CliIo
  readonly values: Record<string, string | boolean | string[] | undefined>
  readonly args: string[]
  readonly json: boolean
  config(): Config
  client(): Promise<Cloudflare>
  /** Writes a result: JSON when --json, else the text. */
  out(value: unknown, text: string): void
  note(text: string): void
}

function str(ctx: Ctx, name: string): string | undefined {
  const v = ctx.values[name]
  return typeof v === 'string' ? v : undefined
}
function list(ctx: Ctx, name: string): string[] {
  const v = ctx.values[name]
  return Array.isArray(v) ? v : typeof v === 'string' ? [v] : []
}
function flag(ctx: Ctx, name: string): boolean {
  return ctx.values[name] === true
}

function idOf(scope: Scope): { zone_id: string } | { account_id: string } {
  return scope.kind === 'zones' ? { zone_id: scope.id } : { account_id: scope.id }
}
function scopeLabel(scope: Scope): string {
  return `${scope.kind === 'zones' ? 'zone' : 'account'} ${scope.id}`
}

/** Cloudflare credentials: --api-token-file, else CLOUDFLARE_API_TOKEN, else CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY. */
export function cliCredentials(env: NodeJS.ProcessEnv, tokenFile: string | undefined): CloudflareCredentials {
  if (tokenFile !== undefined) {
    let token: string
    try {
      token = readFileSync(tokenFile, 'utf8').trim()
    } catch (err) {
      throw new UsageError(`--api-token-file ${tokenFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`)
    }
    if (token === '') throw new UsageError(`--api-token-file ${tokenFile} is empty`)
    return { kind: 'token', token }
  }
  const token = env.CLOUDFLARE_API_TOKEN?.trim()
  if (token) return { kind: 'token', token }
  const email = env.CLOUDFLARE_EMAIL?.trim()
  const key = env.CLOUDFLARE_API_KEY?.trim()
  if (email && key) return { kind: 'key', email, key }
  throw new UsageError('no Cloudflare credentials: set CLOUDFLARE_API_TOKEN (an API token with Logs Edit), or CLOUDFLARE_EMAIL + CLOUDFLARE_API_KEY, or pass --api-token-file FILE')
}

function loadSchema(config: Config, dataset: string): DatasetSchema {
  const dir = config.schemasDir !== '' ? resolve(config.schemasDir) : schemasDir
  const known = readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5)).sort()
  if (!known.includes(dataset)) throw new UsageError(`unknown dataset "${dataset}"; known: ${known.join(', ')}`)
  return JSON.parse(readFileSync(join(dir, `${dataset}.json`), 'utf8')) as DatasetSchema
}

/** The receiver token for new destinations: --token, else the last of LOGPUSH_TOKENS (or DATA_DIR/token). */
async function receiverToken(ctx: Ctx): Promise<string | undefined> {
  const given = str(ctx, 'token')
  if (given !== undefined) return given
  const config = ctx.config()
  return (await readTokens(config.tokens, resolve(config.dataDir))).tokens.at(-1)
}

function jobId(ctx: Ctx): number {
  const raw = ctx.args[0]
  if (raw === undefined) throw new UsageError('a job id is required')
  if (!/^[1-9][0-9]{0,15}$/.test(raw)) throw new UsageError(`"${raw}" is not a job id (a positive integer)`)
  return Number(raw)
}

interface JobLike { id?: number, dataset?: string | null, name?: string | null, enabled?: boolean, destination_conf?: string, last_complete?: string | null, last_error?: string | null, error_message?: string | null }

function shownJob(ctx: Ctx, job: JobLike): JobLike {
  if (flag(ctx, 'show-secrets')) return job
  // error_message may quote the destination, header_Authorization and all.
  return {
    ...job,
    ...(job.destination_conf !== undefined ? { destination_conf: redactConf(job.destination_conf) } : {}),
    ...(typeof job.error_message === 'string' ? { error_message: redactConf(job.error_message) } : {})
  }
}

function jobLines(job: JobLike): string {
  return Object.entries(job).map(([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}`).join('\n')
}

/** The destination_conf a job for `dataset` gets: --destination as given, else this service's URL. */
async function destinationFor(ctx: Ctx, dataset: string, dryRun: boolean): Promise<string> {
  const given = str(ctx, 'destination')
  if (given !== undefined) {
    if (!/^[a-z0-9]+:\/\//i.test(given)) throw new UsageError(`--destination "${given}" is not a destination_conf (scheme://...)`)
    return given
  }
  // The default PUBLIC_URL is a placeholder: a job pointed at it could never deliver.
  if (!dryRun && ctx.config().publicUrl === settings.publicUrl.default) {
    throw new UsageError(`PUBLIC_URL is not set (the default ${settings.publicUrl.default} is a placeholder): set it to the https address Logpush reaches this service at, or pass --destination`)
  }
  const token = await receiverToken(ctx)
  if (token === undefined) {
    // A preview that hides the token anyway needs none.
    if (dryRun && !flag(ctx, 'show-secrets')) return serviceDestination(ctx.config().publicUrl, dataset, 'REDACTED')
    throw new UsageError('no receiver token: set LOGPUSH_TOKENS (as the service has it), start the service once so it writes DATA_DIR/token, or pass --token')
  }
  return serviceDestination(ctx.config().publicUrl, dataset, token)
}

const jobsCreate: Command = {
  summary: 'create a Logpush job that pushes a dataset to this service (or to --destination)',
  usage: 'jobs create --dataset D (--zone Z | --account A) [options]',
  help: `Creates a Logpush job. destination_conf is PUBLIC_URL/logpush/<dataset> with the receiver
token in header_Authorization (URL-encoded), unless --destination gives another one. The job gets
output_options {output_type: ndjson, field_names, timestamp_format}, max_upload_bytes 5000000 and
max_upload_records 1000 (Cloudflare's values for HTTP destinations). Jobs are created disabled
unless --enable. A destination that needs an ownership challenge (s3:// without endpoint=) gets
one: requested from Cloudflare and read from the bucket through the bucket source of CONFIG_FILE
that reads it.

Options:
  --dataset D                 Logpush dataset id (schemas/<D>.json; its x-scope says zone or account)
  --zone Z | --account A      where the job lives
  --fields a,b,c              field_names (default: every field of the dataset but deprecated ones)
  --all-fields                the default, said explicitly
  --timestamp-format F        unixnano | unix | rfc3339 (default rfc3339)
  --name N                    job name (default logpush-receiver-<dataset>)
  --enable                    create the job enabled
  --destination CONF          any destination_conf instead of this service's
  --token T                   receiver token for this service's URL (default: the last of LOGPUSH_TOKENS)
  --ownership-challenge TOKEN send this token, read by you
  --ownership                 do the ownership challenge even where Cloudflare's table says none
                              (https: read from the service's GET /logpush/challenges)
  --service-url URL           where this tool reaches the service's admin listener (default
                              ADMIN_HOST:ADMIN_PORT; PUBLIC_URL with ADMIN_ON_INTAKE=true)
  --ownership-timeout S       how long to wait for the challenge, seconds (default 60)
  --dry-run                   print the API request instead of sending it (token redacted)`,
  options: {
    ...SCOPE,
    dataset: { type: 'string' },
    fields: { type: 'string' },
    'all-fields': { type: 'boolean' },
    'timestamp-format': { type: 'string' },
    name: { type: 'string' },
    enable: { type: 'boolean' },
    destination: { type: 'string' },
    token: { type: 'string' },
    'ownership-challenge': { type: 'string' },
    ownership: { type: 'boolean' },
    'service-url': { type: 'string' },
    'ownership-timeout': { type: 'string' },
    'dry-run': { type: 'boolean' }
  },
  positionals: 0,
  async run(ctx) {
    const dataset = str(ctx, 'dataset')
    if (dataset === undefined) throw new UsageError('--dataset is required')
    const config = ctx.config()
    const schema = loadSchema(config, dataset)
    const scope = scopeFor(dataset, schema, str(ctx, 'zone'), str(ctx, 'account'))
    if (str(ctx, 'fields') !== undefined && flag(ctx, 'all-fields')) throw new UsageError('give --fields or --all-fields, not both')
    const format = (str(ctx, 'timestamp-format') ?? 'rfc3339') as TimestampFormat
    if (!TIMESTAMP_FORMATS.includes(format)) throw new UsageError(`--timestamp-format must be one of ${TIMESTAMP_FORMATS.join(', ')}`)
    const timeoutS = Number(str(ctx, 'ownership-timeout') ?? '60')
    if (!Number.isFinite(timeoutS) || timeoutS <= 0) throw new UsageError('--ownership-timeout must be a positive number of seconds')
    const fields = fieldNames(schema, str(ctx, 'fields'))
    if (fields.unknown.length > 0) ctx.note(`note: not in our schema of ${dataset} (Cloudflare decides whether it knows them): ${fields.unknown.join(', ')}`)
    const dryRun = flag(ctx, 'dry-run')
    const conf = await destinationFor(ctx, dataset, dryRun)
    const body = createRequest({ dataset, destination: conf, name: str(ctx, 'name'), enabled: flag(ctx, 'enable'), fieldNames: fields.names, timestampFormat: format })
    const given = str(ctx, 'ownership-challenge')
    const challenge = given === undefined && (needsOwnership(conf) || flag(ctx, 'ownership'))
    // GET /logpush/challenges is on the admin listener (on this machine by default), unless ADMIN_ON_INTAKE.
    const adminHost = config.adminHost === '0.0.0.0' ? '127.0.0.1' : config.adminHost === '::' ? '::1' : config.adminHost
    const serviceUrl = str(ctx, 'service-url') ?? (config.adminOnIntake
      ? config.publicUrl
      : `${config.tlsCertFile ? 'https' : 'http'}://${adminHost.includes(':') ? `[${adminHost}]` : adminHost}:${config.adminPort}`)
    if (challenge) challengeReader(conf, { sources: config.sources, serviceUrl })
    if (given !== undefined) body.ownership_challenge = given

    if (dryRun) {
      const url = `${config.cloudflareApiUrl.replace(/\/+$/, '')}/${scope.kind}/${scope.id}/logpush/jobs`
      const shown = { ...body, destination_conf: flag(ctx, 'show-secrets') ? conf : redactConf(conf), ...(given !== undefined && !flag(ctx, 'show-secrets') ? { ownership_challenge: 'REDACTED' } : {}) }
      if (challenge) ctx.note('note: ownership_challenge is requested from Cloudflare and read from the destination when the job is created for real')
      ctx.out({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: shown },
        `POST ${url}\nContent-Type: application/json\n\n${JSON.stringify(shown, null, 2)}`)
      return
    }
    const client = await ctx.client()
    if (challenge) {
      ctx.note(`Requesting an ownership challenge for ${flag(ctx, 'show-secrets') ? conf : redactConf(conf)} ...`)
      body.ownership_challenge = await obtainChallenge({
        client, scope, conf, sources: config.sources, serviceUrl, serviceToken: str(ctx, 'token') ?? await receiverToken(ctx), env: ctx.io.env, timeoutMs: timeoutS * 1000
      })
    }
    const job = await client.logpush.jobs.create({ ...body, output_options: { ...body.output_options, field_names: [...body.output_options.field_names] }, dataset: dataset as never, ...idOf(scope) })
    const shown = shownJob(ctx, job as JobLike)
    ctx.out(shown, `Created job ${job?.id} (${dataset}, ${scopeLabel(scope)}, ${job?.enabled ? 'enabled' : 'disabled: enable it with `jobs enable ' + job?.id + ' --' + (scope.kind === 'zones' ? 'zone' : 'account') + ' ' + scope.id + '`'})\n${jobLines(shown)}`)
  }
}

const jobsList: Command = {
  summary: 'list the Logpush jobs of zones and accounts',
  usage: 'jobs list (--zone Z | --account A)...',
  help: `Lists the jobs of every --zone and --account given (each may repeat).`,
  options: { ...SCOPES },
  positionals: 0,
  async run(ctx) {
    const scopes: Scope[] = [...list(ctx, 'zone').map((id) => ({ kind: 'zones', id }) as const), ...list(ctx, 'account').map((id) => ({ kind: 'accounts', id }) as const)]
    if (scopes.length === 0) throw new UsageError('give at least one --zone Z or --account A')
    const client = await ctx.client()
    const rows: Array<JobLike & { scope: string }> = []
    for (const scope of scopes) {
      for await (const job of client.logpush.jobs.list(idOf(scope))) if (job) rows.push({ scope: scopeLabel(scope), ...shownJob(ctx, job as JobLike) })
    }
    const text = rows.length === 0
      ? 'No jobs.'
      : rows.map((j) => `${j.id}\t${j.scope}\t${j.dataset ?? '-'}\t${j.enabled ? 'enabled' : 'disabled'}\t${j.name ?? '-'}\t${j.error_message ? `error: ${j.error_message}` : `last complete: ${j.last_complete ?? '-'}`}\t${j.destination_conf}`).join('\n')
    ctx.out(rows, text)
  }
}

const jobsShow: Command = {
  summary: 'show one job',
  usage: 'jobs show ID (--zone Z | --account A)',
  help: 'Shows every field of a job, destination_conf redacted unless --show-secrets.',
  options: { ...SCOPE },
  positionals: 1,
  async run(ctx) {
    const id = jobId(ctx)
    const scope = scopeFor(null, null, str(ctx, 'zone'), str(ctx, 'account'))
    const job = await (await ctx.client()).logpush.jobs.get(id, idOf(scope))
    const shown = shownJob(ctx, job as JobLike)
    ctx.out(shown, jobLines(shown))
  }
}

function toggle(enabled: boolean): Command {
  return {
    summary: `${enabled ? 'enable' : 'disable'} a job`,
    usage: `jobs ${enabled ? 'enable' : 'disable'} ID (--zone Z | --account A)`,
    help: `${enabled ? 'Enables' : 'Disables'} a job (PUT enabled: ${enabled}). Cloudflare validates an HTTP destination again on every update, so the service must be up.`,
    options: { ...SCOPE },
    positionals: 1,
    async run(ctx) {
      const id = jobId(ctx)
      const scope = scopeFor(null, null, str(ctx, 'zone'), str(ctx, 'account'))
      const job = await (await ctx.client()).logpush.jobs.update(id, { enabled, ...idOf(scope) })
      ctx.out(shownJob(ctx, job as JobLike), `Job ${id} ${job?.enabled ? 'enabled' : 'disabled'}.`)
    }
  }
}

const jobsDelete: Command = {
  summary: 'delete a job',
  usage: 'jobs delete ID (--zone Z | --account A) [--yes]',
  help: 'Deletes a job. Asks first on a terminal; elsewhere (scripts, CI) --yes is required.\n\nOptions:\n  --yes    delete without asking',
  options: { ...SCOPE, yes: { type: 'boolean', short: 'y' } },
  positionals: 1,
  async run(ctx) {
    const id = jobId(ctx)
    const scope = scopeFor(null, null, str(ctx, 'zone'), str(ctx, 'account'))
    if (!flag(ctx, 'yes')) {
      if (!ctx.io.confirm) throw new UsageError('not deleting without --yes: stdin is not a terminal to ask on')
      if (!(await ctx.io.confirm(`Delete Logpush job ${id} of ${scopeLabel(scope)}? [y/N] `))) throw new Aborted('not deleted')
    }
    await (await ctx.client()).logpush.jobs.delete(id, idOf(scope))
    ctx.out({ id, deleted: true }, `Deleted job ${id}.`)
  }
}

const jobsValidate: Command = {
  summary: 'ask Cloudflare to validate the destination of a dataset\'s job',
  usage: 'jobs validate --dataset D (--zone Z | --account A) [--destination CONF] [--token T]',
  help: `Calls Cloudflare's destination validation (POST …/logpush/validate/destination) for this
service's URL of the dataset (or --destination): Cloudflare uploads a small test file to it.
Exit code 1 when Cloudflare finds it invalid.`,
  options: { ...SCOPE, dataset: { type: 'string' }, destination: { type: 'string' }, token: { type: 'string' } },
  positionals: 0,
  async run(ctx) {
    const dataset = str(ctx, 'dataset')
    if (dataset === undefined) throw new UsageError('--dataset is required')
    const schema = loadSchema(ctx.config(), dataset)
    const scope = scopeFor(dataset, schema, str(ctx, 'zone'), str(ctx, 'account'))
    const conf = await destinationFor(ctx, dataset, false)
    const r = await (await ctx.client()).logpush.validate.destination({ destination_conf: conf, ...idOf(scope) })
    const shown = flag(ctx, 'show-secrets') ? conf : redactConf(conf)
    ctx.out({ destination_conf: shown, valid: r?.valid === true, message: r?.message ?? '' },
      r?.valid === true ? `valid: ${shown}` : `invalid: ${r?.message || '(no message)'}\n  ${shown}`)
    if (r?.valid !== true) throw new Quiet()
  }
}

const tokenGenerate: Command = {
  summary: 'make a new receiver token and the LOGPUSH_TOKENS value that adds it',
  usage: 'token generate',
  help: `Prints a new random token (256 bits) and the LOGPUSH_TOKENS value that keeps the current
tokens and adds it last. Set it and restart the service; then \`token rotate --update-jobs\` moves
the jobs to it (the last token is the one new and rotated jobs get).`,
  options: {},
  positionals: 0,
  async run(ctx) {
    const config = ctx.config()
    const current = (await readTokens(config.tokens, resolve(config.dataDir))).tokens
    const token = newToken()
    const value = [...current, token].join(',')
    ctx.out({ token, LOGPUSH_TOKENS: value }, `${token}\n\nSet, then restart the service:\nLOGPUSH_TOKENS=${value}`)
  }
}

const tokenRotate: Command = {
  summary: 'find (and with --update-jobs move) jobs that push to this service with an older token',
  usage: 'token rotate (--zone Z | --account A)... [--update-jobs]',
  help: `The last token of LOGPUSH_TOKENS is the new one, the others are old. Lists the jobs of the
given zones and accounts whose destination_conf points at PUBLIC_URL with an old token; with
--update-jobs changes their destination_conf to the new token (PUT; the rest of the conf is kept
byte for byte). The service must already accept the new token: Cloudflare sends it a validation
upload on every update. Prints the LOGPUSH_TOKENS value to set afterwards.

Options:
  --update-jobs    update the jobs found (default: only list them)`,
  options: { ...SCOPES, 'update-jobs': { type: 'boolean' } },
  positionals: 0,
  async run(ctx) {
    const scopes: Scope[] = [...list(ctx, 'zone').map((id) => ({ kind: 'zones', id }) as const), ...list(ctx, 'account').map((id) => ({ kind: 'accounts', id }) as const)]
    if (scopes.length === 0) throw new UsageError('give at least one --zone Z or --account A')
    const config = ctx.config()
    // Jobs are found by PUBLIC_URL: with the placeholder none is, and "no job uses an old token"
    // would advise dropping a token every real job still sends.
    if (config.publicUrl === settings.publicUrl.default) {
      throw new UsageError(`PUBLIC_URL is not set (the default ${settings.publicUrl.default} is a placeholder): set it to the address your jobs push to, so that their destination_conf can be found`)
    }
    const tokens = (await readTokens(config.tokens, resolve(config.dataDir))).tokens
    if (tokens.length < 2) throw new UsageError('LOGPUSH_TOKENS holds one token, so there is nothing to rotate to: run `token generate`, set the LOGPUSH_TOKENS it prints, restart the service, then run this again')
    const current = tokens.at(-1)!
    const old = tokens.slice(0, -1)
    const client = await ctx.client()
    const update = flag(ctx, 'update-jobs')
    const found: Array<{ scope: string, id: number, dataset: string | null, updated: boolean, error?: string }> = []
    for (const scope of scopes) {
      for await (const job of client.logpush.jobs.list(idOf(scope))) {
        if (!job?.id || !job.destination_conf || !pointsAt(job.destination_conf, config.publicUrl)) continue
        const from = old.find((t) => usesToken(job.destination_conf!, t, config.authHeader))
        if (from === undefined) continue
        const row: { scope: string, id: number, dataset: string | null, updated: boolean, error?: string } = { scope: scopeLabel(scope), id: job.id, dataset: job.dataset ?? null, updated: false }
        if (update) {
          try {
            await client.logpush.jobs.update(job.id, { destination_conf: swapToken(job.destination_conf, from, current, config.authHeader), ...idOf(scope) })
            row.updated = true
          } catch (err) {
            const { apiStatus, describeApiError } = await api()
            if (apiStatus(err) === undefined) throw err
            row.error = redactConf(describeApiError(err))
          }
        }
        found.push(row)
      }
    }
    const left = found.filter((j) => !j.updated)
    const value = left.length === 0 ? current : tokens.join(',')
    const lines = found.map((j) => `${j.id}\t${j.scope}\t${j.dataset ?? '-'}\t${j.updated ? 'updated' : j.error ? `FAILED: ${j.error}` : 'uses an old token'}`)
    const searched = scopes.map(scopeLabel).join(', ')
    const advice = left.length === 0
      ? `No job of ${searched} pushes to ${config.publicUrl} with an old token${found.length > 0 ? ' any more' : ''}. If these are all the zones and accounts with jobs pushing here, set, then restart the service:\nLOGPUSH_TOKENS=${value}`
      : `${left.length} job(s) still push with an old token${update ? '' : ' (run again with --update-jobs)'}. Keep:\nLOGPUSH_TOKENS=${value}`
    ctx.out({ LOGPUSH_TOKENS: value, jobs: found }, [...lines, ...(lines.length > 0 ? [''] : []), advice].join('\n'))
    if (found.some((j) => j.error !== undefined)) throw new Quiet()
  }
}

const COMMANDS: Record<string, Record<string, Command>> = {
  jobs: { create: jobsCreate, list: jobsList, show: jobsShow, enable: toggle(true), disable: toggle(false), delete: jobsDelete, validate: jobsValidate },
  token: { generate: tokenGenerate, rotate: tokenRotate },
  schemas: { check: schemasCheck }
}

/** A declined confirmation: exit 1, not a usage error. */
class Aborted extends Error {}

function overview(): string {
  const lines = Object.entries(COMMANDS).flatMap(([group, cmds]) => Object.entries(cmds).map(([name, c]) => `  ${`${group} ${name}`.padEnd(16)}${c.summary}`))
  return `Usage: ${PROG} <command> [options]\n\nManage the Cloudflare Logpush jobs that push to this service, and check its dataset schemas against Cloudflare's.\n\nCommands:\n${lines.join('\n')}\n\nRun '${PROG} <command> --help' for a command's options.\n\n${COMMON_HELP}\n`
}

export async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const [group, name, ...rest] = argv
  if (group === undefined || group === '--help' || group === '-h' || group === 'help') {
    io[group === undefined ? 'stderr' : 'stdout'](overview())
    return group === undefined ? 2 : 0
  }
  const wantsJson = argv.includes('--json')
  const fail = (code: number, message: string, extra: Record<string, unknown> = {}): number => {
    io.stderr(`${PROG}: ${message}\n`)
    if (wantsJson) io.stdout(JSON.stringify({ error: { message, ...extra } }) + '\n')
    return code
  }
  const cmds = COMMANDS[group]
  if (!cmds) return fail(2, `unknown command "${group}"; run '${PROG} --help'`)
  const cmd = name !== undefined ? cmds[name] : undefined
  if (!cmd) {
    if (name === '--help' || name === '-h') { io.stdout(overview()); return 0 }
    return fail(2, `${name === undefined ? 'missing' : `unknown`} ${group} command${name === undefined ? '' : ` "${name}"`}; one of: ${Object.keys(cmds).join(', ')}`)
  }
  const usage = `Usage: ${PROG} ${cmd.usage}`
  let parsed: ReturnType<typeof parseArgs>
  try {
    parsed = parseArgs({ args: rest, options: { ...COMMON, ...cmd.options }, allowPositionals: true, strict: true })
  } catch (err) {
    return fail(2, `${(err as Error).message}\n${usage}`)
  }
  if (parsed.values.help === true) {
    io.stdout(`${usage}\n\n${cmd.help}\n\n${COMMON_HELP}\n`)
    return 0
  }
  if (parsed.positionals.length > cmd.positionals) return fail(2, `unexpected argument "${parsed.positionals[cmd.positionals]}"\n${usage}`)
  const json = parsed.values.json === true
  let config: Config | undefined
  let client: Promise<Cloudflare> | undefined
  const ctx: Ctx = {
    io,
    values: parsed.values as Ctx['values'],
    args: parsed.positionals,
    json,
    config: () => (config ??= loadConfig(io.env)),
    client: () => (client ??= (async () => {
      const creds = cliCredentials(io.env, typeof parsed.values['api-token-file'] === 'string' ? parsed.values['api-token-file'] : undefined)
      return (await api()).sdkClient(ctx.config().cloudflareApiUrl, creds)
    })()),
    out: (value, text) => io.stdout((json ? JSON.stringify(value, null, 2) : text) + '\n'),
    note: (text) => io.stderr(text + '\n')
  }
  try {
    await cmd.run(ctx)
    return 0
  } catch (err) {
    if (err instanceof Quiet) return 1
    if (err instanceof Aborted) return fail(1, err.message)
    if (err instanceof UsageError) return fail(2, `${err.message}\n${usage}`)
    const code = (err as { code?: unknown }).code
    if (code === 'LPR_ERR_CONFIG_INVALID') return fail(2, `${code}: ${(err as Error).message}`)
    const { APIError } = await import('cloudflare')
    const { apiErrors, apiStatus, describeApiError } = await api()
    if (err instanceof APIError || apiStatus(err) !== undefined) {
      // Cloudflare's refusals may quote the destination_conf, secrets and all.
      const shown = (text: string): string => flag(ctx, 'show-secrets') ? text : redactConf(text)
      return fail(1, `LPR_ERR_CLOUDFLARE_API: Cloudflare API: ${shown(describeApiError(err))}`, { code: 'LPR_ERR_CLOUDFLARE_API', status: apiStatus(err), errors: apiErrors(err).map((e) => ({ ...e, message: shown(e.message) })) })
    }
    return fail(1, (err as Error)?.message ?? String(err))
  }
}
