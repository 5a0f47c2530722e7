export { ElasticsearchSink, type ElasticsearchSinkOptions } from './sink.js'
export { indexTemplate, dataStreamName, templateName, fieldMapping } from './mapping.js'
export { documentId, documentText, eventTime } from './document.js'
export { classifyItem, classifyRequest, backoffMs } from './classify.js'
