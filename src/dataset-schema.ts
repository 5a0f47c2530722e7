// The shape of a schemas/<dataset>.json file: a leaf both the pipeline (validation) and the
// Elasticsearch sink (mappings) read, so each dataset has one source of truth. The files are
// generated (`npm run schemas`, src/datasets/) from Cloudflare's field reference.

export interface FieldSchema {
  type?: string | string[]
  items?: FieldSchema
  additionalProperties?: FieldSchema | boolean
  description?: string
  deprecated?: boolean
  pattern?: string
  /** How Elasticsearch should index a field whose JSON type does not say it: "ip" or "date". */
  'x-es-type'?: 'ip' | 'date'
  /** The type as Cloudflare's field reference writes it ("int or string (timestamp)", "array[object]", ...). */
  'x-cloudflare-type'?: string
  /** The reference only infers this field's type: the schema accepts any value for it. */
  'x-unverified'?: boolean
}

export type DatasetScope = 'zone' | 'account'

export interface DatasetSchema {
  $schema?: string
  $id?: string
  type?: 'object'
  additionalProperties?: boolean
  title?: string
  description?: string
  /** The field that holds the event time (EdgeStartTimestamp, Datetime, When, ...). */
  'x-event-time': string
  /** Where Logpush jobs for this dataset live: /zones/{id}/logpush/jobs, /accounts/{id}/logpush/jobs or both. */
  'x-scope'?: DatasetScope[]
  properties: Record<string, FieldSchema>
}
