// The Cloudflare API double as tests use it: every area's routes on one server, the OpenAPI
// checks attached. A test ends with `assert.deepEqual(double.violations, [])`: every request our
// code sent and every answer the double gave matched Cloudflare's published schema.
import { CloudflareDouble } from './server.js'
import { jobReadRoutes, jobWriteRoutes } from './jobs.js'
import { graphqlRoutes } from './graphql.js'
import { auditRoutes } from './audit.js'
import { logpullRoutes } from './logpull.js'
import { datasetFieldsRoutes } from './datasets.js'
import { attachOpenApi } from './openapi.js'

export { CloudflareDouble, ok, fail, AUTH_ERRORS, rateLimited, looksLikeGlobalKey, type Grant, type Route, type Reply, type DoubleRequest, type RecordedRequest, type Injected } from './server.js'
export { addAuditV1, addAuditV2, auditState, type AuditV1Record, type AuditV2Record } from './audit.js'
export { addJob, jobsState, jobsIn, jobView, type DoubleJob } from './jobs.js'
export { datasetFieldsState, referenceFields, setDatasetFields } from './datasets.js'
export { destinationSettings, issueToken, needsOwnership } from './destinations.js'
export { attachOpenApi, compileOpenApi, loadSubset, type OpenApiDoc } from './openapi.js'

/** A started double with every route; `base` is the API base URL (…/client/v4). */
export async function startCloudflareDouble(): Promise<{ double: CloudflareDouble, base: string }> {
  const double = new CloudflareDouble()
  // Each area adds its routes here (one line each).
  double.use(...jobReadRoutes)
  double.use(...graphqlRoutes)
  double.use(...jobWriteRoutes)
  double.use(...auditRoutes)
  double.use(...logpullRoutes)
  double.use(...datasetFieldsRoutes)
  attachOpenApi(double)
  const base = await double.start()
  return { double, base }
}
