// The OpenSearch and Kafka destinations, built from the validated config. Each is imported only
// when SINKS names it: their clients cost memory and start-up time nobody else should pay.
import type { Logger } from 'pino'
import type { Config } from '../config/index.js'
import type { Dataset } from '../pipeline/index.js'
import type { Sink } from './sink.js'
import { schemasForElasticsearch, type Shapers } from '../shaping/index.js'

interface ExtraContext {
  readonly datasets: ReadonlyMap<string, Dataset>
  readonly log: Logger
  readonly ecsDir: string
  readonly shapers?: Shapers
}

export async function loadExtraSinks (config: Config, names: readonly string[], ctx: ExtraContext): Promise<Map<string, Sink>> {
  const out = new Map<string, Sink>()
  if (names.includes('opensearch')) {
    const { OpenSearchSink } = await import('./opensearch/index.js')
    const { loadEcs } = await import('./elasticsearch/ecs.js')
    out.set('opensearch', new OpenSearchSink({
      url: config.opensearchUrl,
      auth: config.opensearchAuth as 'none' | 'basic' | 'aws-sigv4',
      username: config.opensearchUsername,
      password: config.opensearchPassword,
      caFile: config.opensearchCaFile,
      tlsVerify: config.opensearchTlsVerify,
      awsService: config.opensearchAwsService as 'es' | 'aoss',
      awsRegion: config.opensearchAwsRegion || process.env.AWS_REGION || '',
      namespace: config.opensearchNamespace,
      bulkBytes: config.opensearchBulkBytes,
      concurrency: config.opensearchBulkConcurrency,
      retryMs: config.opensearchRetryMs,
      requestTimeoutMs: config.opensearchRequestTimeoutMs,
      dataRetention: config.opensearchDataRetention,
      // A field this destination gets hashed or masked is mapped as a keyword, not an ip (src/shaping).
      datasets: schemasForElasticsearch(ctx.datasets, ctx.shapers, 'opensearch'),
      ecs: loadEcs(ctx.ecsDir),
      log: ctx.log.child({ sink: 'opensearch' })
    }))
  }
  if (names.includes('kafka')) {
    const { KafkaSink } = await import('./kafka/index.js')
    out.set('kafka', new KafkaSink({
      brokers: config.kafkaBrokers.split(','),
      clientId: config.kafkaClientId,
      topic: config.kafkaTopic,
      topics: new Map(Object.entries(config.routes).flatMap(([d, r]) => r.kafka?.topic ? [[d, r.kafka.topic]] : [])),
      key: config.kafkaKey,
      compression: config.kafkaCompression as 'none' | 'gzip' | 'lz4' | 'zstd',
      sasl: config.kafkaSaslMechanism as 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512',
      username: config.kafkaUsername,
      password: config.kafkaPassword,
      tls: config.kafkaTls,
      caFile: config.kafkaCaFile,
      tlsVerify: config.kafkaTlsVerify,
      batchBytes: config.kafkaBatchBytes,
      requestTimeoutMs: config.kafkaRequestTimeoutMs,
      eventTimeFields: new Map([...ctx.datasets].map(([k, d]) => [k, d.eventTimeField])),
      log: ctx.log.child({ sink: 'kafka' })
    }))
  }
  return out
}
