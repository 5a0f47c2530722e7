// Reading what Elasticsearch answered: the error object of a refused request or item, as the
// sink and the bulk sender (bulk.ts) show it in stops, dead letters and the log.
import { errors } from '@elastic/elasticsearch'

export type ItemError = { type?: string, reason?: string, caused_by?: { reason?: string } }

/** "type: reason (cause)" of an item's or a request's error object. */
export function reasonOf(e: ItemError | undefined): string {
  return `${e?.type ?? 'error'}: ${e?.reason ?? 'rejected'}${e?.caused_by?.reason ? ` (${e.caused_by.reason})` : ''}`
}

/** error.type of an Elasticsearch error answer, if it is one. */
export function errorType(body: unknown): string | undefined {
  const e = (body as { error?: unknown } | null)?.error
  return typeof e === 'object' && e !== null && typeof (e as { type?: unknown }).type === 'string' ? (e as { type: string }).type : undefined
}

export function describe(err: unknown): string {
  if (err instanceof errors.ResponseError) return `HTTP ${err.statusCode}: ${JSON.stringify(err.body)?.slice(0, 300)}`
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
