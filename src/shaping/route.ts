// Routing by field: a field of each line (ZoneName, ClientRequestHost, the account a collector
// reads) chooses a tenant through a table, and the tenant chooses the Elasticsearch namespace,
// the Splunk index and the file folder its lines go to. One tenant's lines never reach another
// tenant's target: a batch is delivered once per tenant it holds, each delivery carrying only
// that tenant's lines (the others read as empty lines, which every destination skips but counts,
// so checkpoints keep naming the segment's lines).
import { ConfigInvalid } from '../errors.js'
import type { DatasetSchema } from '../dataset-schema.js'
import type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink } from '../delivery.js'
import { LineView } from './blocks.js'

/** Where one tenant's lines go; each absent part leaves the destination's own setting. */
export interface Route {
  readonly tenant: string
  readonly namespace: string
  readonly index: string
  readonly folder: string
}

export interface TenantConfig {
  readonly elasticsearch?: { readonly namespace?: string }
  readonly splunk?: { readonly index?: string }
  readonly file?: { readonly folder?: string }
}

export interface RoutingRule {
  readonly name: string
  readonly sinks?: readonly string[]
  readonly datasets: readonly string[]
  readonly field: string
  /** Field value -> tenant name. */
  readonly table?: Readonly<Record<string, string>>
  /** A value not in the table is itself the tenant name, when it makes valid names. */
  readonly byValue?: boolean
  /** The tenant for values not in the table (and invalid ones); absent: the destination's own target. */
  readonly default?: string
}

// Elasticsearch's data stream naming scheme: the namespace is lowercase, without '-' (it separates
// the parts of the name), at most 100 bytes. Splunk: index names are lowercase letters, digits,
// '_' and '-', not starting with '_' or '-', without "kvstore". A tenant name used for all three
// (and as a folder) satisfies all: lowercase letters, digits and '_', starting with a letter or digit.
export const ES_NAMESPACE = /^[a-z0-9_]{1,100}$/
export const SPLUNK_INDEX = /^(?!.*kvstore)[a-z0-9][a-z0-9_-]{0,79}$/
export const FOLDER = /^[a-z0-9][a-z0-9_-]{0,99}$/
export const TENANT = /^[a-z0-9][a-z0-9_]{0,79}$/

/** Destinations with a tenant target (namespace, index or folder); the others cannot keep tenants apart. */
const ROUTABLE: ReadonlySet<string> = new Set(['elasticsearch', 'opensearch', 'splunk', 'file', 'discard'])

/**
 * The destinations that can keep tenants apart in this configuration: Kafka only when every topic
 * it may write (KAFKA_TOPIC and each dataset's own) names {tenant}; otherwise every tenant's lines
 * of a dataset would meet in one topic.
 */
export function routableSinks(kafkaTopics: readonly string[]): ReadonlySet<string> {
  return kafkaTopics.length > 0 && kafkaTopics.every((t) => t.includes('{tenant}')) ? new Set([...ROUTABLE, 'kafka']) : ROUTABLE
}

/** Tenants whose value-derived names a batch may hold before the rest go to the default: each is a delivery of the batch. */
export const MAX_TENANTS_PER_BATCH = 64

export const tenantsSchema = {
  type: 'object',
  additionalProperties: {
    type: 'object',
    additionalProperties: false,
    properties: {
      elasticsearch: { type: 'object', additionalProperties: false, properties: { namespace: { type: 'string' } } },
      splunk: { type: 'object', additionalProperties: false, properties: { index: { type: 'string' } } },
      file: { type: 'object', additionalProperties: false, properties: { folder: { type: 'string' } } }
    }
  }
} as const

/** CONFIG_FILE tokens: a Logpush token (from an environment variable) that names its tenant. */
export interface TenantToken {
  readonly tokenEnv: string
  readonly tenant: string
}

export const tenantTokensSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['tokenEnv', 'tenant'],
    properties: { tokenEnv: { type: 'string', minLength: 1 }, tenant: { type: 'string', minLength: 1 } }
  }
} as const

