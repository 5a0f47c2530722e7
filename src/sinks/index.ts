export type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink } from './sink.js'
export { FileSink } from './file/sink.js'
export { RotatingFiles } from './file/rotating-files.js'
export { ElasticsearchSink } from './elasticsearch/index.js'
