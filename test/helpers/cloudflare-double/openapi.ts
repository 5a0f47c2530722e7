/**
 * The Cloudflare API double checked against Cloudflare's published OpenAPI schema.
 *
 * test/fixtures/cloudflare-openapi/subset.json is an extract of cloudflare/api-schemas
 * openapi.json (its README says which commit and how each piece was found): the operations we
 * call, with every component they reference; two operations the stored commits lack are
 * reconstructed there and marked `x-reconstructed`. `attachOpenApi(double)` makes the double check every
 * request to a route that names an operationId, and every answer it gives there:
 *
 *   - the route's operationId is in the subset, with the request's method, and the request path
 *     matches the operation's path template (so a route cannot serve one path under another's id);
 *   - path and query parameters, typed from their strings per each parameter's schema (OpenAPI
 *     3.0 `style: form` for query: a repeated name is an array); a query parameter the operation
 *     does not declare is a violation (Cloudflare ignores unknown ones, so a misspelt `per_page`
 *     would silently do nothing: the schema is how we notice);
 *   - a JSON request body against the operation's requestBody;
 *   - a JSON answer against the response for its status: the exact code, else `4XX`/`5XX`
 *     (OpenAPI 3.0 "Responses Object": range keys, any case), else `default`. An answer whose
 *     status the operation does not document is a violation.
 *
 * Each violation is one readable line: `<operationId> <where>: <what>`.
 *
 * Where the published schema contradicts itself or the API's documented answers, ERRATA below
 * patches the compiled copy (never the committed extract), each patch with its reason, and an
 * error response declared as `allOf: [<success schema>, <*-api-response-common-failure>]` is
 * checked against the failure envelope alone (see failureOnly).
 *
 * OpenAPI 3.0 schemas are not JSON Schema: `nullable`, `example` and `x-*` keys are translated or
 * dropped before ajv sees them (toJsonSchema below); `format`s are checked by ajv-formats (the
 * schema uses date-time for job and audit timestamps, uri, email, ipv4/ipv6 in audit records).
 */
import { readFileSync } from 'node:fs'
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import addFormatsModule from 'ajv-formats'
import formatsModule from 'ajv-formats/dist/formats.js'
import type { CloudflareDouble, RecordedRequest } from './server.js'

// ajv-formats is CommonJS: under NodeNext its default export arrives as the module object.
const addFormats = ((addFormatsModule as unknown as { default?: unknown }).default ?? addFormatsModule) as (ajv: Ajv) => Ajv
const isUri = ((formatsModule as unknown as { default?: { fullFormats: unknown } }).default ?? formatsModule as unknown as { fullFormats: unknown }).fullFormats as { uri: (s: string) => boolean }

/**
 * `destination_conf` as Cloudflare uses it: a URI, except that the path may hold the `{DATE}` path
 * variable Logpush fills in per batch (the destination pages of developers.cloudflare.com/logs/,
 * e.g. `r2://<bucket>/logs/{DATE}`; a real job's destination_conf with it, compared byte for byte by the
 * ownership challenge, in cloudflare/terraform-provider-cloudflare#1019).
 * Braces are not URI characters, so the placeholder is set aside before the URI check (see ERRATA).
 */
export function isDestinationConf(value: string): boolean {
  return isUri.uri(value.replaceAll('{DATE}', '20260101'))
}

export const SUBSET_FILE = new URL('../../../../test/fixtures/cloudflare-openapi/subset.json', import.meta.url)

type Json = null | boolean | number | string | Json[] | { [k: string]: Json }
type JsonObject = { [k: string]: Json }

interface Parameter { name: string, in: string, required?: boolean, schema?: JsonObject }
interface Operation {
  operationId: string
  parameters?: JsonObject[]
  requestBody?: JsonObject
  responses: Record<string, JsonObject>
}
export interface OpenApiDoc {
  paths: Record<string, Record<string, JsonObject>>
  components: Record<string, Record<string, JsonObject>>
}

interface Located {
  readonly method: string
  readonly template: string
  readonly re: RegExp
  readonly names: string[]
  readonly op: Operation
  readonly params: Parameter[]
}

export function loadSubset(file: URL | string = SUBSET_FILE): OpenApiDoc {
  return JSON.parse(readFileSync(file, 'utf8')) as OpenApiDoc
}

const SCHEMA_ID = 'cloudflare-openapi'
const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'patch', 'head', 'options'])

/**
 * One OpenAPI 3.0 Schema Object as draft-07 JSON Schema: `nullable: true` becomes a null
 * alternative, component refs point into our `definitions`, and annotations ajv does not know
 * (`example`, `x-*`, `discriminator`, `xml`, `externalDocs`) are dropped.
 */
