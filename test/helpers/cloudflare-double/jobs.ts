/**
 * Logpush jobs in the Cloudflare API double. The job object and the list/get operations:
 *   cloudflare/api-schemas openapi.json, operations `get-zones-zone_identifier-logpush-jobs`,
 *   `get-accounts-account_identifier-logpush-jobs`, `get-zones-zone_identifier-logpush-jobs-job_identifier`,
 *   `get-accounts-account_identifier-logpush-jobs-job_identifier`; schema `logpush_logpush_job`.
 *   cloudflare/cloudflare-typescript src/resources/logpush/jobs.ts (LogpushJob: last_complete,
 *   last_error, error_message; "the error fields reset to null after a success").
 * The write operations (jobWriteRoutes, below the read ones) and the destination checks:
 *   create: `post-zones-zone_identifier-logpush-jobs` / `post-accounts-account_identifier-logpush-jobs`;
 *   update: `put-…-logpush-jobs-job_identifier`; delete: `delete-…-logpush-jobs-job_identifier`
 *   (answers `{id}`, cloudflare-typescript JobDeleteResponse); validate destination:
 *   `post-zones-zone_identifier-logpush-validate-destination`, `delete-accounts-account_identifier-logpush-validate-destination`
 *   (sic: the account operation's id starts with "delete") answering `{valid, message}`, and `…/exists`
 *   answering `{exists}`; ownership: `post-…-logpush-ownership` answering `{filename, message, valid}`,
 *   `post-…-logpush-ownership-validate` answering `{valid}`. The ids are those of CF docs
 *   src/content/docs/logs/logpush/logpush-job/api-configuration.mdx ("Endpoints" table), the request
 *   and answer shapes those of cloudflare-typescript src/resources/logpush/{jobs,validate,ownership}.ts.
 *   What reaches the destination (validation upload, challenge file) is in destinations.ts.
 */
import { fail, ok, type CloudflareDouble, type DoubleRequest, type Reply, type Route } from './server.js'
import { deliverChallenge, issueToken, needsOwnership, tokenMatches, validateDestination } from './destinations.js'

export interface DoubleJob {
  id: number
  dataset: string | null
  destination_conf: string
  enabled: boolean
  name: string | null
  kind: '' | 'edge'
  filter: string | null
  frequency?: 'high' | 'low' | null
  logpull_options: string | null
  output_options: Record<string, unknown> | null
  max_upload_bytes: number | null
  max_upload_interval_seconds: number | null
  max_upload_records: number | null
  /** RFC 3339 or null. */
  last_complete: string | null
  last_error: string | null
  error_message: string | null
  /** Where the job lives: 'zones' or 'accounts', and the id. */
  readonly scope: { readonly kind: 'zones' | 'accounts', readonly id: string }
}

export interface JobsState {
  nextId: number
  readonly jobs: Map<number, DoubleJob>
}

export function jobsState(double: CloudflareDouble): JobsState {
  return double.area<JobsState>('jobs', () => ({ nextId: 1, jobs: new Map() }))
}

/** A job as the API shows it (without the double's own `scope`). */
export function jobView(j: DoubleJob): Record<string, unknown> {
  return Object.fromEntries(Object.entries(j).filter(([k]) => k !== 'scope'))
}

function scopeOf(params: Readonly<Record<string, string>>): { kind: 'zones' | 'accounts', id: string } {
  return params.zone_id !== undefined ? { kind: 'zones', id: params.zone_id } : { kind: 'accounts', id: params.account_id }
}

export function jobsIn(double: CloudflareDouble, scope: { kind: 'zones' | 'accounts', id: string }): DoubleJob[] {
  return [...jobsState(double).jobs.values()].filter((j) => j.scope.kind === scope.kind && j.scope.id === scope.id)
}

/** Adds a job directly (tests seed state this way); the API's create goes through routes. */
export function addJob(double: CloudflareDouble, scope: { kind: 'zones' | 'accounts', id: string }, fields: Partial<Omit<DoubleJob, 'id' | 'scope'>> & { destination_conf: string }): DoubleJob {
  const state = jobsState(double)
  const job: DoubleJob = {
    id: state.nextId++, dataset: null, enabled: false, name: null, kind: '', filter: null, logpull_options: null, output_options: null,
    max_upload_bytes: null, max_upload_interval_seconds: null, max_upload_records: null, last_complete: null, last_error: null, error_message: null,
    ...fields, scope
  }
  state.jobs.set(job.id, job)
  return job
}

function exists(double: CloudflareDouble, scope: { kind: 'zones' | 'accounts', id: string }): boolean {
  return scope.kind === 'zones' ? double.zones.has(scope.id) : double.accounts.has(scope.id)
}

const listJobs: Route['handle'] = (req, double) => {
  const scope = scopeOf(req.params)
  if (!exists(double, scope)) return fail(403, [{ code: 10000, message: 'Authentication error' }])
  return ok(jobsIn(double, scope).map(jobView))
}

