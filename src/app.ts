// The composition root: the one file that knows every room and wires them.
import { existsSync } from 'node:fs'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import type { Server as TlsServer } from 'node:tls'
import { join, resolve } from 'node:path'
import { createHash, randomUUID } from 'node:crypto'
import { STATUS_CODES } from 'node:http'
import { availableParallelism } from 'node:os'
import Fastify, { type FastifyInstance } from 'fastify'
import compress from '@fastify/compress'
import type { Logger } from 'pino'
import type { Config, DatasetRoute } from './config/index.js'
import { ConfigInvalid, DataDirInUse } from './errors.js'
import { ChallengeLog, TokenSet, checkToken, presentedToken, destinationConf, ensureTokens, hecPlugin, intakePlugin, type CommitResult } from './intake/index.js'
import { LineBudget, ParsePool, clip, loadDatasets, schemaSnapshot, type Dataset } from './pipeline/index.js'
import { Forwarder, Spool, UNRECOGNISED_DATASET, type DeadLetter, type SpoolBatch } from './spool/index.js'
import { FileSink, DiscardSink, RotatingFiles, type Rejection, type Sink } from './sinks/index.js'
import { loadExtraSinks } from './sinks/extra.js'
import { Stats, cached, healthPlugin, metricsPlugin, type Readiness } from './observability/index.js'
import { schemasDir, version } from './paths.js'
import type { BucketSource, ObjectIngestOptions, UnbuiltSource } from './sources/bucket/index.js'
import type { Collector, UnbuiltCollector } from './sources/cloudflare/index.js'
import { RecentDeadLetters, StatusAccess, statusPlugin } from './status/index.js'
import { DirLock, DirectoryInUse, serviceLockPath } from './data-dir-lock.js'
import { intakeSourcetypes, loadSplunkSourcetypes, sinkSourcetypes, type SplunkSourcetypes } from './splunk-sourcetypes.js'
import { watchdogConfigured } from './watchdog/configured.js'
import { buildRouters, buildShapers, tenantRoutes, describeShaping, RoutingSink, schemasForElasticsearch, shapeFor, type Shapers } from './shaping/index.js'

export interface BuiltApp {
  readonly app: FastifyInstance
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly stats: Stats
  /** Set when this start generated the token: the caller shows it once, never in a log. */
  readonly generatedToken: string | null
  readonly tokenPath: string | null
  /** Re-reads TLS_CERT_FILE and TLS_KEY_FILE for new connections; false when TLS is off. */
  reloadTls(): Promise<boolean>
  /** Resolves true once every destination has everything spooled so far (tests, shutdown). */
  drained(timeoutMs: number): Promise<boolean>
  /** The stop has begun: /health answers 503 and answers close their connection; uploads are still served. */
  beginShutdown(): void
  close(graceMs?: number): Promise<void>
}