/** The tokens that name tenants, read from the environment and checked against `tenants`. */
export function tenantTokens(list: readonly TenantToken[], tenants: Readonly<Record<string, TenantConfig>>, env: NodeJS.ProcessEnv): Array<{ token: string, tenant: string }> {
  return list.map((t) => {
    const where = `CONFIG_FILE tokens (${t.tokenEnv})`
    if (!(t.tenant in tenants)) throw new ConfigInvalid(`${where} names tenant "${t.tenant}", which tenants does not list`)
    const token = env[t.tokenEnv]?.trim()
    if (!token) throw new ConfigInvalid(`${where}: the environment variable ${t.tokenEnv} is not set`)
    if (token.length < 16) throw new ConfigInvalid(`${where}: a token of at least 16 characters`)
    return { token, tenant: t.tenant }
  })
}

/**
 * The routes of the tenants, by name (their names checked as buildRouters checks them). `sinks`:
 * the destinations tokens' tenants' batches go to, each of which must have a tenant target.
 */
export function tenantRoutes(tenants: Readonly<Record<string, TenantConfig>>, sinks: readonly string[] = [], routable: ReadonlySet<string> = ROUTABLE): Map<string, Route> {
  const unrouted = sinks.filter((s) => !routable.has(s))
  if (unrouted.length > 0) throw new ConfigInvalid(`CONFIG_FILE tokens name tenants, but SINKS has ${unrouted.join(', ')}, which has no tenant target: every tenant's batches would meet there${unrouted.includes('kafka') ? ' (put {tenant} in KAFKA_TOPIC and in every dataset\'s own topic)' : ''}`)
  return new Map(Object.entries(tenants).map(([tenant, t]) => [tenant, routeOf(tenant, t, `CONFIG_FILE tenants.${tenant}`)]))
}

export const routingSchema = {
  type: 'array',
  items: {
    type: 'object',
    additionalProperties: false,
    required: ['name', 'datasets', 'field'],
    properties: {
      name: { type: 'string', pattern: '^[A-Za-z0-9_.:-]{1,64}$' },
      sinks: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
      datasets: { type: 'array', items: { type: 'string' }, minItems: 1, uniqueItems: true },
      field: { type: 'string', minLength: 1 },
      table: { type: 'object', additionalProperties: { type: 'string' } },
      byValue: { type: 'boolean' },
      default: { type: 'string' }
    }
  }
} as const

function routeOf(tenant: string, t: TenantConfig | undefined, where: string): Route {
  const route = { tenant, namespace: t?.elasticsearch?.namespace ?? tenant, index: t?.splunk?.index ?? tenant, folder: t?.file?.folder ?? tenant }
  if (!ES_NAMESPACE.test(route.namespace)) throw new ConfigInvalid(`${where}: "${route.namespace}" is no Elasticsearch namespace (lowercase letters, digits, _; at most 100)`)
  if (!SPLUNK_INDEX.test(route.index)) throw new ConfigInvalid(`${where}: "${route.index}" is no Splunk index name (lowercase letters, digits, _ and -, not first; no "kvstore")`)
  if (!FOLDER.test(route.folder)) throw new ConfigInvalid(`${where}: "${route.folder}" is no folder name here (lowercase letters, digits, _ and -, not first)`)
  return route
}

type Outcome = 'default' | 'invalid'

/** One routing rule compiled for one dataset. */
export class Router {
  readonly counts = { default: 0, invalid: 0 }
  constructor (
    readonly name: string,
    private readonly field: string,
    private readonly table: ReadonlyMap<string, Route>,
    private readonly byValue: boolean,
    private readonly fallback: Route | null,
    /** The configured tenants: a value naming one takes its namespace, index and folder. */
    private readonly tenants: ReadonlyMap<string, Route> = new Map()
  ) {}

