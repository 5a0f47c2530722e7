export { KafkaSink, type KafkaSinkOptions } from './sink.js'
export { errorTypes, verdictOf } from './classify.js'
export { registerCodecs, type Compression } from './codecs.js'
