// The composition root: the one file that knows every room and wires them. It reads as the list of
// what the service is made of: every part is created from the validated configuration first
// (nothing opened, so a configuration error leaves nothing behind), then the parts start in the
// order listed and stop in the reverse order (src/lifecycle.ts).
import { existsSync } from 'node:fs'
import { createHash } from 'node:crypto'
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import { availableParallelism } from 'node:os'
import type { FastifyInstance } from 'fastify'
import compress from '@fastify/compress'
import type { Logger } from 'pino'
import type { Config } from './config/index.js'
import { ConfigInvalid, DataDirInUse } from './errors.js'
import { ChallengeLog, TokenSet, challengesPlugin, checkToken, presentedToken, destinationConf, ensureTokens, hecPlugin, intakePlugin } from './intake/index.js'
import { LineBudget, ParsePool, loadDatasets, schemaSnapshot, type Dataset, type LineValidatorKind } from './pipeline/index.js'
import { Spool, UNRECOGNISED_DATASET } from './spool/index.js'
import { countingFs, realFs } from './spool/fs.js'
import { RotatingFiles } from './sinks/index.js'
import { Stats, cached, healthPlugin, metricsPlugin, type Readiness } from './observability/index.js'
import { schemasDir, version } from './paths.js'
import { RecentDeadLetters, StatusAccess, statusPlugin } from './status/index.js'
import { DirLock, DirectoryInUse, serviceLockPath } from './data-dir-lock.js'
import { intakeSourcetypes, loadSplunkSourcetypes } from './splunk-sourcetypes.js'
import { watchdogConfigured } from './watchdog/configured.js'
import { Lifecycle, type Component } from './lifecycle.js'
import { createDestinations, createSinks } from './compose/destinations.js'
import { committer } from './compose/commit.js'
import { createCollectors, createSources } from './compose/sources.js'
import { listener, type Tls } from './compose/http.js'
import { buildRouters, buildShapers, routableSinks, tenantRoutes } from './shaping/index.js'

export { groupDeliveryDeadLetters } from './compose/destinations.js'

export interface BuiltApp {
  /** The intake listener (Logpush, HEC, /health; everything with ADMIN_ON_INTAKE). */
  readonly app: FastifyInstance
  /** Where the intake listener answers, e.g. http://127.0.0.1:8080. */
  readonly url: string
  /** Where the admin listener answers; null with ADMIN_ON_INTAKE (then it is `url`). */
  readonly adminUrl: string | null
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
  /** Resolves true once every destination has set itself up (Elasticsearch's templates installed or tried). */
  setUp(timeoutMs: number): Promise<boolean>
  close(graceMs?: number): Promise<void>
}

/** Where a dataset's Logpush jobs live, from its schema's "x-scope" (a name or a list); zone when it says nothing. */
function jobScopes(declared: unknown): Array<'zone' | 'account'> {
  const list = (Array.isArray(declared) ? declared : [declared]).filter((s): s is 'zone' | 'account' => s === 'zone' || s === 'account')
  return list.length > 0 ? [...new Set(list)] : ['zone']
}

async function readTls(config: Config): Promise<Tls> {
  return { cert: await readFile(config.tlsCertFile), key: await readFile(config.tlsKeyFile) }
}

/** A part that only opens and closes: `open` returns what undoes it. */
function part(name: string, open: () => Promise<(() => Promise<void>) | void>): Component {
  let undo: (() => Promise<void>) | void = undefined
  return { name, async start() { undo = await open() }, async close() { await undo?.() } }
}

