// Reading what a _bulk endpoint answered (Elasticsearch and OpenSearch answer alike): the error
// object of a refused request or item, and the items of a taken bulk.
import type { DeliveryStopped, StoppedState } from '../sink.js'
import { classifyItem } from '../elasticsearch/classify.js'
import type { Counts, Item } from './window.js'

export type ItemError = { type?: string, reason?: string, caused_by?: { reason?: string } }

export interface BulkResponse {
  errors: boolean
  items: Array<Record<string, { status: number, error?: ItemError }>>
}

/** "type: reason (cause)" of an item's or a request's error object. */
export function reasonOf(e: ItemError | undefined): string {
  return `${e?.type ?? 'error'}: ${e?.reason ?? 'rejected'}${e?.caused_by?.reason ? ` (${e.caused_by.reason})` : ''}`
}

/** error.type of an Elasticsearch/OpenSearch error answer, if it is one. */
export function errorType(body: unknown): string | undefined {
  const e = (body as { error?: unknown } | null)?.error
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' ? (e as { type: string }).type : undefined
}

/** What the destination does with an item refused for good, or refused for a reason not the document's. */
export interface ItemVerdicts {
  reject(item: Item, e: ItemError | undefined): void
  stop(status: number, e: ItemError | undefined): DeliveryStopped
}

/**
 * The items of a taken _bulk, in the order sent: counts what was stored in `report`, hands the
 * refused on; answers the items to send again (429/5xx) and the first stop, if any.
 */
export function readItems(res: BulkResponse, pending: readonly Item[], report: Counts, verdicts: ItemVerdicts): { again: Item[], stopped: DeliveryStopped | null } {
  const again: Item[] = []
  let stopped: DeliveryStopped | null = null
  res.items.forEach((entry, i) => {
    const item = pending[i]!
    const result = Object.values(entry)[0]!
    const e = result.error
    switch (classifyItem(result.status, e?.type)) {
      case 'created': report.delivered++; break
      case 'duplicate': report.duplicates++; break
      case 'retry': again.push(item); break
      case 'stop': stopped ??= verdicts.stop(result.status, e); break
      case 'reject': verdicts.reject(item, e)
    }
  })
  return { again, stopped }
}

/** Why a whole request was refused, for the stop's code: 401, or a 403 that is not a cluster block, is the credentials'. */
export function requestRefusal(status: number | undefined, body: unknown): 'credentials' | 'cluster' {
  return status === 401 || (status === 403 && errorType(body) !== 'cluster_block_exception') ? 'credentials' : 'cluster'
}

/** The stop shown in health() after `prev`: its `since` kept while the code stays the same. */
export function nextStopped(prev: StoppedState | null, code: string, reason: string): StoppedState {
  return prev?.code !== code ? { code, reason, since: new Date().toISOString() } : { ...prev, reason }
}