export function toJsonSchema(s: Json): Json {
  if (Array.isArray(s)) return s.map(toJsonSchema)
  if (s === null || typeof s !== 'object') return s
  const out: JsonObject = {}
  for (const [k, v] of Object.entries(s)) {
    if (k === 'example' || k.startsWith('x-') || k === 'discriminator' || k === 'xml' || k === 'externalDocs' || k === 'nullable') continue
    if (k === '$ref' && typeof v === 'string') {
      out.$ref = v.replace(/^#\/components\/schemas\//, `${SCHEMA_ID}#/definitions/`)
      continue
    }
    // Keys of these hold maps of names to schemas (or plain values): translate the schemas, keep the names.
    if ((k === 'properties' || k === 'patternProperties' || k === 'definitions') && v !== null && typeof v === 'object' && !Array.isArray(v)) {
      out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, toJsonSchema(sub)]))
      continue
    }
    if (k === 'enum' || k === 'required' || k === 'const' || k === 'default' || k === 'examples') { out[k] = v; continue }
    out[k] = toJsonSchema(v)
  }
  if (s.nullable === true) {
    if (Array.isArray(out.enum) && !out.enum.includes(null)) out.enum = [...out.enum, null]
    if (typeof out.type === 'string') out.type = [out.type, 'null']
    else if (Array.isArray(out.type)) { if (!out.type.includes('null')) out.type = [...out.type, 'null'] } else return { anyOf: [out, { type: 'null' }] }
  }
  return out
}

/**
 * Corrections to the published schema, applied to the compiled copy. Each names the component,
 * what changes, and why the schema is wrong there.
 */
export const ERRATA: ReadonlyArray<{ readonly schema: string | RegExp, readonly why: string, patch(s: JsonObject): void }> = [
  {
    schema: 'logpush_error_message',
    why: 'declared `format: date-time`, but it carries the failure text: its own description ("If not null, the job is ' +
      'currently failing ... Only the last failure is recorded"), cloudflare/cloudflare-typescript LogpushJob.error_message ' +
      '(a free-text string) and https://developers.cloudflare.com/logs/logpush/logpush-health/ (error_message explains the failure)',
    patch: (s) => { delete s.format }
  },
  {
    schema: 'logpush_kind',
    why: 'declared `enum: ["edge"]` with `default: ""`: the API answers `"kind": ""` for every ordinary job ' +
      '(cloudflare/cloudflare-typescript LogpushJob.kind is `\'\' | \'edge\'`; the operation examples in later ' +
      'cloudflare/api-schemas commits show `"kind": ""`), so the default itself would fail the enum',
    patch: (s) => { s.enum = ['', 'edge'] }
  },
  {
    schema: 'aaa_audit_logs_response_collection',
    why: 'declared `oneOf: [{errors, messages, result: [audit log], success}, aaa_api-response-common]`: every success ' +
      'envelope matches both branches (the first requires nothing), and `oneOf` fails when more than one matches, so no ' +
      'answer could ever be valid; read as `allOf` (a success envelope whose result is audit logs), which keeps both ' +
      'the envelope and the audit-log item schema in force (`anyOf` would let any success envelope through)',
    patch: (s) => { s.allOf = s.oneOf; delete s.oneOf }
  },
  {
    schema: 'logpush_destination_conf',
    why: 'declared `format: uri`, but a destination path may hold Logpush\'s `{DATE}` variable (Cloudflare\'s destination ' +
      'docs; a real job in cloudflare/terraform-provider-cloudflare#1019), and braces are not URI characters; checked as a ' +
      'URI once `{DATE}` is set aside (isDestinationConf)',
    patch: (s) => { s.format = 'cloudflare-destination-conf' }
  },
  {
    schema: /_messages$/,
    why: 'every `*_messages` item declares `code: {minimum: 1000}`, but the API\'s own rate-limit answer is code 971 ' +
      '"Please wait and consider throttling your request speed" (cloudflare/workers-sdk#10025 "[code: 971]"), which the ' +
      'operations\' 4XX answers include; the minimum is dropped, `code` stays a required integer',
    patch: (s) => {
      const code = ((s.items as JsonObject | undefined)?.properties as JsonObject | undefined)?.code as JsonObject | undefined
      if (code) delete code.minimum
    }
  }
]

function applyErrata(schemas: Record<string, JsonObject>): Record<string, JsonObject> {
  const copy = JSON.parse(JSON.stringify(schemas)) as Record<string, JsonObject>
  for (const e of ERRATA) {
    for (const [name, target] of Object.entries(copy)) {
      if (typeof e.schema === 'string' ? name === e.schema : e.schema.test(name)) e.patch(target)
    }
  }
  return copy
}