async function createSinks(
  config: Config,
  ctx: { dataDir: string, rotation: { rotateBytes: number, rotateMs: number, gzipRotated: boolean, log: Logger }, datasets: ReadonlyMap<string, Dataset>, log: Logger, splunkSourcetypes: SplunkSourcetypes, ecsDir: string, shapers: Shapers }
): Promise<Sink[]> {
  // The names and the namespace were checked against their patterns in config.
  const names = config.sinks.split(',')
  const { ElasticsearchSink, loadEcs } = names.includes('elasticsearch') ? await import('./sinks/elasticsearch/index.js') : { ElasticsearchSink: null, loadEcs: null }
  const { SplunkHecSink } = names.includes('splunk') ? await import('./sinks/splunk-hec/index.js') : { SplunkHecSink: null }
  const extra = await loadExtraSinks(config, names, ctx)
  /** A per-dataset value from CONFIG_FILE's routes, for the datasets that set it. */
  const perDataset = (pick: (r: DatasetRoute) => string | undefined): Map<string, string> =>
    new Map(Object.entries(config.routes).flatMap(([d, r]) => { const v = pick(r); return v ? [[d, v]] : [] }))
  return [...new Set(names)].map((name): Sink => {
    if (name === 'file') return new FileSink({ ...ctx.rotation, dir: join(ctx.dataDir, 'events') })
    if (name === 'discard') return new DiscardSink()
    const built = extra.get(name)
    if (built) return built
    if (name === 'splunk' && SplunkHecSink) {
      return new SplunkHecSink({
        url: config.splunkHecUrl,
        token: config.splunkHecToken,
        caFile: config.splunkHecCaFile,
        tlsVerify: config.splunkHecTlsVerify,
        sourcetype: config.splunkHecSourcetype !== '' ? config.splunkHecSourcetype : ctx.splunkSourcetypes.default,
        source: config.splunkHecSource,
        host: config.splunkHecHost,
        defaultIndex: config.splunkHecIndex,
        indexes: perDataset((r) => r.splunk?.index),
        sourcetypes: sinkSourcetypes(ctx.splunkSourcetypes, ctx.datasets.keys(), config.splunkHecSourcetype, perDataset((r) => r.splunk?.sourcetype)),
        sources: perDataset((r) => r.splunk?.source),
        batchBytes: config.splunkHecBatchBytes,
        gzip: config.splunkHecGzip,
        retryMs: config.splunkHecRetryMs,
        requestTimeoutMs: config.splunkHecRequestTimeoutMs,
        ack: config.splunkHecAck,
        ackPollMs: config.splunkHecAckPollMs,
        ackTimeoutMs: config.splunkHecAckTimeoutMs,
        eventTimeFields: new Map([...ctx.datasets].map(([k, d]) => [k, d.eventTimeField])),
        log: ctx.log.child({ sink: 'splunk' })
      })
    }
    if (!ElasticsearchSink || !loadEcs) throw new Error(`unknown destination ${name}`)
    return new ElasticsearchSink({
      url: config.elasticsearchUrl,
      apiKey: config.elasticsearchApiKey,
      username: config.elasticsearchUsername,
      password: config.elasticsearchPassword,
      caFile: config.elasticsearchCaFile,
      tlsVerify: config.elasticsearchTlsVerify,
      namespace: config.elasticsearchNamespace,
      namespaces: perDataset((r) => r.elasticsearch?.namespace),
      bulkBytes: config.elasticsearchBulkBytes,
      concurrency: config.elasticsearchBulkConcurrency,
      retryMs: config.elasticsearchRetryMs,
      requestTimeoutMs: config.elasticsearchRequestTimeoutMs,
      modes: { indexMode: config.elasticsearchIndexMode as 'standard' | 'logsdb', sourceMode: config.elasticsearchSourceMode as 'stored' | 'synthetic' },
      dataRetention: config.elasticsearchDataRetention,
      // A field this destination gets hashed or masked is mapped as a keyword, not an ip (src/shaping).
      datasets: schemasForElasticsearch(ctx.datasets, ctx.shapers),
      ecs: loadEcs(ctx.ecsDir),
      format: config.elasticsearchFormat as 'ecs' | 'elastic-integration',
      log: ctx.log.child({ sink: 'elasticsearch' })
    })
  })
}

/**
 * Lines a destination refused for good, as dead-letter text per dataset with counts per code.
 * One pass, each line appended once: O(1) per rejection however many a delivery has.
 */
export function groupDeliveryDeadLetters(rejected: readonly Rejection[], time: string): Map<string, { text: string, byCode: Map<string, number> }> {
  const out = new Map<string, { lines: string[], byCode: Map<string, number> }>()
  for (const r of rejected) {
    let group = out.get(r.dataset)
    if (!group) out.set(r.dataset, (group = { lines: [], byCode: new Map() }))
    group.lines.push(JSON.stringify({ time, dataset: r.dataset, stage: 'delivery', code: r.code, reason: r.reason, sink: r.sink, raw: r.raw } satisfies DeadLetter))
    group.byCode.set(r.code, (group.byCode.get(r.code) ?? 0) + 1)
  }
  return new Map([...out].map(([dataset, g]) => [dataset, { text: g.lines.join('\n') + '\n', byCode: g.byCode }]))
}

const REQUEST_ID = /^[\w.:-]{1,128}$/

