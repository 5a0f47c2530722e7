// The reference for test/sinks/document-differential.test.ts: src/sinks/elasticsearch/document.ts as it was at
// commit 98203ed, before its per-document work was made cheaper (issue 26). Documents built by
// the current code must equal this code's, byte for byte. Not used by the service.
// A Cloudflare line becomes an Elasticsearch document by putting ECS fields in front of its own,
// as text: the Cloudflare fields stay exactly as sent (an unixnano integer keeps all 19 digits),
// which re-serialising a parsed object could not promise. Which ECS fields a dataset gets is data
// (schemas/ecs/<dataset>.yaml, compiled by ecs.ts), not code here.
import { createHash } from 'node:crypto'
import { eventTime } from '../../../src/sinks/event-time.js'
import type { EcsBuilder } from './ecs.js'

export const ECS_VERSION = '8.17.0'

type Rec = Record<string, unknown>

/** The deterministic _id: the same line of the same dataset is the same document, however often it is sent. */
export function documentId(dataset: string, line: string): string {
  return createHash('sha256').update(dataset).update('\n').update(line).digest('base64url')
}

export interface DocumentContext {
  readonly dataset: string
  readonly namespace: string
  readonly eventTimeField: string
  /** One timestamp per batch: when this service took it in. */
  readonly ingested: string
  /** The dataset's ECS fields (from schemas/ecs); absent: only the fields every document gets. */
  readonly ecs?: EcsBuilder
}

function timestamp(line: string, record: Rec, ctx: { eventTimeField: string, ingested: string }): string {
  return eventTime(line, record, ctx.eventTimeField) ?? `${ctx.ingested.slice(0, 19)}.${ctx.ingested.slice(20, 23)}000000Z`
}

/** The document text: ECS fields, then the Cloudflare line's own fields, unchanged. */
export function documentText(line: string, record: Rec, ctx: DocumentContext): string {
  const e: Rec = {
    '@timestamp': timestamp(line, record, ctx),
    ecs: { version: ECS_VERSION },
    data_stream: { type: 'logs', dataset: `cloudflare.${ctx.dataset}`, namespace: ctx.namespace },
    event: { dataset: `cloudflare.${ctx.dataset}`, module: 'cloudflare', kind: 'event', ingested: ctx.ingested }
  }
  ctx.ecs?.(record, e, line)
  const head = JSON.stringify(e)
  // '{}' has no fields to follow ours; every other object line continues after its '{'.
  const body = line.trimStart().slice(1).trimStart()
  return body.startsWith('}') ? head : `${head.slice(0, -1)},${body}`
}

export interface IntegrationContext {
  /** Elastic's data stream name for the dataset (`http_request`). */
  readonly stream: string
  readonly namespace: string
  readonly eventTimeField: string
  readonly ingested: string
}

/**
 * The document Elastic's Cloudflare Logpush integration expects (what its Agent input sends): the
 * line as `message`, which the integration's ingest pipeline parses, plus the data stream fields
 * its templates declare as constant keywords.
 */
export function integrationDocumentText(line: string, record: Rec, ctx: IntegrationContext): string {
  const dataset = `cloudflare_logpush.${ctx.stream}`
  return JSON.stringify({
    '@timestamp': timestamp(line, record, ctx),
    message: line,
    data_stream: { type: 'logs', dataset, namespace: ctx.namespace },
    event: { dataset, module: 'cloudflare_logpush' }
  })
}