  /** The route of a line as stored (null: the destination's own target), counting what goes to the default. */
  routeOf(original: string, count: boolean, seen?: Set<string>): Route | null {
    const v = (JSON.parse(original) as Record<string, unknown>)[this.field]
    const key = typeof v === 'string' ? v : v === undefined || v === null ? null : JSON.stringify(v)
    if (key !== null) {
      const r = this.table.get(key)
      if (r) return r
      if (this.byValue) {
        // A value naming a configured tenant is that tenant, with its own targets: a route made
        // from the name would send part of its lines elsewhere (whichever of the two came first).
        const configured = this.tenants.get(key)
        if (configured) return configured
        if (TENANT.test(key) && (seen === undefined || seen.has(key) || seen.size < MAX_TENANTS_PER_BATCH)) return { tenant: key, namespace: key, index: key, folder: key }
        if (count) this.counts.invalid++
        return this.fallback
      }
    }
    if (count) this.counts.default++
    return this.fallback
  }

  describe(): string {
    return `${this.name}: by ${this.field} to ${this.table.size} tenants${this.byValue ? ' or the value' : ''}, else ${this.fallback?.tenant ?? 'the destination\'s own'}`
  }
}

export type Routers = ReadonlyMap<string, ReadonlyMap<string, Router>>

export function buildRouters(rules: readonly RoutingRule[], tenants: Readonly<Record<string, TenantConfig>>, sinks: readonly string[], datasets: ReadonlyMap<string, { schema: DatasetSchema }>, routable: ReadonlySet<string> = ROUTABLE): Routers {
  const routes = new Map<string, Route>()
  for (const [tenant, t] of Object.entries(tenants)) {
    if (!TENANT.test(tenant)) throw new ConfigInvalid(`CONFIG_FILE tenants: "${tenant}" is no tenant name (lowercase letters, digits and _, starting with a letter or digit; at most 80)`)
    routes.set(tenant, routeOf(tenant, t, `CONFIG_FILE tenants.${tenant}`))
  }
  const tenantRoute = (name: string, where: string): Route => {
    const r = routes.get(name)
    if (!r) throw new ConfigInvalid(`${where} names tenant "${name}", which tenants does not list`)
    return r
  }
  const out = new Map<string, Map<string, Router>>()
  for (const rule of rules) {
    const where = `CONFIG_FILE routing rule "${rule.name}"`
    for (const s of rule.sinks ?? []) if (!sinks.includes(s)) throw new ConfigInvalid(`${where} names destination "${s}", which is not in SINKS (${sinks.join(',')})`)
    // Kafka without {tenant} in its topics has no tenant target: routed lines of every tenant would meet there.
    const unrouted = (rule.sinks ?? sinks).filter((s) => !routable.has(s))
    if (unrouted.length > 0) throw new ConfigInvalid(`${where} applies to ${unrouted.join(', ')}, which has no tenant target (routing sends to Elasticsearch/OpenSearch namespaces, Splunk indexes, file folders and Kafka topics naming {tenant}): name the destinations in "sinks", or put {tenant} in KAFKA_TOPIC`)
    const table = new Map(Object.entries(rule.table ?? {}).map(([value, tenant]) => [value, tenantRoute(tenant, `${where} table["${value}"]`)]))
    const fallback = rule.default === undefined ? null : tenantRoute(rule.default, `${where} default`)
    for (const dataset of rule.datasets) {
      const d = datasets.get(dataset)
      if (!d) throw new ConfigInvalid(`${where} names dataset "${dataset}", which has no schema`)
      if (!d.schema.properties[rule.field]) throw new ConfigInvalid(`${where} routes by field "${rule.field}", which dataset ${dataset} does not have`)
      for (const sink of rule.sinks ?? sinks) {
        let bySet = out.get(sink)
        if (!bySet) out.set(sink, (bySet = new Map()))
        if (bySet.has(dataset)) throw new ConfigInvalid(`${where}: destination ${sink} already routes dataset ${dataset} by rule "${bySet.get(dataset)!.name}"`)
        bySet.set(dataset, new Router(rule.name, rule.field, table, rule.byValue ?? false, fallback, routes))
      }
    }
  }
  return out
}