/** How a bucket object or a collector's window goes through the pipeline: the limits of a pushed batch. */
function objectIngestOptions(
  config: Config,
  ctx: { spool: Spool, stats: Stats, pool: ParsePool | null, lineBudget: LineBudget, commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult> }
): ObjectIngestOptions {
  return {
    spool: ctx.spool,
    stats: ctx.stats,
    pool: ctx.pool,
    maxLineBytes: config.maxLineBytes,
    maxInflatedBytes: config.maxInflatedBytes,
    driftFieldsMax: config.driftFieldsMax,
    driftFieldNameMaxChars: config.driftFieldNameMaxChars,
    maxLineDepth: config.maxLineDepth,
    lineBudget: ctx.lineBudget,
    commit: ctx.commit
  }
}

/** Bucket sources from CONFIG_FILE; the S3 client is loaded only when one is configured. */
async function createSources(
  config: Config,
  ctx: { dataDir: string, datasets: ReadonlyMap<string, Dataset>, spool: Spool, stats: Stats, pool: ParsePool | null, lineBudget: LineBudget, commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult>, challenges: ChallengeLog, log: Logger }
): Promise<Array<BucketSource | UnbuiltSource>> {
  if (config.sources.length === 0) return []
  const { BucketSource, UnbuiltSource, createBucketClient, ingestObject } = await import('./sources/bucket/index.js')
  const objects = objectIngestOptions(config, ctx)
  const sources = config.sources.map((sc): BucketSource | UnbuiltSource => {
    try {
      return build(sc)
    } catch (err) {
      // One source that cannot be built stops alone, shown as stopped; the others run.
      ctx.log.error({ source: sc.name, err: { message: (err as Error).message } }, 'Could not build this bucket source; it stays stopped.')
      return new UnbuiltSource(sc.name, sc, err)
    }
  })
  // Each init stops only its own source (an unreadable progress record): none throws.
  for (const s of sources) await s.init()
  return sources

  function build(sc: Config['sources'][number]): BucketSource {
    const dataset = ctx.datasets.get(sc.dataset)!
    return new BucketSource({
      config: sc,
      client: createBucketClient(sc),
      dir: join(ctx.dataDir, 'sources', sc.name),
      ingest: (body, digest, label) => ingestObject(objects, dataset, body, digest, label),
      refusal: () => ctx.spool.refusal(),
      onChallenge: (c) => ctx.challenges.add({ dataset: c.dataset, receivedAt: new Date().toISOString(), requestId: `s3://${sc.bucket}/${c.key}`, token: c.token }),
      log: ctx.log
    })
  }
}

/** Pull collectors from CONFIG_FILE; the SDK is loaded only when one is configured. */
async function createCollectors(
  config: Config,
  ctx: { dataDir: string, schemasDir: string, datasets: ReadonlyMap<string, Dataset>, spool: Spool, stats: Stats, pool: ParsePool | null, lineBudget: LineBudget, commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult>, log: Logger }
): Promise<Array<Collector | UnbuiltCollector>> {
  if (config.collectors.length === 0) return []
  const { Collector, UnbuiltCollector, fetcherFor } = await import('./sources/cloudflare/index.js')
  const { ingestObject } = await import('./sources/bucket/index.js')
  const { readCredentials } = await import('./cloudflare-api/client.js')
  const { collectorDataset } = await import('./config/index.js')
  const objects = objectIngestOptions(config, ctx)
  const collectors = config.collectors.map((cc): Collector | UnbuiltCollector => {
    try {
      return build(cc)
    } catch (err) {
      // One collector that cannot be built stops alone, shown as stopped; the others run.
      ctx.log.error({ collector: cc.name, err: { message: (err as Error).message } }, 'Could not build this collector; it stays stopped.')
      return new UnbuiltCollector(cc.name, cc.type, collectorDataset[cc.type], err)
    }
  })
  for (const c of collectors) await c.init()
  return collectors

  function build(cc: Config['collectors'][number]): Collector {
    const dataset = ctx.datasets.get(collectorDataset[cc.type])
    if (!dataset) throw new ConfigInvalid(`CONFIG_FILE collector "${cc.name}" feeds dataset "${collectorDataset[cc.type]}", which has no schema`)
    const credentials = readCredentials(`CONFIG_FILE collectors.${cc.name}.auth`, cc.auth)
    return new Collector({
      config: cc,
      dataset: dataset.name,
      fetcher: fetcherFor(cc, { baseUrl: config.cloudflareApiUrl, credentials, schemasDir: ctx.schemasDir, dataset: dataset.name, log: ctx.log, stateDir: join(ctx.dataDir, 'collectors', cc.name), retryAfterMaxMs: config.sourceRetryAfterMaxSeconds * 1000 }),
      dir: join(ctx.dataDir, 'collectors', cc.name),
      retryAfterMaxMs: config.sourceRetryAfterMaxSeconds * 1000,
      // The same path as a bucket object: gunzip, split, validate, spool, commit under the window's digest.
      ingest: (body, digest, label) => ingestObject(objects, dataset, body, digest, label),
      refusal: () => ctx.spool.refusal(),
      log: ctx.log
    })
  }
}

