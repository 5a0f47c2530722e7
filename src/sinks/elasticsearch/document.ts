// A Cloudflare line becomes an Elasticsearch document by putting ECS fields in front of its own,
// as text: the Cloudflare fields stay exactly as sent (an unixnano integer keeps all 19 digits),
// which re-serialising a parsed object could not promise.
import { createHash } from 'node:crypto'
import { eventTime } from '../event-time.js'

export const ECS_VERSION = '8.17.0'

type Rec = Record<string, unknown>

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined)
const int = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined)

/** The deterministic _id: the same line of the same dataset is the same document, however often it is sent. */
export function documentId(dataset: string, line: string): string {
  return createHash('sha256').update(dataset).update('\n').update(line).digest('base64url')
}

type Ecs = Rec

function set(target: Ecs, path: string, value: unknown): void {
  if (value === undefined) return
  const keys = path.split('.')
  let o = target
  for (let i = 0; i < keys.length - 1; i++) o = (o[keys[i]!] ??= {}) as Ecs
  o[keys[keys.length - 1]!] = value
}

/** ECS fields per dataset, from Cloudflare's fields (as Elastic's own integration maps them). */
const ecsByDataset: Record<string, (r: Rec, e: Ecs) => void> = {
  http_requests (r, e) {
    set(e, 'event.category', ['network', 'web'])
    set(e, 'event.type', ['access'])
    set(e, 'event.id', str(r.RayID))
    const status = int(r.EdgeResponseStatus)
    if (status !== undefined) set(e, 'event.outcome', status >= 400 ? 'failure' : 'success')
    set(e, 'source.ip', str(r.ClientIP))
    set(e, 'source.port', int(r.ClientSrcPort))
    set(e, 'source.as.number', int(r.ClientASN))
    set(e, 'source.geo.country_iso_code', str(r.ClientCountry)?.toUpperCase())
    set(e, 'source.geo.city_name', str(r.ClientCity))
    set(e, 'destination.ip', str(r.OriginIP))
    set(e, 'http.request.method', str(r.ClientRequestMethod))
    set(e, 'http.request.bytes', int(r.ClientRequestBytes))
    set(e, 'http.request.referrer', str(r.ClientRequestReferer))
    set(e, 'http.response.status_code', status)
    set(e, 'http.response.bytes', int(r.EdgeResponseBytes))
    set(e, 'http.response.mime_type', str(r.EdgeResponseContentType))
    const host = str(r.ClientRequestHost)
    const uri = str(r.ClientRequestURI)
    const scheme = str(r.ClientRequestScheme)
    set(e, 'url.original', host && uri !== undefined ? `${scheme ?? 'https'}://${host}${uri}` : uri)
    set(e, 'url.domain', host)
    set(e, 'url.path', str(r.ClientRequestPath))
    set(e, 'url.scheme', scheme)
    set(e, 'user_agent.original', str(r.ClientRequestUserAgent))
    set(e, 'network.protocol', 'http')
    const proto = str(r.ClientRequestProtocol)
    if (proto) set(e, 'network.transport', proto.startsWith('HTTP/3') ? 'udp' : 'tcp')
    set(e, 'network.direction', 'ingress')
    const tls = str(r.ClientSSLProtocol)
    if (tls && tls !== 'none') set(e, 'tls.version_protocol', 'tls')
    set(e, 'tls.cipher', str(r.ClientSSLCipher))
    set(e, 'rule.id', str(r.SecurityRuleID))
    set(e, 'rule.name', str(r.SecurityRuleDescription))
    set(e, 'observer.name', str(r.EdgeColoCode))
  },
  network_analytics_logs (r, e) {
    set(e, 'event.category', ['network'])
    set(e, 'event.type', ['connection'])
    const outcome = str(r.Outcome)
    set(e, 'event.outcome', outcome === 'pass' ? 'success' : outcome === 'drop' ? 'failure' : undefined)
    set(e, 'event.action', outcome)
    set(e, 'source.ip', str(r.IPSourceAddress))
    set(e, 'source.port', int(r.SourcePort))
    set(e, 'source.as.number', int(r.SourceASN))
    set(e, 'source.as.organization.name', str(r.SourceASNName))
    set(e, 'source.geo.country_iso_code', str(r.SourceCountry)?.toUpperCase())
    set(e, 'destination.ip', str(r.IPDestinationAddress))
    set(e, 'destination.port', int(r.DestinationPort))
    set(e, 'destination.as.number', int(r.DestinationASN))
    set(e, 'destination.as.organization.name', str(r.DestinationASNName))
    set(e, 'destination.geo.country_iso_code', str(r.DestinationCountry)?.toUpperCase())
    set(e, 'network.transport', str(r.IPProtocolName)?.toLowerCase())
    const proto = int(r.IPProtocol)
    set(e, 'network.iana_number', proto === undefined ? undefined : String(proto))
    const direction = str(r.Direction)
    set(e, 'network.direction', direction === 'ingress' || direction === 'egress' ? direction : undefined)
    set(e, 'rule.id', str(r.RuleID))
    set(e, 'rule.name', str(r.RuleName))
    set(e, 'rule.ruleset', str(r.RulesetID))
    set(e, 'observer.name', str(r.ColoName) ?? str(r.ColoCode))
    set(e, 'observer.geo.country_iso_code', str(r.ColoCountry)?.toUpperCase())
    set(e, 'observer.geo.city_name', str(r.ColoCity))
  }
}

export interface DocumentContext {
  readonly dataset: string
  readonly namespace: string
  readonly eventTimeField: string
  /** One timestamp per batch: when this service took it in. */
  readonly ingested: string
}

/** The document text: ECS fields, then the Cloudflare line's own fields, unchanged. */
export function documentText(line: string, record: Rec, ctx: DocumentContext): string {
  const e: Ecs = {
    '@timestamp': eventTime(line, record, ctx.eventTimeField) ?? `${ctx.ingested.slice(0, 19)}.${ctx.ingested.slice(20, 23)}000000Z`,
    ecs: { version: ECS_VERSION },
    data_stream: { type: 'logs', dataset: `cloudflare.${ctx.dataset}`, namespace: ctx.namespace },
    event: { dataset: `cloudflare.${ctx.dataset}`, module: 'cloudflare', kind: 'event', ingested: ctx.ingested }
  }
  ecsByDataset[ctx.dataset]?.(record, e)
  const head = JSON.stringify(e)
  // '{}' has no fields to follow ours; every other object line continues after its '{'.
  const body = line.trimStart().slice(1).trimStart()
  return body.startsWith('}') ? head : `${head.slice(0, -1)},${body}`
}
