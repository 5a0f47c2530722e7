export { KafkaSink, type KafkaSinkOptions } from './sink.js'
export { errorTypes, verdictOf } from './classify.js'
export { type Compression } from './codecs.js'
