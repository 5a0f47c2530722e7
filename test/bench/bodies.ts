// The request bodies of the bench: one gzip NDJSON body per (dataset, size), generated once and
// sent again and again. Generating and compressing 100 MB takes seconds, which would otherwise be
// charged to the scenarios or limit how much the bench can send.
import { gzipSync } from 'node:zlib'
import { loadSchema, recordLine } from '../helpers/fixtures.js'
import type { DatasetSchema } from '../../src/pipeline/index.js'

export const MB = 1_000_000

export interface Body {
  readonly dataset: string
  /** 'full' (every documented field) or 'short' (the field set of SHORT_FIELDS). */
  readonly shape: LineShape
  readonly sizeMB: number
  /** What goes on the wire. */
  readonly gzip: Buffer
  readonly lines: number
  /** Decompressed size: what Logpush's max_upload_bytes counts, and what MB/s is measured in. */
  readonly bytes: number
  /** A one-line second gzip member that makes upload `k` unique: see uniqueTail. */
  readonly tail: (k: number) => Tail
}

export interface Tail {
  readonly gzip: Buffer
  readonly bytes: number
}

/**
 * The service recognises a byte-identical body as a Logpush re-send and stores it once, and
 * DEDUPE_WINDOW_SECONDS=0 does not stop that for two bodies committed within the same
 * millisecond (one group commit of concurrent uploads). So each upload is the shared body plus
 * one more record, different per upload, as a second gzip member (gzip allows several in a row;
 * the service's gunzip reads them as one stream). One line more per upload, under 0.1 % of its
 * lines, real work like the others and counted like them.
 */
function uniqueTail(schema: DatasetSchema, first: number): (k: number) => Tail {
  return (k) => {
    const line = Buffer.from(recordLine(schema, first + k) + '\n')
    return { gzip: gzipSync(line), bytes: line.length }
  }
}

export type LineShape = 'full' | 'short'

/**
 * The fields of a 'short' line: what a job that does not ask for every field sends.
 * - http_requests: Logpull's default fields (developers.cloudflare.com/logs/logpull/requesting-logs/,
 *   "fields" parameter), the set most first jobs start from; about 300 bytes a line.
 * - network_analytics_logs: the packet, place and verdict fields of a Magic Transit mitigation
 *   record, about 550 bytes a line (the size the speed issue names), against ~2.3 KB with every field.
 */
export const SHORT_FIELDS: Readonly<Record<string, readonly string[]>> = {
  http_requests: ['ClientIP', 'ClientRequestHost', 'ClientRequestMethod', 'ClientRequestURI', 'EdgeEndTimestamp', 'EdgeResponseBytes', 'EdgeResponseStatus', 'EdgeStartTimestamp', 'RayID'],
  network_analytics_logs: [
    'ColoCountry', 'ColoName', 'Datetime', 'DestinationASN', 'DestinationPort', 'Direction', 'IPDestinationAddress', 'IPProtocolName',
    'IPSourceAddress', 'IPTotalLength', 'MitigationSystem', 'Outcome', 'RuleID', 'SampleInterval', 'SourceASN', 'SourcePort',
    'TCPFlagsString', 'Verdict'
  ]
}

/** The dataset's schema, cut to the short field set when asked. */
function shapedSchema(dataset: string, shape: LineShape): DatasetSchema {
  const schema = loadSchema(dataset)
  if (shape === 'full') return schema
  const fields = SHORT_FIELDS[dataset]
  if (!fields) throw new Error(`no short field set for ${dataset}; known: ${Object.keys(SHORT_FIELDS).join(', ')}`)
  const properties: DatasetSchema['properties'] = {}
  for (const f of fields) {
    if (!schema.properties[f]) throw new Error(`${dataset} has no field ${f}`)
    properties[f] = schema.properties[f]
  }
  return { ...schema, properties }
}

/**
 * As many whole lines as fit in `sizeMB` (decimal, like Logpush's max_upload_bytes), each one
 * distinct, in the format a Logpush job with every field of the schema sends.
 */
export function makeBody(dataset: string, sizeMB: number, shape: LineShape = 'full'): Body {
  const schema = shapedSchema(dataset, shape)
  const limit = sizeMB * MB
  const chunks: Buffer[] = []
  let bytes = 0
  let lines = 0
  let pending: string[] = []
  let pendingBytes = 0
  for (;;) {
    const line = recordLine(schema, lines) + '\n'
    const size = Buffer.byteLength(line)
    if (bytes + pendingBytes + size > limit) break
    pending.push(line)
    pendingBytes += size
    lines++
    // Joined in 1 MB pieces: one 100 MB string concatenation would double the peak memory.
    if (pendingBytes >= MB) {
      chunks.push(Buffer.from(pending.join('')))
      bytes += pendingBytes
      pending = []
      pendingBytes = 0
    }
  }
  if (pending.length > 0) chunks.push(Buffer.from(pending.join('')))
  bytes += pendingBytes
  if (lines === 0) throw new Error(`${dataset}: not one line fits in ${sizeMB} MB`)
  // Tails are numbered past every line of the body, so no tail repeats one of its lines.
  return { dataset, shape, sizeMB, gzip: gzipSync(Buffer.concat(chunks)), lines, bytes, tail: uniqueTail(schema, lines) }
}