/** Builds and starts the service: listening on PORT (and ADMIN_PORT) when it resolves. */
export async function buildApp(config: Config, log: Logger): Promise<BuiltApp> {
  // --- Created from the configuration: everything checked, nothing opened. ---
  // The Logpush job watchdog (off unless WATCHDOG_API_TOKEN and zones/accounts are set); it only
  // reads Cloudflare's API and shows what it finds. Its module (and Cloudflare's SDK, ~50 MB of
  // memory) is loaded only when it is configured.
  const watchdog = watchdogConfigured(config) ? (await import('./watchdog/index.js')).createWatchdog(config, log) : null
  const dataDir = resolve(config.dataDir)
  const schemas = config.schemasDir !== '' ? resolve(config.schemasDir) : schemasDir
  const datasets = loadDatasets(schemas, config.lineValidator as LineValidatorKind)
  // A schemas directory of the operator's own may leave the Splunk sourcetypes to ours.
  const splunkSourcetypes = loadSplunkSourcetypes(existsSync(join(schemas, 'splunk', 'sourcetypes.json')) ? schemas : schemasDir)
  // Likewise the ECS mappings: the operator's, when their schemas directory has them.
  const ecsDir = existsSync(join(schemas, 'ecs', '_types.yaml')) ? join(schemas, 'ecs') : join(schemasDir, 'ecs')
  for (const dataset of [...Object.keys(config.routes), ...Object.values(config.hecSourcetypes)]) {
    if (!datasets.has(dataset)) throw new ConfigInvalid(`CONFIG_FILE names dataset "${dataset}", which has no schema; known: ${[...datasets.keys()].join(', ')}`)
  }
  if (!config.adminOnIntake && config.adminPort !== 0 && config.adminPort === config.port) {
    throw new ConfigInvalid(`ADMIN_PORT ${config.adminPort} is PORT too: give the admin listener a port of its own, or set ADMIN_ON_INTAKE=true to serve everything on PORT`)
  }
  // Shaping is checked against the schemas (and its keys read) before anything is delivered.
  const sinkNames = [...new Set(config.sinks.split(','))]
  const shapers = buildShapers(config.shaping, sinkNames, datasets)
  const kafkaTopics = sinkNames.includes('kafka') ? [config.kafkaTopic, ...Object.values(config.routes).flatMap((r) => r.kafka?.topic ? [r.kafka.topic] : [])] : []
  const routable = routableSinks(kafkaTopics)
  const routers = buildRouters(config.routing, config.tenants, sinkNames, datasets, routable)
  // A token that names its tenant (CONFIG_FILE tokens): its batches are kept with the tenant's name.
  const tenantByToken = new Map(config.tenantTokens.map((t) => [tokenDigest(t.token), t.tenant]))
  const tenantOf = tenantByToken.size === 0 ? undefined : (headers: Record<string, string | string[] | undefined>): string | undefined => {
    const token = presentedToken(headers, config.authHeader)
    return token === undefined ? undefined : tenantByToken.get(tokenDigest(token))
  }
  const routesOfTenants = tenantRoutes(config.tenants, config.tenantTokens.length > 0 ? sinkNames : [], routable)
  const tls = config.tlsCertFile ? await readTls(config) : null
  const stats = new Stats(datasets.keys(), config.driftFieldsMax, config.driftFieldNameMaxChars)
  // Every fsync of the spool counted (lpr_spool_fsyncs_total).
  const spoolFs = countingFs(realFs)
  const spool = new Spool({
    dir: join(dataDir, 'spool'),
    highWatermarkBytes: config.spoolHighWatermarkBytes,
    lowWatermarkBytes: config.spoolLowWatermarkBytes,
    checkpointIntervalMs: config.spoolCheckpointIntervalMs,
    groupCommitWaitMs: config.spoolGroupCommitWaitMs,
    fs: spoolFs.fs,
    minFreeBytes: config.spoolMinFreeBytes,
    dedupeSeconds: config.dedupeWindowSeconds,
    dedupeMaxEntries: config.dedupeMaxEntries,
    log
  })
  const rotation = { rotateBytes: config.eventsRotateBytes, rotateMs: config.eventsRotateSeconds * 1000, gzipRotated: config.eventsGzipRotated, log }
  const deadLetters = new RotatingFiles({ ...rotation, dir: join(dataDir, 'dead-letter'), kind: 'dead-letter' })
  const recentDeadLetters = new RecentDeadLetters(config.statusDeadLettersKept, new Set([...datasets.keys(), UNRECOGNISED_DATASET]))
  const challenges = new ChallengeLog(config.challengesKept)
  // One budget for the unfinished lines of every request and bucket read; never below one longest
  // line, or such a line could never be received.
  const lineBudget = new LineBudget(Math.max(config.lineBufferBudgetBytes, config.maxLineBytes))
  const workers = config.parseWorkers === -1 ? availableParallelism() : config.parseWorkers
  let pool: ParsePool | null = null
  let tokens: { tokens: string[], generated: boolean, path: string | null } = { tokens: [], generated: false, path: null }
  let closing = false
  let graceEnd = 0

  const commit = committer({ deadLetters, recentDeadLetters, log })

  const ingest = { dataDir, schemasDir: schemas, datasets, spool, stats, pool: () => pool, lineBudget, commit, log }
  const destinations = createDestinations(config, {
    spool, deadLetters, recentDeadLetters, stats, log, graceMs: () => Math.max(0, graceEnd - Date.now()),
    shapers, routers, ...(tenantOf ? { tenantRoute: (tenant: string) => routesOfTenants.get(tenant) ?? null } : {}),
    sinks: await createSinks(config, { dataDir, rotation, datasets, log, splunkSourcetypes, ecsDir, shapers })
  })
  const sources = await createSources(config, { ...ingest, challenges })
  const collectors = await createCollectors(config, ingest)

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
  // Ready means "can accept batches": a destination being down or still setting itself up is not a reason (the spool takes it).
  const readiness = async (): Promise<Readiness> => {
    const reasons = [await writable(), spool.refusal(), closing ? 'shutting down' : null].filter((r): r is string => r !== null)
    return { ready: reasons.length === 0, reasons }
  }
  const health = {
    version,
    stats,
    readiness,
    sinks: () => ({ spool: { bytes: spool.bytes(), highWatermarkBytes: config.spoolHighWatermarkBytes, damaged: spool.damaged() }, ...destinations.health() }),
    sources: () => sources.health(),
    watchdog: () => watchdog?.status() ?? { enabled: false },
    collectors: () => collectors.health(),
    localRoots: [[dataDir, '$DATA_DIR'], [schemas, '$SCHEMAS_DIR']] as const
  }
  const http = { config, log, tls, stats, closing: () => closing }

  /** The tokens intake takes: LOGPUSH_TOKENS (or the generated one) and the tenants' (CONFIG_FILE tokens). */
  const intakeTokens = (): TokenSet => new TokenSet([...tokens.tokens, ...config.tenantTokens.map((t) => t.token)])

  /** The operator's endpoints: status page, /metrics, /logpush/challenges (and /health). */
  async function operatorRoutes(scope: FastifyInstance): Promise<void> {
    const tokenSet = intakeTokens()
    await scope.register(async function observability(s) {
      await s.register(compress, { global: true, threshold: 1024 })
      const metricsTokens = config.metricsToken ? new TokenSet([config.metricsToken]) : null
      await s.register(metricsPlugin, {
        stats,
        version,
        authorize: (headers) => { if (metricsTokens) checkToken(metricsTokens, headers, '') },
        spool: () => ({ bytes: spool.bytes(), accepting: spool.refusal() === null, highWatermarkBytes: config.spoolHighWatermarkBytes, damagedSegments: spool.damaged().length, fsyncs: spoolFs.syncs() }),
        sinks: () => new Map(destinations.forwarders.map((f) => {
          const st = f.status() as { pendingLines: number, pendingBytes: number, oldestPendingAgeSeconds: number, stopped?: { code: string } | null }
          return [f.name, { pendingLines: st.pendingLines, pendingBytes: st.pendingBytes, oldestPendingAgeSeconds: st.oldestPendingAgeSeconds, failing: f.failing, stopped: st.stopped?.code ?? null, setUp: f.ready }]
        })),
        sources: () => sources.gauges(),
        watchdog: () => watchdog?.gauges() ?? null,
        collectors: () => collectors.gauges()
      })
      await s.register(healthPlugin, health)
      await s.register(statusPlugin, {
        version,
        stats,
        readiness,
        // METRICS_TOKEN is a scraper's: it never opens a page of senders' data.
        access: new StatusAccess(config.statusToken ? [config.statusToken] : tokens.tokens),
        tokenName: config.statusToken ? 'STATUS_TOKEN' : 'one of LOGPUSH_TOKENS',
        cookieSecure: config.statusCookieSecure as 'auto' | 'always',
        // HEC batches no rule could place are kept under _unknown: shown, but no job points there.
        datasets: [...[...datasets.values()].map((d) => ({ name: d.name, scopes: jobScopes((d.schema as { 'x-scope'?: unknown })['x-scope']) })), { name: UNRECOGNISED_DATASET, scopes: [] }],
        destinationConf: (dataset) => destinationConf(config.publicUrl, dataset, 'YOUR_TOKEN'),
        deadLetters: recentDeadLetters,
        spool: () => ({
          bytes: spool.bytes(),
          highWatermarkBytes: config.spoolHighWatermarkBytes,
          lowWatermarkBytes: config.spoolLowWatermarkBytes,
          minFreeBytes: config.spoolMinFreeBytes,
          refusal: spool.refusal(),
          damaged: spool.damaged()
        }),
        sinks: () => destinations.forwarders.map((f) => ({ name: f.name, failing: f.failing, status: f.status() })),
        dataDir: join(dataDir, 'spool')
      })
    })
    await scope.register(challengesPlugin, { tokens: tokenSet, authHeader: config.authHeader, challenges })
  }

  let lock: DirLock | null = null
  const intakeListener = listener({
    name: 'intake listener',
    port: config.port,
    host: config.host,
    http,
    async routes(app) {
      if (config.adminOnIntake) await operatorRoutes(app)
      else await app.register(async function healthOnly(s) { await s.register(healthPlugin, health) })
      const intake = {
        pool,
        datasets,
        spool,
        stats,
        challenges,
        tokens: intakeTokens(),
        authHeader: config.authHeader,
        limits: { maxBodyBytes: config.maxBodyBytes, maxInflatedBytes: config.maxInflatedBytes, maxLineBytes: config.maxLineBytes, maxLineDepth: config.maxLineDepth, headBytes: config.smallBodyBytes },
        lineBudget,
        driftFieldsMax: config.driftFieldsMax,
        driftFieldNameMaxChars: config.driftFieldNameMaxChars,
        sourcetypes: intakeSourcetypes(splunkSourcetypes, datasets.keys(), config.hecSourcetypes),
        ...(tenantOf ? { tenantOf } : {}),
        commit
      }
      await app.register(intakePlugin, intake)
      await app.register(hecPlugin, intake)
    },
    // Where this instance listens, for `npm run replay` on the same machine.
    onListening: async (url) => { await lock?.announce(url) }
  })
  const adminListener = config.adminOnIntake ? null : listener({ name: 'admin listener', port: config.adminPort, host: config.adminHost, http, routes: operatorRoutes })

  // --- What the service is made of, in start order; it stops in the reverse order. ---
  const lifecycle = new Lifecycle([
    // One process per data directory: two spools on one directory would reuse sequence numbers.
    part('data directory lock', async () => {
      await mkdir(dataDir, { recursive: true })
      lock = await DirLock.acquire(serviceLockPath(dataDir)).catch((err: unknown) => {
        throw err instanceof DirectoryInUse ? new DataDirInUse(err.message) : err
      })
      return async () => { await lock?.release() }
    }),
    part('tokens', async () => { tokens = await ensureTokens(config.tokens, dataDir) }),
    part('spool', async () => {
      await spool.init()
      const diskTimer = setInterval(() => { void spool.refreshDisk() }, 5000)
      diskTimer.unref()
      return async () => { clearInterval(diskTimer) }
    }),
    part('dead letters', async () => {
      await deadLetters.init()
      return () => deadLetters.close()
    }),
    part('parse workers', async () => {
      if (workers > 0) pool = new ParsePool(workers, { schemas: schemaSnapshot(datasets), driftFieldsMax: config.driftFieldsMax, driftFieldNameMaxChars: config.driftFieldNameMaxChars, maxLineBytes: config.maxLineBytes, lineValidator: config.lineValidator as LineValidatorKind }, log)
      return async () => { await pool?.close() }
    }),
    destinations,
    sources,
    collectors,
    part('watchdog', async () => {
      watchdog?.start()
      return async () => { await watchdog?.stop() }
    }),
    intakeListener,
    ...(adminListener ? [adminListener] : [])
  ], log)
  await lifecycle.start()

  return {
    app: intakeListener.app,
    url: intakeListener.url,
    adminUrl: adminListener?.url ?? null,
    datasets,
    stats,
    generatedToken: tokens.generated ? tokens.tokens[0]! : null,
    tokenPath: tokens.path,
    async reloadTls() {
      if (!tls) return false
      // A bad file keeps the certificate in use: readTls throws before anything changes.
      const fresh = await readTls(config)
      for (const l of [intakeListener, adminListener]) l?.reloadTls(fresh)
      return true
    },
    drained: (timeoutMs) => destinations.drained(timeoutMs),
    beginShutdown() { closing = true },
    setUp: (timeoutMs) => destinations.setUp(timeoutMs),
    async close(grace = config.shutdownGraceMs) {
      // The shutdown, step by step: /health says "shutting down" from here on (a balancer stops
      // sending), then every part closes, listeners first, the destinations delivering what they
      // can within the grace period, the lock last.
      closing = true
      graceEnd = Date.now() + grace
      await lifecycle.close()
    }
  }
}

/** Tokens are looked up by their hash: a map keyed by the token itself would keep it in one more place. */
function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex')
}
