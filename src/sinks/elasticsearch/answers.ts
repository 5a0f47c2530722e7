// Reading what Elasticsearch answered: the error object of a refused request or item, as the
// sink and the bulk sender (halving.ts) show it in stops, dead letters and the log.
import { errors } from '@elastic/elasticsearch'

export { errorType, reasonOf, type ItemError } from '../bulk/answers.js'

export function describe(err: unknown): string {
  if (err instanceof errors.ResponseError) return `HTTP ${err.statusCode}: ${JSON.stringify(err.body)?.slice(0, 300)}`
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