/**
 * Cloudflare's error responses are declared as the operation's success schema AND the failure
 * envelope (`allOf: [X_response, X_api-response-common-failure]`). The success side pins
 * `success: enum [true]`, the failure side `enum [false]`: no answer satisfies both, so the
 * intent can only be "the failure envelope". Such a schema is checked against that part alone.
 */
export function failureOnly(schema: Json): Json {
  if (schema === null || typeof schema !== 'object' || Array.isArray(schema) || !Array.isArray(schema.allOf)) return schema
  const failure = schema.allOf.find((s) => s !== null && typeof s === 'object' && !Array.isArray(s) && typeof s.$ref === 'string' && s.$ref.endsWith('api-response-common-failure'))
  return failure ?? schema
}

function resolve(doc: OpenApiDoc, o: JsonObject): JsonObject {
  // Parameters, request bodies and responses may be `$ref`s to components.* (not schemas).
  let cur = o
  for (let i = 0; i < 10 && typeof cur.$ref === 'string'; i++) {
    const m = /^#\/components\/([^/]+)\/(.+)$/.exec(cur.$ref)
    const next = m ? doc.components[m[1]]?.[m[2]] : undefined
    if (!next) throw new Error(`subset: unresolved ${cur.$ref}`)
    cur = next
  }
  return cur
}

function describe(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? []).map((e) => {
    const at = e.instancePath === '' ? '' : `${e.instancePath} `
    if (e.keyword === 'additionalProperties') return `${at}has '${String((e.params as { additionalProperty: string }).additionalProperty)}', which the schema does not allow`
    if (e.keyword === 'enum') return `${at}${e.message ?? ''}: ${JSON.stringify((e.params as { allowedValues: unknown }).allowedValues)}`
    return `${at}${e.message ?? e.keyword}`
  }).join('; ')
}

export interface OpenApiChecker {
  (r: RecordedRequest & { params: Record<string, string> }): string[]
  readonly operations: ReadonlyMap<string, { method: string, template: string }>
}

/**
 * Compiles the subset into the double's validator (see the file comment). Each operation's schemas are
 * compiled when a request first uses it (all of them take seconds, a test uses a few); `eager` compiles
 * everything now, which the double's own tests do so a schema ajv cannot compile fails there.
 */
