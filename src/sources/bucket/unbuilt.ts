import type { BucketSourceConfig } from '../../config/index.js'
import type { SourceGauges } from '../../observability/index.js'

/**
 * A bucket source that could not be built (its S3 client refused the configuration, a key
 * variable missing): shown stopped with why, in /health and as lpr_source_up 0, while the other
 * sources are built and run regardless.
 */
export class UnbuiltSource {
  private readonly error: { code: string, message: string, at: string }
  constructor (readonly name: string, private readonly config: BucketSourceConfig, err: unknown) {
    const code = (err as { code?: unknown })?.code
    this.error = { code: typeof code === 'string' && code.startsWith('LPR_ERR_') ? code : 'LPR_ERR_CONFIG_INVALID', message: (err as Error)?.message ?? String(err), at: new Date().toISOString() }
  }

  async init(): Promise<void> {}
  start(): void {}
  poke(): void {}
  async stop(): Promise<void> {}

  gauges(): SourceGauges {
    return { seen: 0, done: 0, failed: 0, up: false, newestDoneLagSeconds: 0 }
  }

  status(): Record<string, unknown> {
    const { config } = this
    return { kind: 's3', bucket: config.bucket, prefix: config.prefix, dataset: config.dataset, state: 'stopped', lastError: this.error, lastListedAt: null, objects: null, newestDone: null, progress: null, failures: [] }
  }
}
