export { loadDatasets, type Dataset } from './datasets.js'
export type { DatasetSchema, FieldSchema } from '../dataset-schema.js'
export { ingest, checkLine, type IngestResult, type RejectedItem } from './ingest.js'
export { ParsePool } from './parse-pool.js'
