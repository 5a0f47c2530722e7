// The one place that knows which fetcher serves which collector type.
import type { Logger } from 'pino'
import type { CollectorConfig } from '../../config/index.js'
import { sdkClient, type CloudflareCredentials } from '../../cloudflare-api/client.js'
import { AuditLogsV1Fetcher, AuditLogsV2Fetcher } from './audit.js'
import { LogpullFetcher, type LogpullTimestamps } from './logpull.js'
import { RecordMapper } from './mapping.js'
import { requestTimesFile } from './request-times.js'
import type { WindowFetcher } from './window.js'

export interface FetcherContext {
  /** The API base URL (CLOUDFLARE_API_URL). */
  readonly baseUrl: string
  readonly credentials: CloudflareCredentials
  /** Where schemas/ is (its collectors/ mappings and dataset schemas). */
  readonly schemasDir: string
  /** The dataset the collector feeds (collectorDataset[config.type]). */
  readonly dataset: string
  readonly log: Logger
  /** The collector's state directory (DATA_DIR/collectors/<name>): Logpull keeps its request times there across restarts. */
  readonly stateDir?: string
  /** SOURCE_RETRY_AFTER_MAX_SECONDS, in ms. */
  readonly retryAfterMaxMs?: number
}

export function fetcherFor(config: CollectorConfig, ctx: FetcherContext): WindowFetcher {
  // Not stored (it belongs to no window), but never dropped without a word.
  const unreadable = (id: string | undefined): void => {
    ctx.log.warn({ collector: config.name, id: id ?? null }, 'An audit record without a readable time was left out; it cannot be placed in a window.')
  }
  switch (config.type) {
    case 'audit_logs':
      return new AuditLogsV1Fetcher(sdkClient(ctx.baseUrl, ctx.credentials), config.account!, config.perPage, RecordMapper.load(ctx.schemasDir, ctx.dataset), unreadable)
    case 'audit_logs_v2':
      return new AuditLogsV2Fetcher(sdkClient(ctx.baseUrl, ctx.credentials), config.account!, config.perPage, RecordMapper.load(ctx.schemasDir, ctx.dataset), unreadable)
    case 'logpull':
      return new LogpullFetcher({
        baseUrl: ctx.baseUrl,
        zone: config.zone!,
        credentials: ctx.credentials,
        fields: config.fields as string[] | undefined,
        timestamps: config.timestamps as LogpullTimestamps | undefined,
        sample: config.sample as number | undefined,
        delayMs: config.delaySeconds * 1000,
        perZonePerMinute: config.zoneRequestsPerMinute as number | undefined,
        perUserPerMinute: config.userRequestsPerMinute as number | undefined,
        ...(ctx.stateDir !== undefined ? { requestTimes: requestTimesFile(ctx.stateDir) } : {}),
        ...(ctx.retryAfterMaxMs !== undefined ? { retryAfterMaxMs: ctx.retryAfterMaxMs } : {}),
        // The runner would otherwise ask for the same lost window forever: say what is skipped, once per window.
        onSkipped: (s) => ctx.log.warn({ collector: config.name, ...s }, 'Logpull no longer keeps this part of the window; skipped.')
      })
  }
}
