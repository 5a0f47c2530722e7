export { SplunkHecSink, type SplunkHecSinkOptions } from './sink.js'
export { classify, failureHint, backoffMs, oneTooLarge, type Classified, type HecAnswer, type Verdict } from './classify.js'
export { envelope, envelopeMeta, requestBody, type EnvelopeFields } from './request.js'