export function compileOpenApi(doc: OpenApiDoc, opts: { eager?: boolean } = {}): OpenApiChecker {
  const definitions = Object.fromEntries(Object.entries(applyErrata(doc.components.schemas ?? {})).map(([n, s]) => [n, toJsonSchema(s)]))
  // Bodies are checked as sent; parameters arrive as strings and are typed first (coerceTypes,
  // 'array' so a single value may fill an array parameter). Both share the components.
  const bodies = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true })
  const params = new Ajv({ allErrors: true, strict: true, strictTypes: false, allowUnionTypes: true, coerceTypes: 'array' })
  for (const ajv of [bodies, params]) {
    addFormats(ajv)
    ajv.addFormat('cloudflare-destination-conf', { type: 'string', validate: isDestinationConf })
    ajv.addSchema({ $id: SCHEMA_ID, definitions } as never)
  }

  const byId = new Map<string, Located>()
  for (const [template, item] of Object.entries(doc.paths)) {
    const shared = (item.parameters as unknown as JsonObject[] | undefined) ?? []
    for (const [method, raw] of Object.entries(item)) {
      if (!HTTP_METHODS.has(method)) continue
      const op = raw as unknown as Operation
      const names: string[] = []
      const re = new RegExp('^' + template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\\?\{([^}]+)\\?\}/g, (_m, n: string) => { names.push(n); return '([^/]+)' }) + '$')
      const merged = new Map<string, Parameter>()
      for (const p of [...shared, ...(op.parameters ?? [])]) {
        const r = resolve(doc, p) as unknown as Parameter
        merged.set(`${r.in}:${r.name}`, r)
      }
      byId.set(op.operationId, { method: method.toUpperCase(), template, re, names, op, params: [...merged.values()] })
    }
  }

  const cache = new Map<string, ValidateFunction>()
  function compiled(key: string, ajv: Ajv, schema: () => Json): ValidateFunction {
    let v = cache.get(key)
    if (!v) { v = ajv.compile(schema() as object); cache.set(key, v) }
    return v
  }
  function paramSchema(l: Located, where: 'path' | 'query'): Json {
    const ps = l.params.filter((p) => p.in === where)
    return {
      type: 'object',
      properties: Object.fromEntries(ps.map((p) => [p.name, toJsonSchema(p.schema ?? {})])),
      required: ps.filter((p) => p.required === true || where === 'path').map((p) => p.name),
      additionalProperties: false
    }
  }
  function responseKey(op: Operation, status: number): string | undefined {
    const keys = Object.keys(op.responses)
    return keys.find((k) => k === String(status)) ??
      keys.find((k) => k.toUpperCase() === `${String(status)[0]}XX`) ??
      keys.find((k) => k === 'default')
  }
  /** The validator of one documented response's JSON body (undefined when it has none). */
  function answerValidator(id: string, op: Operation, key: string): ValidateFunction | undefined {
    const schema = jsonSchemaOf(resolve(doc, op.responses[key]).content)
    if (schema === undefined) return undefined
    // Error answers (4XX, 5XX and `default` when it stands for them) are checked as the failure envelope.
    const failure = /^[45]/.test(key) || key === 'default'
    return compiled(`${id} answer ${key}`, bodies, () => toJsonSchema(failure ? failureOnly(schema) : schema))
  }
  function jsonSchemaOf(content: Json | undefined): Json | undefined {
    if (content === null || typeof content !== 'object' || Array.isArray(content)) return undefined
    const media = Object.entries(content).find(([type]) => /^application\/json\b/.test(type))?.[1]
    if (media === undefined || media === null || typeof media !== 'object' || Array.isArray(media)) return undefined
    return media.schema
  }

  for (const [id, l] of opts.eager === true ? byId : []) {
    compiled(`${id} path`, params, () => paramSchema(l, 'path'))
    compiled(`${id} query`, params, () => paramSchema(l, 'query'))
    const rb = l.op.requestBody ? jsonSchemaOf(resolve(doc, l.op.requestBody).content) : undefined
    if (rb !== undefined) compiled(`${id} body`, bodies, () => toJsonSchema(rb))
    for (const key of Object.keys(l.op.responses)) answerValidator(id, l.op, key)
  }

  const check = (r: RecordedRequest & { params: Record<string, string> }): string[] => {
    const id = r.operationId!
    const l = byId.get(id)
    if (!l) return [`${id}: not in the OpenAPI subset (test/fixtures/cloudflare-openapi/subset.json)`]
    const out: string[] = []
    const say = (where: string, what: string): void => { out.push(`${id} ${where}: ${what}`) }
    if (r.method !== l.method) say('method', `${r.method} sent, the operation is ${l.method} ${l.template}`)
    const m = l.re.exec(r.path)
    if (!m) {
      say('path', `${r.path} does not match ${l.template}`)
    } else {
      const values = Object.fromEntries(l.names.map((n, i) => [n, decodeURIComponent(m[i + 1])]))
      const v = compiled(`${id} path`, params, () => paramSchema(l, 'path'))
      if (!v(values)) say('path', describe(v.errors))
    }
    const query: Record<string, string | string[]> = {}
    for (const [k, value] of new URLSearchParams(r.query)) {
      const had = query[k]
      query[k] = had === undefined ? value : Array.isArray(had) ? [...had, value] : [had, value]
    }
    const vq = compiled(`${id} query`, params, () => paramSchema(l, 'query'))
    if (!vq(query)) say('query', describe(vq.errors))

    const rb = l.op.requestBody ? resolve(doc, l.op.requestBody) : undefined
    const bodySchema = rb ? jsonSchemaOf(rb.content) : undefined
    if (r.body.length > 0) {
      if (!rb) say('request body', `${r.body.length} bytes sent, the operation takes no body`)
      else if (bodySchema !== undefined) {
        let parsed: unknown
        try { parsed = JSON.parse(r.body.toString('utf8')) } catch { say('request body', 'is not JSON') }
        if (parsed !== undefined) {
          const vb = compiled(`${id} body`, bodies, () => toJsonSchema(bodySchema))
          if (!vb(parsed)) say('request body', describe(vb.errors))
        }
      }
    } else if (rb?.required === true && bodySchema !== undefined && Object.keys(bodySchema as object).length > 0) {
      say('request body', 'missing; the operation requires one')
    }

    const key = responseKey(l.op, r.status)
    if (key === undefined) {
      say(`answer ${r.status}`, `status not documented (documented: ${Object.keys(l.op.responses).join(', ')})`)
    } else if (r.answer !== undefined) {
      const va = answerValidator(id, l.op, key)
      if (va && !va(r.answer)) say(`answer ${r.status}`, describe(va.errors))
    }
    return out
  }
  return Object.assign(check, { operations: new Map([...byId].map(([k, l]) => [k, { method: l.method, template: l.template }])) })
}

let shared: OpenApiChecker | undefined

/** Sets the double's validator to the committed subset (compiled once per process). */
export function attachOpenApi(double: CloudflareDouble, doc?: OpenApiDoc): OpenApiChecker {
  const checker = doc ? compileOpenApi(doc) : (shared ??= compileOpenApi(loadSubset()))
  double.validator = checker
  return checker
}
