export { OpenSearchSink, type OpenSearchSinkOptions } from './sink.js'
export { openSearchTemplate, ismPolicy, ISM_POLICY_ID } from './mapping.js'
