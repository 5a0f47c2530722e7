export { createLogger, redactSecret } from './logger.js'
export { Stats, DatasetStats } from './stats.js'
export { healthPlugin, cached, type Readiness } from './health.js'
export { metricsPlugin, createRegistry, type MetricsOptions, type SinkGauges, type SourceGauges, type CollectorGauges } from './metrics.js'
