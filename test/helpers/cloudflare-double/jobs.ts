/**
 * Logpush jobs in the Cloudflare API double. The job object and the list/get operations:
 *   cloudflare/api-schemas openapi.json, operations `get-zones-zone_identifier-logpush-jobs`,
 *   `get-accounts-account_identifier-logpush-jobs`, `get-zones-zone_identifier-logpush-jobs-job_identifier`,
 *   `get-accounts-account_identifier-logpush-jobs-job_identifier`; schema `logpush_logpush_job`.
 *   cloudflare/cloudflare-typescript src/resources/logpush/jobs.ts (LogpushJob: last_complete,
 *   last_error, error_message; "the error fields reset to null after a success").
 * Other job operations (create, update, delete, validation, ownership) are added beside these.
 */
import { fail, ok, type CloudflareDouble, type Route } from './server.js'

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

export const jobReadRoutes: Route[] = [
  { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs', operationId: 'get-zones-zone_identifier-logpush-jobs', permission: 'logs:read', handle: listJobs },
  { method: 'GET', pattern: '/accounts/:account_id/logpush/jobs', operationId: 'get-accounts-account_identifier-logpush-jobs', permission: 'logs:read', handle: listJobs },
  { method: 'GET', pattern: '/zones/:zone_id/logpush/jobs/:job_id', operationId: 'get-zones-zone_identifier-logpush-jobs-job_identifier', permission: 'logs:read', handle: getJob },
  { method: 'GET', pattern: '/accounts/:account_id/logpush/jobs/:job_id', operationId: 'get-accounts-account_identifier-logpush-jobs-job_identifier', permission: 'logs:read', handle: getJob }
]
