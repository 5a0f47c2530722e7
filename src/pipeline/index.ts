export { loadDatasets, type Dataset, type DatasetSchema, type FieldSchema } from './datasets.js'
export { ingest, checkLine, type IngestResult } from './ingest.js'
