/**
 * A dataset's field list in the Cloudflare API double: `GET /zones/{zone_id}/logpush/datasets/
 * {dataset_id}/fields` and `GET /accounts/{account_id}/logpush/datasets/{dataset_id}/fields`.
 *   cloudflare/api-schemas openapi.json (commit ebdfba7e, in test/fixtures/cloudflare-openapi/subset.json):
 *   operations `get-zones-zone_identifier-logpush-datasets-dataset-fields` and
 *   `get-accounts-account_identifier-logpush-datasets-dataset-fields`, summary "List fields", path
 *   parameter `dataset_id` (schema `logpush_dataset`), answer `logpush_logpush_field_response_collection`
 *   (the common envelope, `result` an object).
 *   cloudflare-typescript src/resources/logpush/datasets/fields.ts (npm `cloudflare` 7.3,
 *   `client.logpush.datasets.fields.get(datasetID, {zone_id | account_id})`): "The response result
 *   is an object with key-value pairs, where keys are field names, and values are descriptions".
 *   https://developers.cloudflare.com/logs/log-fields/ (the same two endpoints, "The list of
 *   fields can also be accessed directly from the API"); the API reference page
 *   https://developers.cloudflare.com/api/go/resources/logpush/subresources/datasets
 *   (GET /{accounts_or_zones}/{account_or_zone_id}/logpush/datasets/{dataset_id}/fields).
 *   Permission: Logs Write, as every Logpush operation (CF docs logs/logpush/permissions.mdx).
 * Not documented anywhere we could read: the answer for a dataset the scope does not have. The
 * double gives the failure envelope with 400 and code 1002, the code the Logpush operations use
 * for a request they refuse (jobs.ts), which the operation's 4XX schema allows.
 *
 * Unless a test sets a dataset's list (setDatasetFields), it is the repository's field reference
 * (schemas/reference/datasets.json) with its descriptions: our schemas and Cloudflare agree.
 */
import { readFileSync } from 'node:fs'
import { fail, ok, type CloudflareDouble, type Route } from './server.js'

type Kind = 'zones' | 'accounts'

interface ReferenceFile { [dataset: string]: { scope: 'zone' | 'account', scopes?: Array<'zone' | 'account'>, fields: Array<{ name: string, description: string }> } }

let reference: ReferenceFile | undefined
function referenceFile(): ReferenceFile {
  return (reference ??= JSON.parse(readFileSync(new URL('../../../../schemas/reference/datasets.json', import.meta.url), 'utf8')) as ReferenceFile)
}

export interface DatasetFieldsState {
  /** `${kind}/${dataset}` -> field name -> description; a dataset not here answers from the reference. */
  readonly lists: Map<string, Record<string, string>>
  /** `${kind}/${dataset}` the scope does not have (on top of the reference's scopes). */
  readonly unavailable: Set<string>
}

export function datasetFieldsState(double: CloudflareDouble): DatasetFieldsState {
  return double.area<DatasetFieldsState>('datasetFields', () => ({ lists: new Map(), unavailable: new Set() }))
}

/** Sets what Cloudflare lists for a dataset in one kind of scope (both when `kind` is absent). */
export function setDatasetFields(double: CloudflareDouble, dataset: string, fields: Record<string, string>, kind?: Kind): void {
  for (const k of kind ? [kind] : ['zones', 'accounts'] as const) datasetFieldsState(double).lists.set(`${k}/${dataset}`, { ...fields })
}

/** The reference's list of a dataset as the API gives it (name -> description), to edit in a test. */
export function referenceFields(dataset: string): Record<string, string> {
  const d = referenceFile()[dataset]
  if (!d) throw new Error(`no dataset ${dataset} in the reference`)
  return Object.fromEntries(d.fields.map((f) => [f.name, f.description]))
}

const listFields: Route['handle'] = (req, double) => {
  const kind: Kind = req.params.zone_id !== undefined ? 'zones' : 'accounts'
  const id = kind === 'zones' ? req.params.zone_id! : req.params.account_id!
  if (kind === 'zones' ? !double.zones.has(id) : !double.accounts.has(id)) return fail(403, [{ code: 10000, message: 'Authentication error' }])
  const dataset = req.params.dataset_id!
  const state = datasetFieldsState(double)
  const key = `${kind}/${dataset}`
  const set = state.lists.get(key)
  if (set && !state.unavailable.has(key)) return ok(set)
  const d = referenceFile()[dataset]
  const scopes = d ? d.scopes ?? [d.scope] : []
  if (!d || state.unavailable.has(key) || !scopes.includes(kind === 'zones' ? 'zone' : 'account')) {
    return fail(400, [{ code: 1002, message: `dataset ${dataset} is not available for this ${kind === 'zones' ? 'zone' : 'account'}` }])
  }
  return ok(Object.fromEntries(d.fields.map((f) => [f.name, f.description])))
}

export const datasetFieldsRoutes: Route[] = [
  { method: 'GET', pattern: '/zones/:zone_id/logpush/datasets/:dataset_id/fields', operationId: 'get-zones-zone_identifier-logpush-datasets-dataset-fields', permission: 'logs:write', handle: listFields },
  { method: 'GET', pattern: '/accounts/:account_id/logpush/datasets/:dataset_id/fields', operationId: 'get-accounts-account_identifier-logpush-datasets-dataset-fields', permission: 'logs:write', handle: listFields }
]