/** Where a dataset's Logpush jobs live, from its schema's "x-scope" (a name or a list); zone when it says nothing. */
function jobScopes(declared: unknown): Array<'zone' | 'account'> {
  const list = (Array.isArray(declared) ? declared : [declared]).filter((s): s is 'zone' | 'account' => s === 'zone' || s === 'account')
  return list.length > 0 ? [...new Set(list)] : ['zone']
}

function httpReason(status: number): string {
  return STATUS_CODES[status] ?? 'Error'
}

async function readTls(config: Config): Promise<{ cert: Buffer, key: Buffer }> {
  return { cert: await readFile(config.tlsCertFile), key: await readFile(config.tlsKeyFile) }
}

export async function buildApp(config: Config, log: Logger): Promise<BuiltApp> {
  // The Logpush job watchdog (off unless WATCHDOG_API_TOKEN and zones/accounts are set), built
  // first so half a configuration stops the start before anything is opened; it polls once the
  // service listens, only reads Cloudflare's API and shows what it finds.
  // Its module (and Cloudflare's SDK, ~50 MB of memory) is loaded only when it is configured.
  const watchdog = watchdogConfigured(config) ? (await import('./watchdog/index.js')).createWatchdog(config, log) : null
  const dataDir = resolve(config.dataDir)
  // One process per data directory: two spools on one directory would reuse sequence numbers.
  await mkdir(dataDir, { recursive: true })
  const lock = await DirLock.acquire(serviceLockPath(dataDir)).catch((err: unknown) => {
    throw err instanceof DirectoryInUse ? new DataDirInUse(err.message) : err
  })
  const schemas = config.schemasDir !== '' ? resolve(config.schemasDir) : schemasDir
  const datasets = loadDatasets(schemas)
  // A schemas directory of the operator's own may leave the Splunk sourcetypes to ours.
  const splunkSourcetypes = loadSplunkSourcetypes(existsSync(join(schemas, 'splunk', 'sourcetypes.json')) ? schemas : schemasDir)
  // Likewise the ECS mappings: the operator's, when their schemas directory has them.
  const ecsDir = existsSync(join(schemas, 'ecs', '_types.yaml')) ? join(schemas, 'ecs') : join(schemasDir, 'ecs')
  const stats = new Stats(datasets.keys(), config.driftFieldsMax, config.driftFieldNameMaxChars)
  const tokenInfo = await ensureTokens(config.tokens, dataDir)
  const tokens = new TokenSet([...tokenInfo.tokens, ...config.tenantTokens.map((t) => t.token)])
  // A token that names its tenant (CONFIG_FILE tokens): its batches are kept with the tenant's name.
  const tenantByToken = new Map(config.tenantTokens.map((t) => [tokenDigest(t.token), t.tenant]))
  const tenantOf = tenantByToken.size === 0 ? undefined : (headers: Record<string, string | string[] | undefined>): string | undefined => {
    const token = presentedToken(headers, config.authHeader)
    return token === undefined ? undefined : tenantByToken.get(tokenDigest(token))
  }
  const routesOfTenants = tenantRoutes(config.tenants)

  const spool = new Spool({
    dir: join(dataDir, 'spool'),
    highWatermarkBytes: config.spoolHighWatermarkBytes,
    lowWatermarkBytes: config.spoolLowWatermarkBytes,
    minFreeBytes: config.spoolMinFreeBytes,
    dedupeSeconds: config.dedupeWindowSeconds,
    dedupeMaxEntries: config.dedupeMaxEntries,
    log
  })
  await spool.init()
  const diskTimer = setInterval(() => { void spool.refreshDisk() }, 5000)
  diskTimer.unref()
  const rotation = { rotateBytes: config.eventsRotateBytes, rotateMs: config.eventsRotateSeconds * 1000, gzipRotated: config.eventsGzipRotated, log }
  const deadLetters = new RotatingFiles({ ...rotation, dir: join(dataDir, 'dead-letter'), kind: 'dead-letter' })
  await deadLetters.init()
  const recentDeadLetters = new RecentDeadLetters(config.statusDeadLettersKept, new Set([...datasets.keys(), UNRECOGNISED_DATASET]))

  for (const dataset of [...Object.keys(config.routes), ...Object.values(config.hecSourcetypes)]) {
    if (!datasets.has(dataset)) throw new ConfigInvalid(`CONFIG_FILE names dataset "${dataset}", which has no schema; known: ${[...datasets.keys()].join(', ')}`)
  }
  // Shaping is checked against the schemas (and its keys read) before anything is delivered.
  const sinkNames = [...new Set(config.sinks.split(','))]
  const shapers = buildShapers(config.shaping, sinkNames, datasets)
  const routers = buildRouters(config.routing, config.tenants, sinkNames, datasets)
  // A destination with routing delivers each batch once per tenant it holds (src/shaping/route.ts).
  const routed = (sink: Sink): Sink => {
    const bySet = routers.get(sink.name)
    return bySet ? new RoutingSink(sink, bySet, (dataset, rule, outcome, n) => stats.countShaped(sink.name, dataset, rule, outcome, n)) : sink
  }
  const forwarders = (await createSinks(config, { dataDir, rotation, datasets, log, splunkSourcetypes, ecsDir, shapers })).map(routed).map((sink) => new Forwarder({
    spool,
    sink,
    log,
    ...(tenantOf ? { tenantRoute: (tenant: string) => routesOfTenants.get(tenant) ?? null } : {}),
    shape: shapeFor(sink.name, shapers, (dataset, rule, outcome, n) => stats.countShaped(sink.name, dataset, rule, outcome, n)),
    shaping: [describeShaping(sink.name, shapers), sink instanceof RoutingSink ? `routing: ${sink.describe()}` : undefined].filter(Boolean).join('; ') || undefined,
    accepts: (dataset) => config.routes[dataset]?.sinks?.includes(sink.name) ?? true,
    retryMaxMs: config.deliveryRetryMaxMs,
    onDelivered: (dataset, r, seconds) => stats.countDelivery(sink.name, dataset, r, seconds),
    async deadLetter(rejected) {
      const time = new Date().toISOString()
      for (const [dataset, group] of groupDeliveryDeadLetters(rejected, time)) {
        await deadLetters.appendText(dataset, group.text)
        for (const [code, n] of group.byCode) stats.dataset(dataset).countRejected(code, n)
      }
      // The status page's ring keeps the newest few per dataset: only those are looked at.
      const newest = new Map<string, Rejection[]>()
      for (let i = rejected.length - 1; i >= 0; i--) {
        const r = rejected[i]!
        const kept = newest.get(r.dataset) ?? []
        if (kept.length < config.statusDeadLettersKept) newest.set(r.dataset, [r, ...kept])
      }
      for (const [dataset, group] of newest) {
        for (const r of group) recentDeadLetters.note(dataset, { time, stage: 'delivery', code: r.code, reason: r.reason, sink: r.sink, raw: r.raw })
      }
    }
  }))
  // Every destination registers its checkpoint before any delivers: otherwise the first one could
  // have segments deleted that a later one still needs.
  spool.expectConsumers(forwarders.map((f) => f.name))
  for (const f of forwarders) await f.prepare()
  for (const f of forwarders) f.start()

  /** Dead letters first, then the segment: a crash in between repeats dead letters, never loses lines. */
  async function commit(batch: SpoolBatch, digest: string): Promise<CommitResult> {
    const sealed = await batch.seal()
    if (sealed.deadLetterPath) {
      await deadLetters.appendFile(batch.dataset, sealed.deadLetterPath)
      // For the status page only: its failure must not fail a batch that is safely stored.
      await recentDeadLetters.noteFile(batch.dataset, sealed.deadLetterPath).catch((err: unknown) => log.warn({ err }, 'Could not read the latest dead letters for the status page.'))
    }
    // A batch whose dataset could not be told lives in the dead-letter store only.
    if (batch.dataset === UNRECOGNISED_DATASET) { await batch.discard(); return { stored: true } }
    const outcome = await batch.commit(digest)
    await batch.releaseDeadLetters()
    return { stored: !outcome.duplicate }
  }

  let closing = false
  const probePath = join(dataDir, '.health-probe')
  const writable = cached(2000, async (): Promise<string | null> => {
    try {
      await writeFile(probePath, String(Date.now()))
      await rm(probePath, { force: true })
      return null
    } catch (err) {
      return `data directory not writable: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`
    }
  })
  // Ready means "can accept batches": a destination being down is not a reason (the spool takes it).
  const readiness = async (): Promise<Readiness> => {
    const reasons = [await writable(), spool.refusal(), closing ? 'shutting down' : null].filter((r): r is string => r !== null)
    return { ready: reasons.length === 0, reasons }
  }

  const tls = config.tlsCertFile ? await readTls(config) : null
  const app = Fastify({
    loggerInstance: log,
    // A sender's X-Request-Id is kept with its batch, dead letters and logs: taken only when it
    // is short and plain, otherwise the request gets an id of our own.
    requestIdHeader: false,
    genReqId: (req: { headers: Record<string, string | string[] | undefined> }) => {
      const id = req.headers['x-request-id']
      return typeof id === 'string' && REQUEST_ID.test(id) ? id : randomUUID()
    },
    requestTimeout: config.requestTimeoutMs,
    keepAliveTimeout: config.keepAliveTimeoutMs,
    // Logpush reuses connections; close idle ones at shutdown instead of waiting for them.
    forceCloseConnections: tls ? true : 'idle',
    return503OnClosing: true,
    // Logpush may speak HTTP/2 (its timeouts name h2 reads/writes); with TLS, ALPN offers h2 and
    // http/1.1 both. Without TLS (behind a balancer) plain HTTP/1.1.
    ...(tls ? { http2: true as const, https: { allowHTTP1: true, ...tls } } : {})
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance

  // Each error is logged once, here: a client's mistake (4xx) as a one-line info with its code,
  // an expected refusal (a coded 503: spool full, disk nearly full) as a one-line warning, our
  // own failure (other 5xx) as an error with its stack.
  app.setErrorHandler(function logOnce(error: Error & { statusCode?: number, code?: string }, request, reply) {
    const status = error.statusCode && error.statusCode >= 400 ? error.statusCode : 500
    if (status === 503 && error.code) request.log.warn({ code: error.code, statusCode: status }, error.message)
    else if (status >= 500) request.log.error({ err: error }, error.message)
    else request.log.info({ code: error.code, statusCode: status }, error.message)
    return reply.code(status).send({
      statusCode: status,
      code: error.code ?? 'LPR_ERR_INTERNAL',
      error: status >= 500 && !error.code ? 'Internal Server Error' : error.name === 'FastifyError' ? httpReason(status) : error.name,
      message: status >= 500 && !error.code ? 'Internal error; see the service log' : error.message
    })
  })

  // Where this instance listens, for `npm run replay` on the same machine.
  app.addHook('onListen', async function announce() {
    const a = app.server.address()
    if (a === null || typeof a === 'string') return
    const host = a.address === '0.0.0.0' ? '127.0.0.1' : a.address === '::' ? '::1' : a.address
    await lock.announce(`${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${a.port}`)
  })

  // fastify's own 404 logs and answers the whole URL, query string included, where a token may
  // be (destination_conf's header_Authorization=...): ours names the path only, cut short.
  app.setNotFoundHandler(function notFound(request, reply) {
    const path = clip(request.url.split('?', 1)[0]!, 200)
    request.log.info({ statusCode: 404, path }, 'No such route.')
    return reply.code(404).send({ message: `Route ${request.method}:${path} not found`, error: 'Not Found', statusCode: 404 })
  })

  // During a shutdown, answers to requests still in flight close their connection, so the
  // server is not kept waiting on a keep-alive socket that will carry nothing more.
  app.addHook('onSend', async function closeWhenStopping(request, reply) {
    if (closing && request.raw.httpVersionMajor < 2) reply.header('connection', 'close')
  })
  app.addHook('onResponse', async function countRequest(request, reply) {
    stats.countRequest(request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000)
  })

  await app.register(async function observability(scope) {
    await scope.register(compress, { global: true, threshold: 1024 })
    const metricsTokens = config.metricsToken ? new TokenSet([config.metricsToken]) : null
    await scope.register(metricsPlugin, {
      stats,
      version,
      authorize: (headers) => { if (metricsTokens) checkToken(metricsTokens, headers, '') },
      spool: () => ({ bytes: spool.bytes(), accepting: spool.refusal() === null, highWatermarkBytes: config.spoolHighWatermarkBytes, damagedSegments: spool.damaged().length }),
      sinks: () => new Map(forwarders.map((f) => {
        const s = f.status() as { pendingLines: number, pendingBytes: number, oldestPendingAgeSeconds: number, stopped?: { code: string } | null }
        return [f.name, { pendingLines: s.pendingLines, pendingBytes: s.pendingBytes, oldestPendingAgeSeconds: s.oldestPendingAgeSeconds, failing: f.failing, stopped: s.stopped?.code ?? null }]
      })),
      sources: () => new Map(sources.map((s) => [s.name, s.gauges()])),
      watchdog: () => watchdog?.gauges() ?? null,
      collectors: () => new Map(collectors.map((c) => [c.name, c.gauges()]))
    })
    await scope.register(healthPlugin, {
      version,
      stats,
      readiness,
      sinks: () => ({
        spool: { bytes: spool.bytes(), highWatermarkBytes: config.spoolHighWatermarkBytes, damaged: spool.damaged() },
        ...Object.fromEntries(forwarders.map((f) => [f.name, f.status()]))
      }),
      sources: () => Object.fromEntries(sources.map((s) => [s.name, s.status()])),
      watchdog: () => watchdog?.status() ?? { enabled: false },
      collectors: () => Object.fromEntries(collectors.map((c) => [c.name, c.status()]))
    })
    await scope.register(statusPlugin, {
      version,
      stats,
      readiness,
      access: new StatusAccess([...tokenInfo.tokens, config.metricsToken]),
      // HEC batches no rule could place are kept under _unknown: shown, but no job points there.
      datasets: [...[...datasets.values()].map((d) => ({ name: d.name, scopes: jobScopes((d.schema as { 'x-scope'?: unknown })['x-scope']) })), { name: UNRECOGNISED_DATASET, scopes: [] }],
      destinationConf: (dataset) => destinationConf(config.publicUrl, dataset, 'YOUR_TOKEN'),
      deadLetters: recentDeadLetters,
      spool: () => ({
        bytes: spool.bytes(),
        highWatermarkBytes: config.spoolHighWatermarkBytes,
        lowWatermarkBytes: config.spoolLowWatermarkBytes,
        minFreeBytes: config.spoolMinFreeBytes,
        refusal: spool.refusal()
      }),
      sinks: () => forwarders.map((f) => ({ name: f.name, failing: f.failing, status: f.status() })),
      dataDir: join(dataDir, 'spool')
    })
  })
  const challenges = new ChallengeLog(config.challengesKept)
  let sources: Array<BucketSource | UnbuiltSource> = []
  let collectors: Array<Collector | UnbuiltCollector> = []
  const workers = config.parseWorkers === -1 ? availableParallelism() : config.parseWorkers
  // One budget for the unfinished lines of every request and bucket read; never below one longest
  // line, or such a line could never be received.
  const lineBudget = new LineBudget(Math.max(config.lineBufferBudgetBytes, config.maxLineBytes))
  const pool = workers > 0 ? new ParsePool(workers, { schemas: schemaSnapshot(datasets), driftFieldsMax: config.driftFieldsMax, driftFieldNameMaxChars: config.driftFieldNameMaxChars, maxLineBytes: config.maxLineBytes }, log) : null
  const intake = {
    pool,
    datasets,
    spool,
    stats,
    challenges,
    tokens,
    authHeader: config.authHeader,
    limits: {
      maxBodyBytes: config.maxBodyBytes,
      maxInflatedBytes: config.maxInflatedBytes,
      maxLineBytes: config.maxLineBytes,
      maxLineDepth: config.maxLineDepth,
      headBytes: config.smallBodyBytes
    },
    lineBudget,
    driftFieldsMax: config.driftFieldsMax,
    driftFieldNameMaxChars: config.driftFieldNameMaxChars,
    sourcetypes: intakeSourcetypes(splunkSourcetypes, datasets.keys(), config.hecSourcetypes),
    ...(tenantOf ? { tenantOf } : {}),
    commit
  }
  await app.register(intakePlugin, intake)
  await app.register(hecPlugin, intake)
  for (const sc of config.sources) {
    if (!datasets.has(sc.dataset)) throw new ConfigInvalid(`CONFIG_FILE source "${sc.name}" names dataset "${sc.dataset}", which has no schema; known: ${[...datasets.keys()].join(', ')}`)
  }
  if (config.collectors.length > 0) {
    // A collector's missing secret is a configuration error: refused at start, like any other.
    const { readCredentials } = await import('./cloudflare-api/client.js')
    for (const cc of config.collectors) readCredentials(`CONFIG_FILE collectors.${cc.name}.auth`, cc.auth)
  }
  // Sources are built (the S3 client loaded, progress records read) and start reading once the
  // service listens: neither must delay the start, nor a bucket's backlog compete with it.
  let sourcesBuilt: Promise<void> = Promise.resolve()
  app.addHook('onListen', function startSources(done) {
    sourcesBuilt = createSources(config, { dataDir, datasets, spool, stats, pool, lineBudget, commit, challenges, log }).then(
      async (built) => {
        if (closing) return await Promise.all(built.map((s) => s.stop())).then(() => {})
        sources = built
        for (const s of sources) s.start()
      },
      (err: unknown) => { log.error({ err }, 'Could not start the bucket sources.') }
    )
    done()
  })
  // Collectors likewise, each on its own: one failing (bad credentials) stops only itself.
  let collectorsBuilt: Promise<void> = Promise.resolve()
  app.addHook('onListen', function startCollectors(done) {
    collectorsBuilt = createCollectors(config, { dataDir, schemasDir: schemas, datasets, spool, stats, pool, lineBudget, commit, log }).then(
      async (built) => {
        if (closing) return
        collectors = built
        for (const c of collectors) c.start()
      },
      (err: unknown) => { log.error({ err }, 'Could not start the collectors.') }
    )
    done()
  })

  app.addHook('onListen', function startWatchdog(done) {
    if (!closing) watchdog?.start()
    done()
  })

  return {
    // pino's Logger type is wider than fastify's base logger type; the instance is the same.
    app: app as unknown as FastifyInstance,
    datasets,
    stats,
    generatedToken: tokenInfo.generated ? tokenInfo.tokens[0]! : null,
    tokenPath: tokenInfo.path,
    async reloadTls() {
      if (!tls) return false
      // A bad file keeps the certificate in use: readTls throws before anything changes.
      ;(app.server as unknown as TlsServer).setSecureContext(await readTls(config))
      return true
    },
    async drained(timeoutMs: number) {
      const results = await Promise.all(forwarders.map((f) => f.drained(timeoutMs)))
      return results.every(Boolean)
    },
    beginShutdown() { closing = true },
    async close(graceMs = config.shutdownGraceMs) {
      closing = true
      clearInterval(diskTimer)
      const started = Date.now()
      await app.close()
      await watchdog?.stop()
      // Sources first: an object being read is abandoned unrecorded and read again at the next start.
      await sourcesBuilt
      await Promise.all(sources.map((s) => s.stop()))
      // A window being fetched is abandoned (its staging file removed at the next start); a staged one is ingested again then.
      await collectorsBuilt
      await Promise.all(collectors.map((c) => c.stop()))
      // Deliver what the destinations take within the grace period; the rest stays spooled.
      await Promise.all(forwarders.map((f) => f.drained(Math.max(0, graceMs - (Date.now() - started)))))
      await Promise.all(forwarders.map((f) => f.stop(Math.max(0, graceMs - (Date.now() - started)))))
      await deadLetters.close()
      await pool?.close()
      await lock.release()
    }
  }
}

/** Tokens are looked up by their hash: a map keyed by the token itself would keep it in one more place. */
function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
