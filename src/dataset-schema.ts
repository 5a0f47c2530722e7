// The shape of a schemas/<dataset>.json file: a leaf both the pipeline (validation) and the
// Elasticsearch sink (mappings) read, so each dataset has one source of truth.

export interface FieldSchema {
  type?: string | string[]
  items?: FieldSchema
  additionalProperties?: FieldSchema | boolean
  description?: string
  deprecated?: boolean
  pattern?: string
  /** How Elasticsearch should index a field whose JSON type does not say it: "ip" or "date". */
  'x-es-type'?: 'ip' | 'date'
}

export interface DatasetSchema {
  title?: string
  description?: string
  /** The field that holds the event time (EdgeStartTimestamp, Datetime, When, ...). */
  'x-event-time': string
  properties: Record<string, FieldSchema>
}