/** One tenant's view of a batch: its lines, the others' read as empty lines. */
class TenantBatch extends LineView {
  constructor (source: DeliveryBatch, private readonly router: Router, readonly route: Route | null, private readonly seen: Set<string>) {
    super(source)
  }

  async * lines(): AsyncGenerator<string> {
    for await (const line of this.source.lines()) {
      const original = line.length === 0 ? '' : this.source.originalOf?.(line) ?? line
      const mine = line.length > 0 && sameRoute(this.router.routeOf(original, false, this.seen), this.route)
      this.last = { line: mine ? line : '', original }
      yield this.last.line
    }
  }
}

function sameRoute(a: Route | null, b: Route | null): boolean {
  return a === b || (a !== null && b !== null && a.tenant === b.tenant)
}

/**
 * A destination with routing: each batch is delivered once per tenant it holds, in the order they
 * first appear. Only the last delivery moves the checkpoint on; those before it dead-letter what
 * the destination refuses and otherwise keep the checkpoint where it was, so a failure part-way
 * repeats the batch's tenants from the first (Elasticsearch recognises its documents by _id; the
 * file destination cuts back to its checkpoint; Splunk may get the earlier tenants' lines again).
 */
export class RoutingSink implements Sink {
  constructor (private readonly inner: Sink, private readonly routers: ReadonlyMap<string, Router>, private readonly count: (dataset: string, rule: string, outcome: Outcome, n: number) => void) {}

  get name(): string { return this.inner.name }
  init(state: unknown): Promise<void> { return this.inner.init(state) }
  startState(): unknown { return this.inner.startState?.() }
  // Whether its checkpoints may lag, and the written ones (the files gzip what they no longer
  // name): the wrapped destination's, or routing would leave every rotated file uncompressed.
  get replaysWithoutDuplicates(): boolean | undefined { return this.inner.replaysWithoutDuplicates }
  checkpointed(state: unknown): void { this.inner.checkpointed?.(state) }
  health(): Record<string, unknown> { return this.inner.health?.() ?? {} }
  close(): Promise<void> { return this.inner.close() }

  describe(): string {
    return [...this.routers].map(([dataset, r]) => `${dataset} [${r.describe()}]`).join('; ')
  }

  async deliver(batch: DeliveryBatch, progress: Progress, signal: AbortSignal): Promise<DeliveryResult> {
    const router = this.routers.get(batch.dataset)
    // A batch a tenant's token sent stays that tenant's, whatever its lines' fields say.
    if (!router || batch.route) return await this.inner.deliver(batch, progress, signal)
    // The tenants of the batch, in order, and how many lines went to the default.
    const before = { ...router.counts }
    const order: Array<Route | null> = []
    const seen = new Set<string>()
    for await (const line of batch.lines()) {
      if (line.length === 0) continue
      const r = router.routeOf(batch.originalOf?.(line) ?? line, true, seen)
      const key = r?.tenant ?? null
      if (key === null ? !order.includes(null) : !seen.has(key)) {
        order.push(r)
        if (key !== null) seen.add(key)
      }
    }
    const defaults = router.counts.default - before.default
    const invalid = router.counts.invalid - before.invalid
    if (order.length === 0) order.push(null)
    let delivered = 0
    let duplicates = 0
    const rejected: Rejection[] = []
    let state: unknown
    for (const [i, route] of order.entries()) {
      const last = i === order.length - 1
      const view = new TenantBatch(batch, router, route, seen)
      const hold: Progress = last ? progress : async (_lines, refused) => { await progress(batch.from, refused) }
      const r = await this.inner.deliver(view, hold, signal)
      delivered += r.delivered
      duplicates += r.duplicates
      if (last) rejected.push(...r.rejected)
      else if (r.rejected.length > 0) await progress(batch.from, r.rejected)
      state = r.state
    }
    if (defaults > 0) this.count(batch.dataset, router.name, 'default', defaults)
    if (invalid > 0) this.count(batch.dataset, router.name, 'invalid', invalid)
    return { delivered, duplicates, rejected, ...(state !== undefined ? { state } : {}) }
  }
}
