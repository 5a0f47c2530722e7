// The one place that knows which fetcher serves which collector type.
import type { Logger } from 'pino'
import type { CollectorConfig } from '../../config/index.js'
import { ConfigInvalid } from '../../errors.js'
import { sdkClient, type CloudflareCredentials } from '../../cloudflare-api/client.js'
import { AuditLogsV1Fetcher, AuditLogsV2Fetcher } from './audit.js'
import { RecordMapper } from './mapping.js'
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
}

export function fetcherFor(config: CollectorConfig, ctx: FetcherContext): WindowFetcher {
  switch (config.type) {
    case 'audit_logs':
      return new AuditLogsV1Fetcher(sdkClient(ctx.baseUrl, ctx.credentials), config.account!, config.perPage, RecordMapper.load(ctx.schemasDir, ctx.dataset))
    case 'audit_logs_v2':
      return new AuditLogsV2Fetcher(sdkClient(ctx.baseUrl, ctx.credentials), config.account!, config.perPage, RecordMapper.load(ctx.schemasDir, ctx.dataset))
    case 'logpull':
      // Logpull's fetcher (branch cf-logpull) goes here.
      throw new ConfigInvalid(`CONFIG_FILE collectors.${config.name}: type logpull is not available in this build`)
  }
}
