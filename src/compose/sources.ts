// Bucket sources and pull collectors as parts of the service. Created from validated configuration
// (their SDKs loaded, clients constructed, nothing read or contacted); started by reading their
// progress records and cursors (local files) and starting their loops, which run in the background.
import { join } from 'node:path'
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import { ConfigInvalid } from '../errors.js'
import type { ChallengeLog, CommitResult } from '../intake/index.js'
import type { Component } from '../lifecycle.js'
import type { Stats } from '../observability/index.js'
import type { Dataset, LineBudget, ParsePool } from '../pipeline/index.js'
import type { Spool, SpoolBatch } from '../spool/index.js'
import type { BucketSource, ObjectIngestOptions, UnbuiltSource } from '../sources/bucket/index.js'
import type { Collector, UnbuiltCollector } from '../sources/cloudflare/index.js'
import type { CollectorGauges, SourceGauges } from '../observability/index.js'

export interface IngestContext {
  readonly dataDir: string
  readonly schemasDir: string
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly spool: Spool
  readonly stats: Stats
  /** The parse workers once started (null without any). */
  readonly pool: () => ParsePool | null
  readonly lineBudget: LineBudget
  readonly commit: (batch: SpoolBatch, digest: string) => Promise<CommitResult>
  readonly log: Logger
}

/** How a bucket object or a collector's window goes through the pipeline: the limits of a pushed batch. */
function objectIngestOptions(config: Config, ctx: IngestContext): ObjectIngestOptions {
  return {
    spool: ctx.spool,
    stats: ctx.stats,
    // Read at each object: the workers start after this is built.
    get pool() { return ctx.pool() },
    maxLineBytes: config.maxLineBytes,
    maxInflatedBytes: config.maxInflatedBytes,
    driftFieldsMax: config.driftFieldsMax,
    driftFieldNameMaxChars: config.driftFieldNameMaxChars,
    maxLineDepth: config.maxLineDepth,
    lineBudget: ctx.lineBudget,
    commit: ctx.commit
  }
}

export interface SourcesPart extends Component {
  gauges(): ReadonlyMap<string, SourceGauges>
  health(): Record<string, unknown>
}

/** Bucket sources from CONFIG_FILE; the S3 client is loaded only when one is configured. */
export async function createSources(config: Config, ctx: IngestContext & { challenges: ChallengeLog }): Promise<SourcesPart> {
  for (const sc of config.sources) {
    if (!ctx.datasets.has(sc.dataset)) throw new ConfigInvalid(`CONFIG_FILE source "${sc.name}" names dataset "${sc.dataset}", which has no schema; known: ${[...ctx.datasets.keys()].join(', ')}`)
  }
  let sources: Array<BucketSource | UnbuiltSource> = []
  if (config.sources.length > 0) {
    const { BucketSource, UnbuiltSource, createBucketClient, ingestObject } = await import('../sources/bucket/index.js')
    const objects = objectIngestOptions(config, ctx)
    const build = (sc: Config['sources'][number]): BucketSource => {
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
    sources = buildEach<Config['sources'][number], BucketSource | UnbuiltSource>('bucket source', config.sources, build, (sc, err) => new UnbuiltSource(sc.name, sc, err), ctx.log)
  }
  // Each init stops only its own source (an unreadable progress record): none throws.
  return loops('sources', sources)
}

export interface CollectorsPart extends Component {
  gauges(): ReadonlyMap<string, CollectorGauges>
  health(): Record<string, unknown>
}

/** Pull collectors from CONFIG_FILE; the SDK is loaded only when one is configured. */
export async function createCollectors(config: Config, ctx: IngestContext): Promise<CollectorsPart> {
  let collectors: Array<Collector | UnbuiltCollector> = []
  if (config.collectors.length > 0) {
    const { Collector, UnbuiltCollector, fetcherFor } = await import('../sources/cloudflare/index.js')
    const { ingestObject } = await import('../sources/bucket/index.js')
    const { readCredentials } = await import('../cloudflare-api/client.js')
    const { collectorDataset } = await import('../config/index.js')
    // A collector's missing secret is a configuration error: refused at start, like any other.
    for (const cc of config.collectors) readCredentials(`CONFIG_FILE collectors.${cc.name}.auth`, cc.auth)
    const objects = objectIngestOptions(config, ctx)
    const build = (cc: Config['collectors'][number]): Collector => {
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
    collectors = buildEach<Config['collectors'][number], Collector | UnbuiltCollector>('collector', config.collectors, build, (cc, err) => new UnbuiltCollector(cc.name, cc.type, collectorDataset[cc.type], err), ctx.log)
  }
  return loops('collectors', collectors)
}

/** Builds each on its own: one that cannot be built stops alone, shown as stopped; the others run. */
function buildEach<C extends { readonly name: string }, T>(kind: string, configs: readonly C[], build: (c: C) => T, unbuilt: (c: C, err: unknown) => T, log: Logger): T[] {
  return configs.map((c) => {
    try {
      return build(c)
    } catch (err) {
      log.error({ [kind === 'collector' ? 'collector' : 'source']: c.name, err: { message: (err as Error).message } }, `Could not build this ${kind}; it stays stopped.`)
      return unbuilt(c, err)
    }
  })
}

/**
 * Sources or collectors as one part: started by reading each one's progress record or cursor (a
 * local file) and starting its loop; closed by stopping every loop. An object or window being
 * read is abandoned and read again at the next start.
 */
function loops<G>(name: string, items: ReadonlyArray<{ name: string, init(): Promise<void>, start(): void, stop(): Promise<void>, status(): unknown, gauges(): G }>): Component & { health(): Record<string, unknown>, gauges(): ReadonlyMap<string, G> } {
  let running: typeof items = []
  return {
    name,
    async start() {
      for (const item of items) await item.init()
      running = items
      for (const item of items) item.start()
    },
    async close() {
      await Promise.all(running.map((item) => item.stop()))
    },
    health: () => Object.fromEntries(running.map((item) => [item.name, item.status()])),
    gauges: () => new Map(running.map((item) => [item.name, item.gauges()]))
  }
}