function getJob(req: Parameters<Route['handle']>[0], double: CloudflareDouble): ReturnType<Route['handle']> {
  const scope = scopeOf(req.params)
  const job = jobsState(double).jobs.get(Number(req.params.job_id))
  if (!job || job.scope.kind !== scope.kind || job.scope.id !== scope.id) return fail(404, [{ code: 1002, message: 'job not found' }])
  return ok(jobView(job))
}

// Reading jobs needs Logs Write too: "all Logpush API operations require Logs: Write permission
// because Logpush jobs contain sensitive information" (CF docs src/content/docs/logs/logpush/permissions.mdx;
// every operation of api-configuration.mdx lists "Logs Write" as its accepted permission).
export const jobReadRoutes: Route[] = [
  { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'get-zones-zone_identifier-logpush-jobs', permission: 'logs:write', handle: listJobs },
  { method: 'GET', pattern: '/accounts/:account_id/logpush/jobs', operationId: 'get-accounts-account_identifier-logpush-jobs', permission: 'logs:write', handle: listJobs },
  { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs/:job_id', operationId: 'get-zones-zone_identifier-logpush-jobs-job_identifier', permission: 'logs:write', handle: getJob },
  { method: 'GET', pattern: '/accounts/:account_id/logpush/jobs/:job_id', operationId: 'get-accounts-account_identifier-logpush-jobs-job_identifier', permission: 'logs:write', handle: getJob }
]

// Error answers of the write operations. The validation failure's status and code: 400 and 1002
// (terraform-provider-cloudflare#7044); its message comes from destinations.ts. A wrong or missing
// ownership token: 400, 1002 "incorrect ownership challenge" (terraform-provider-cloudflare#1019).
const incorrectChallenge = (): Reply => fail(400, [{ code: 1002, message: 'incorrect ownership challenge' }])
const invalid = (message: string): Reply => fail(400, [{ code: 1002, message }])

// Fields a job request may carry (cloudflare-typescript JobCreateParams / JobUpdateParams).
const WRITABLE = ['destination_conf', 'enabled', 'filter', 'frequency', 'logpull_options', 'max_upload_bytes', 'max_upload_interval_seconds', 'max_upload_records', 'name', 'output_options'] as const

function body(req: DoubleRequest): Record<string, unknown> | null {
  return req.json !== null && typeof req.json === 'object' && !Array.isArray(req.json) ? req.json as Record<string, unknown> : null
}

/**
 * The ownership check of a job request: required for destinations that need a challenge, and
 * checked whenever one is sent (its claims must match the scope and the conf byte for byte).
 */
function ownershipRefused(double: CloudflareDouble, scope: { kind: 'zones' | 'accounts', id: string }, conf: string, token: unknown): Reply | null {
  if (token === undefined || token === null || token === '') return needsOwnership(conf) ? incorrectChallenge() : null
  return typeof token === 'string' && tokenMatches(double, token, scope, conf) ? null : incorrectChallenge()
}

const createJob: Route['handle'] = async (req, double) => {
  const scope = scopeOf(req.params)
  if (!exists(double, scope)) return fail(403, [{ code: 10000, message: 'Authentication error' }])
  const b = body(req)
  if (!b || typeof b.destination_conf !== 'string' || b.destination_conf === '') return fail(400, [{ code: 1002, message: 'destination_conf is required' }])
  const refused = ownershipRefused(double, scope, b.destination_conf, b.ownership_challenge)
  if (refused) return refused
  const v = await validateDestination(double, b.destination_conf)
  if (!v.valid) return invalid(v.message)
  const fields: Record<string, unknown> = { dataset: typeof b.dataset === 'string' ? b.dataset : null }
  for (const k of WRITABLE) if (b[k] !== undefined) fields[k] = b[k]
  // example-logpush-curl.mdx: a job is created disabled unless enabled: true is sent.
  fields.enabled = b.enabled === true
  if (b.kind === 'edge') fields.kind = 'edge'
  return ok(jobView(addJob(double, scope, fields as Parameters<typeof addJob>[2])))
}

function ownJob(req: DoubleRequest, double: CloudflareDouble): DoubleJob | undefined {
  const scope = scopeOf(req.params)
  const job = jobsState(double).jobs.get(Number(req.params.job_id))
  return job && job.scope.kind === scope.kind && job.scope.id === scope.id ? job : undefined
}

const updateJob: Route['handle'] = async (req, double) => {
  const job = ownJob(req, double)
  if (!job) return fail(404, [{ code: 1002, message: 'job not found' }])
  const b = body(req) ?? {}
  // api-configuration.mdx: "The kind parameter cannot be used to update existing Logpush jobs."
  if (b.kind !== undefined && b.kind !== job.kind) return fail(400, [{ code: 1002, message: 'kind cannot be updated' }])
  const conf = typeof b.destination_conf === 'string' ? b.destination_conf : job.destination_conf
  // example-logpush-curl.mdx: a new destination needs a new challenge token.
  if (conf !== job.destination_conf) {
    const refused = ownershipRefused(double, job.scope, conf, b.ownership_challenge)
    if (refused) return refused
  }
  // terraform-provider-cloudflare#7044: every PUT re-validates the destination, changed or not.
  const v = await validateDestination(double, conf)
  if (!v.valid) return invalid(v.message)
  const fields = job as unknown as Record<string, unknown>
  for (const k of WRITABLE) if (b[k] !== undefined) fields[k] = b[k]
  return ok(jobView(job))
}

const deleteJob: Route['handle'] = (req, double) => {
  const job = ownJob(req, double)
  if (!job) return fail(404, [{ code: 1002, message: 'job not found' }])
  jobsState(double).jobs.delete(job.id)
  return ok({ id: job.id })
}

const validate: Route['handle'] = async (req, double) => {
  const b = body(req)
  if (!b || typeof b.destination_conf !== 'string') return fail(400, [{ code: 1002, message: 'destination_conf is required' }])
  const v = await validateDestination(double, b.destination_conf)
  return ok(v.valid ? { valid: true, message: '' } : { valid: false, message: v.message })
}

const destinationExists: Route['handle'] = (req, double) => {
  const b = body(req)
  if (!b || typeof b.destination_conf !== 'string') return fail(400, [{ code: 1002, message: 'destination_conf is required' }])
  // Sends nothing: only whether a job of this zone/account already has this destination.
  return ok({ exists: jobsIn(double, scopeOf(req.params)).some((j) => j.destination_conf === b.destination_conf) })
}

const ownership: Route['handle'] = async (req, double) => {
  const scope = scopeOf(req.params)
  const b = body(req)
  if (!b || typeof b.destination_conf !== 'string') return fail(400, [{ code: 1002, message: 'destination_conf is required' }])
  const delivered = await deliverChallenge(double, b.destination_conf, issueToken(double, scope, b.destination_conf))
  if ('error' in delivered) return invalid(`error validating destination: ${delivered.error}`)
  return ok({ filename: delivered.filename, message: '', valid: true })
}

const ownershipValidate: Route['handle'] = (req, double) => {
  const b = body(req)
  if (!b || typeof b.destination_conf !== 'string' || typeof b.ownership_challenge !== 'string') return fail(400, [{ code: 1002, message: 'destination_conf and ownership_challenge are required' }])
  if (!tokenMatches(double, b.ownership_challenge, scopeOf(req.params), b.destination_conf)) return incorrectChallenge()
  return ok({ valid: true })
}

const W = 'logs:write'
export const jobWriteRoutes: Route[] = [
  { method: 'POST', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'post-zones-zone_identifier-logpush-jobs', permission: W, handle: createJob },
  { method: 'POST', pattern: '/accounts/:account_id/logpush/jobs', operationId: 'post-accounts-account_identifier-logpush-jobs', permission: W, handle: createJob },
  { method: 'PUT', pattern: '/zones/:zone_id/logpush/jobs/:job_id', operationId: 'put-zones-zone_identifier-logpush-jobs-job_identifier', permission: W, handle: updateJob },
  { method: 'PUT', pattern: '/accounts/:account_id/logpush/jobs/:job_id', operationId: 'put-accounts-account_identifier-logpush-jobs-job_identifier', permission: W, handle: updateJob },
  { method: 'DELETE', pattern: '/zones/:zone_id/logpush/jobs/:job_id', operationId: 'delete-zones-zone_identifier-logpush-jobs-job_identifier', permission: W, handle: deleteJob },
  { method: 'DELETE', pattern: '/accounts/:account_id/logpush/jobs/:job_id', operationId: 'delete-accounts-account_identifier-logpush-jobs-job_identifier', permission: W, handle: deleteJob },
  { method: 'POST', pattern: '/zones/:zone_id/logpush/validate/destination', operationId: 'post-zones-zone_identifier-logpush-validate-destination', permission: W, handle: validate },
  { method: 'POST', pattern: '/accounts/:account_id/logpush/validate/destination', operationId: 'delete-accounts-account_identifier-logpush-validate-destination', permission: W, handle: validate },
  { method: 'POST', pattern: '/zones/:zone_id/logpush/validate/destination/exists', operationId: 'post-zones-zone_identifier-logpush-validate-destination-exists', permission: W, handle: destinationExists },
  { method: 'POST', pattern: '/accounts/:account_id/logpush/validate/destination/exists', operationId: 'delete-accounts-account_identifier-logpush-validate-destination-exists', permission: W, handle: destinationExists },
  { method: 'POST', pattern: '/zones/:zone_id/logpush/ownership', operationId: 'post-zones-zone_identifier-logpush-ownership', permission: W, handle: ownership },
  { method: 'POST', pattern: '/accounts/:account_id/logpush/ownership', operationId: 'post-accounts-account_identifier-logpush-ownership', permission: W, handle: ownership },
  { method: 'POST', pattern: '/zones/:zone_id/logpush/ownership/validate', operationId: 'post-zones-zone_identifier-logpush-ownership-validate', permission: W, handle: ownershipValidate },
  { method: 'POST', pattern: '/accounts/:account_id/logpush/ownership/validate', operationId: 'post-accounts-account_identifier-logpush-ownership-validate', permission: W, handle: ownershipValidate }
]
