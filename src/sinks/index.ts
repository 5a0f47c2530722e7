export type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink, StoppedState } from './sink.js'
export { DeliveryStopped } from './sink.js'
export { FileSink } from './file/sink.js'
export { RotatingFiles } from './file/rotating-files.js'
export { DiscardSink } from './discard/sink.js'
// The Elasticsearch and Splunk destinations are loaded only when configured (the Elasticsearch
// client alone adds ~28 MB of resident memory): import them from ./elasticsearch/index.js and
// ./splunk-hec/index.js.
