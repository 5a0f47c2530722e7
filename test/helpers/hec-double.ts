/**
 * A Splunk HTTP Event Collector (HEC) double: an HTTP server on 127.0.0.1 that answers the way
 * Splunk's documentation says HEC answers, so sink tests can run without Splunk.
 *
 * Documents followed (stored copies read through the workplace search tool):
 *   [FMT]  Format events for HTTP Event Collector
 *          https://help.splunk.com/splunk-enterprise/get-data-in/collect-http-event-data/format-events-for-http-event-collector
 *          (older copy: http://dev.splunk.com/view/event-collector/SP-CAAAE6P)
 *          - auth: `Authorization: Splunk <token>`, Basic auth with the token as the password and any
 *            user, or a query string `?token=` (only where the token allows it)
 *          - batches: envelopes one after another in one request, no array; an event cannot be split
 *            across requests; `event` may be a string, a number or an object
 *          - metadata: time (epoch seconds `<sec>.<ms>`), host, source, sourcetype, index, fields
 *          - channel: header `X-Splunk-Request-Channel` or query `?channel=`
 *   [ERR]  Troubleshoot HTTP Event Collector, "Possible error codes"
 *          https://help.splunk.com/en/splunk-enterprise/get-data-in/collect-http-event-data/troubleshoot-http-event-collector
 *          as mirrored in gjanders/SplunkAdmins lookups/splunkadmins_hec_reply_code_lookup.csv
 *          (codes 0–22 with their HTTP statuses and texts: HEC_CODES below)
 *   [EP]   HTTP Event Collector REST API endpoints
 *          https://help.splunk.com/en/splunk-enterprise/get-started/get-data-in/9.0/get-data-with-http-event-collector/http-event-collector-rest-api-endpoints
 *          (/services/collector, /event, /event/1.0, /raw, /ack, /health, /health/1.0; query parameters such
 *          as time= are accepted on /event too. /raw/1.0 is also served: the stored copy of the page was
 *          cut off before the raw rows, so that alias is unconfirmed)
 *   [ACK]  About HTTP Event Collector Indexer Acknowledgment
 *          https://help.splunk.com/splunk-enterprise/get-data-in/collect-http-event-data/about-http-event-collector-indexer-acknowledgment
 *          (ack is per token; every request then needs a channel; the 200 carries `ackId`; clients poll
 *          POST /services/collector/ack with {"acks":[…]} and get {"acks":{"<id>":true|false}};
 *          a 200 without ack only means the data looked valid)
 *   [LIM]  limits.conf [http_input] max_content_length (800 MiB since 6.5.0), as quoted by
 *          splunk/fluent-plugin-splunk-hec README and open-telemetry/opentelemetry-collector-contrib#9983;
 *          the limit is on the request content as sent (compressed), per
 *          open-telemetry/opentelemetry-collector-contrib#13995
 *
 * Behaviour taken from observed Splunk answers where the docs are silent (each cited where used):
 *   - partial acceptance: events before the first bad one are indexed and the answer names the
 *     0-based `invalid-event-number` (moby/moby#35862; also on 503, open-telemetry/opentelemetry-collector-contrib#36113)
 *   - with ack on, an error answer that follows indexed events also carries an `ackId`
 *     (splunk/kafka-connect-splunk#200: {"text":"Event field cannot be blank","code":13,"invalid-event-number":2,"ackId":3})
 *   - an array body → {"text":"Invalid data format","code":6,"invalid-event-number":0}
 *     (brycied00d/fluent-plugin-splunk-http-eventcollector#32)
 *   - `"event": null` → code 6 "Invalid data format" (splunkd: "Got unexpected null element while
 *     expecting event's raw text", signalfx/splunk-otel-collector-chart#1002)
 *   - `"event": ""` or whitespace only → code 13 (moby/moby#35862)
 *   - ackIds count from 0 per channel; an ackId reported `true` is forgotten and then reads `false`
 *     (vectordotdev/vector rfcs/2021-10-29-9465-splunk-hec-indexer-acknowledgements.md, observed on Splunk 7.3.2)
 *   - responses carry `Content-Type: application/json; charset=UTF-8`, `Server: Splunkd`,
 *     `Vary: Authorization`, `X-Content-Type-Options: nosniff` (headers of a real HEC 400 quoted in
 *     signalfx/splunk-otel-collector-chart#696)
 *
 * Inferences (nothing documented found; kept conservative):
 *   - `"event": {}` counts as blank (code 13); unconfirmed against a real Splunk
 *   - `fields` must be a flat object (values scalars or arrays of scalars), else code 15 "Error in
 *     handling indexed fields"; the docs call `fields` flat, the exact rejection rule is a guess
 *   - /raw splits the body on runs of CR/LF (props.conf default LINE_BREAKER `([\r\n]+)`) and drops
 *     empty lines; a real sourcetype may merge lines (SHOULD_LINEMERGE) differently
 *   - a channel is required (code 10/11) only when ack is on; the old dev docs say raw requests carry
 *     one, and Logpush always sends one, so clients should send it regardless
 *   - health takes no token; if one is given and is unknown/disabled it answers 400 code 21/22
 *     (the only 400-status token codes in the table; Vector's healthcheck reads 400 as "invalid token")
 *   - 413 body text and Content-Encoding other than gzip/identity (400 code 6) are not documented
 */
import { createServer, STATUS_CODES, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo, Socket } from 'node:net'
import { gunzipSync } from 'node:zlib'

export interface HecEvent {
  event: unknown
  time?: number | string
  host?: string
  source?: string
  sourcetype?: string
  index?: string
  fields?: Record<string, unknown>
  /** the envelope text as received (/event), or the line (/raw) */
  raw: string
  channel?: string
  /** which endpoint took it */
  endpoint: 'event' | 'raw'
}

export interface HecFault {
  status: number
  code?: number
  text?: string
  invalidEventNumber?: number
  /** index this many events of the request first (partial acceptance), then answer the fault */
  afterEvents?: number
  /** destroy the socket without answering */
  closeSocket?: boolean
}

export interface HecDoubleOptions {
  tokens?: string[]
  /** tokens that exist but are disabled (403 code 1) */
  disabledTokens?: string[]
  /** allowed index names; default ['main'] */
  indexes?: string[]
  /** indexer acknowledgement enabled on the token */
  ack?: boolean
  /** limits.conf [http_input] max_content_length, bytes on the wire; default 838860800 */
  maxContentLength?: number
  /** inputs.conf allowQueryStringAuth */
  queryStringAuth?: boolean
}

export interface HecRequestRecord {
  method: string
  /** request target as received, query string included */
  path: string
  headers: Record<string, string | string[] | undefined>
  /** the request body after gunzip (as text) */
  requestBody: string
  /** HTTP status answered; 0 when the socket was destroyed instead */
  status: number
  /** the response body */
  body: string
}

export const DEFAULT_HEC_TOKEN = '11111111-2222-3333-4444-555555555555'

/** [ERR] code → [HTTP status, text]. */
export const HEC_CODES: Readonly<Record<number, readonly [number, string]>> = {
  0: [200, 'Success'],
  1: [403, 'Token disabled'],
  2: [401, 'Token is required'],
  3: [401, 'Invalid authorization'],
  4: [403, 'Invalid token'],
  5: [400, 'No data'],
  6: [400, 'Invalid data format'],
  7: [400, 'Incorrect index'],
  8: [500, 'Internal server error'],
  9: [503, 'Server is busy'],
  10: [400, 'Data channel is missing'],
  11: [400, 'Invalid data channel'],
  12: [400, 'Event field is required'],
  13: [400, 'Event field cannot be blank'],
  14: [400, 'ACK is disabled'],
  15: [400, 'Error in handling indexed fields'],
  16: [400, 'Query string authorization is not enabled'],
  17: [200, 'HEC is healthy'],
  18: [503, 'HEC is unhealthy, queues are full'],
  19: [503, 'HEC is unhealthy, ack service unavailable'],
  20: [503, 'HEC is unhealthy, queues are full, ack service unavailable'],
  21: [400, 'Invalid token'],
  22: [400, 'Token disabled']
}

const EVENT_PATHS = new Set(['/services/collector', '/services/collector/event', '/services/collector/event/1.0'])
const RAW_PATHS = new Set(['/services/collector/raw', '/services/collector/raw/1.0'])
const ACK_PATHS = new Set(['/services/collector/ack'])
const HEALTH_PATHS = new Set(['/services/collector/health', '/services/collector/health/1.0'])
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

export type JsonPiece =
  | { kind: 'object', text: string }
  | { kind: 'array', text: string }
  | { kind: 'invalid', text: string }

/**
 * Splits a body of concatenated JSON values without parsing the whole body: yields each top-level
 * `{…}` as text (strings and escapes respected), an `array` piece for a top-level `[…]`, and an
 * `invalid` piece for anything else (bare scalars, unbalanced or unterminated text), after which
 * it stops. Whitespace between values is skipped.
 */
export function* splitConcatenatedJson(text: string): Generator<JsonPiece> {
  let i = 0
  const n = text.length
  while (true) {
    while (i < n && isJsonSpace(text.charCodeAt(i))) i++
    if (i >= n) return
    const first = text[i]
    if (first !== '{' && first !== '[') {
      yield { kind: 'invalid', text: text.slice(i) }
      return
    }
    const start = i
    let depth = 0
    let inString = false
    let end = -1
    for (; i < n; i++) {
      const c = text[i]
      if (inString) {
        if (c === '\\') i++
        else if (c === '"') inString = false
        continue
      }
      if (c === '"') inString = true
      else if (c === '{' || c === '[') depth++
      else if (c === '}' || c === ']') {
        depth--
        if (depth === 0) { end = i + 1; break }
        if (depth < 0) break
      }
    }
    if (end < 0) {
      yield { kind: 'invalid', text: text.slice(start) }
      return
    }
    i = end
    yield { kind: first === '{' ? 'object' : 'array', text: text.slice(start, end) }
  }
}

function isJsonSpace(c: number): boolean {
  return c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d
}

interface Reply {
  status: number
  body: Record<string, unknown> | null
}

function codeReply(code: number, extra: Record<string, unknown> = {}): Reply {
  const [status, text] = HEC_CODES[code] ?? [500, 'Internal server error']
  return { status, body: { text, code, ...extra } }
}

interface AckEntry {
  state: 'pending' | 'ready' | 'lost'
  events: HecEvent[]
}

interface Channel {
  nextAckId: number
  acks: Map<number, AckEntry>
}

type Outcome =
  | { ok: true, events: HecEvent[] }
  | { ok: false, events: HecEvent[], reply: Reply }

export class HecDouble {
  readonly url: string
  readonly events: HecEvent[] = []
  readonly requests: HecRequestRecord[] = []

  private readonly server: Server
  private readonly tokens: Set<string>
  private readonly disabledTokens: Set<string>
  private readonly indexes: Set<string>
  private readonly ack: boolean
  private readonly maxContentLength: number
  private readonly queryStringAuth: boolean
  private readonly faults: HecFault[] = []
  private readonly channels = new Map<string, Channel>()
  private readonly sockets = new Set<Socket>()
  private healthy = true
  private ackMode: 'all' | 'none' = 'all'
  private waiters: Array<() => void> = []

  private constructor(server: Server, url: string, opts: HecDoubleOptions) {
    this.server = server
    this.url = url
    this.tokens = new Set(opts.tokens ?? [DEFAULT_HEC_TOKEN])
    this.disabledTokens = new Set(opts.disabledTokens ?? [])
    this.indexes = new Set(opts.indexes ?? ['main'])
    this.ack = opts.ack ?? false
    this.maxContentLength = opts.maxContentLength ?? 838_860_800
    this.queryStringAuth = opts.queryStringAuth ?? false
  }

  static async start(opts: HecDoubleOptions = {}): Promise<HecDouble> {
    let double: HecDouble | undefined
    const server = createServer((req, res) => {
      if (double === undefined) { res.destroy(); return }
      double.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          double!.send(req, res, '', codeReply(8, { detail: String(err) }))
        }
      })
    })
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(0, '127.0.0.1', () => { server.off('error', reject); resolve() })
    })
    const { port } = server.address() as AddressInfo
    double = new HecDouble(server, `http://127.0.0.1:${port}`, opts)
    const sockets = double.sockets
    server.on('connection', (socket) => {
      sockets.add(socket)
      socket.on('close', () => sockets.delete(socket))
    })
    return double
  }

  /**
   * Queue faults: each next POST to an /event or /raw path consumes one, once it has passed
   * authentication, the size limit, decoding and (ack mode) the channel check; /ack and /health
   * never consume one.
   */
  injectFaults(...faults: HecFault[]): void {
    this.faults.push(...faults)
  }

  /** Faults not consumed yet. */
  get pendingFaults(): number {
    return this.faults.length
  }

  setHealthy(healthy: boolean): void {
    this.healthy = healthy
  }

  /**
   * Ack mode only. 'all' (default): requests are indexed at once and their ackIds read true.
   * 'none': events of new requests are held back from `events` and their ackIds read false; switching
   * back to 'all' commits every held request (in ackId order) and lets its ackId read true.
   */
  acknowledge(mode: 'all' | 'none'): void {
    this.ackMode = mode
    if (mode === 'all') {
      for (const channel of this.channels.values()) {
        for (const entry of channel.acks.values()) {
          if (entry.state === 'pending') {
            entry.state = 'ready'
            this.commit(entry.events)
          }
        }
      }
    }
  }

  /** Simulate loss: held (never acknowledged) requests are discarded and their ackIds stay false. */
  dropUnacknowledged(): void {
    for (const channel of this.channels.values()) {
      for (const entry of channel.acks.values()) {
        if (entry.state === 'pending') {
          entry.state = 'lost'
          entry.events = []
        }
      }
    }
  }

  /** Resolves once `events` holds at least `count` events. */
  async waitForEvents(count: number, timeoutMs = 5000): Promise<HecEvent[]> {
    const deadline = Date.now() + timeoutMs
    while (this.events.length < count) {
      const left = deadline - Date.now()
      if (left <= 0) throw new Error(`HEC double: ${this.events.length} of ${count} events after ${timeoutMs} ms`)
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 1000))
        this.waiters.push(() => { clearTimeout(timer); resolve() })
      })
    }
    return this.events
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => {
      this.server.close(() => resolve())
      this.server.closeAllConnections()
      for (const socket of this.sockets) socket.destroy()
    })
  }

  private commit(events: HecEvent[]): void {
    if (events.length === 0) return
    this.events.push(...events)
    const waiters = this.waiters
    this.waiters = []
    for (const w of waiters) w()
  }

  private send(req: IncomingMessage, res: ServerResponse, requestBody: string, reply: Reply): void {
    const body = reply.body === null ? '' : JSON.stringify(reply.body)
    this.requests.push({
      method: req.method ?? '',
      path: req.url ?? '',
      headers: { ...req.headers },
      requestBody,
      status: reply.status,
      body
    })
    res.writeHead(reply.status, {
      'Content-Type': 'application/json; charset=UTF-8',
      'Content-Length': Buffer.byteLength(body),
      Server: 'Splunkd',
      Vary: 'Authorization',
      'X-Content-Type-Options': 'nosniff'
    })
    res.end(body)
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const target = new URL(req.url ?? '/', 'http://hec.invalid')
    const path = target.pathname.replace(/\/+$/, '') || '/'
    const raw = await readBody(req)

    const isEvent = EVENT_PATHS.has(path)
    const isRaw = RAW_PATHS.has(path)
    const isAck = ACK_PATHS.has(path)
    const isHealth = HEALTH_PATHS.has(path)

    if (!isEvent && !isRaw && !isAck && !isHealth) {
      this.send(req, res, '', { status: 404, body: { text: 'The requested URL was not found on this server.', code: 404 } })
      return
    }

    if (isHealth) {
      this.send(req, res, '', this.health(req, target))
      return
    }

    if (req.method !== 'POST') {
      this.send(req, res, '', { status: 405, body: { text: 'Method Not Allowed' } })
      return
    }

    const auth = this.authenticate(req, target)
    if (auth !== null) {
      this.send(req, res, '', auth)
      return
    }

    // [LIM] the limit is on the content as sent.
    if (raw.length > this.maxContentLength) {
      this.send(req, res, '', { status: 413, body: { text: `Content-Length of ${raw.length} too large (maximum is ${this.maxContentLength})` } })
      return
    }

    const encoding = String(req.headers['content-encoding'] ?? 'identity').trim().toLowerCase()
    let bodyText: string
    try {
      if (encoding === 'gzip' || encoding === 'x-gzip') bodyText = gunzipSync(raw).toString('utf8')
      else if (encoding === 'identity' || encoding === '') bodyText = raw.toString('utf8')
      else throw new Error(`unsupported Content-Encoding ${encoding}`)
    } catch {
      this.send(req, res, '', codeReply(6))
      return
    }

    // [FMT] the channel comes as a header or as ?channel=.
    const channelId = target.searchParams.get('channel') ?? headerValue(req, 'x-splunk-request-channel')
    if (this.ack) {
      if (channelId === undefined || channelId === '') {
        this.send(req, res, bodyText, codeReply(10))
        return
      }
      if (!GUID.test(channelId)) {
        this.send(req, res, bodyText, codeReply(11))
        return
      }
    } else if (isAck) {
      this.send(req, res, bodyText, codeReply(14))
      return
    }

    if (isAck) {
      this.send(req, res, bodyText, this.pollAcks(channelId!, bodyText))
      return
    }

    const fault = this.faults.shift()
    if (fault?.closeSocket === true) {
      this.requests.push({ method: req.method ?? '', path: req.url ?? '', headers: { ...req.headers }, requestBody: bodyText, status: 0, body: '' })
      req.socket.destroy()
      return
    }

    const limit = fault?.afterEvents ?? (fault !== undefined ? 0 : Infinity)
    const outcome = isEvent
      ? this.parseEvents(bodyText, target, channelId, limit)
      : this.parseRaw(bodyText, target, channelId, limit)

    let reply: Reply
    if (fault !== undefined && (outcome.ok || outcome.events.length >= limit)) {
      // The fault wins unless the request failed on its own before reaching `afterEvents`.
      const accepted = outcome.events.slice(0, limit)
      const ackId = this.record(accepted, channelId, false)
      reply = faultReply(fault, fault.afterEvents !== undefined ? accepted.length : undefined)
      if (ackId !== undefined && reply.body !== null) reply.body.ackId = ackId
    } else if (outcome.ok) {
      const ackId = this.record(outcome.events, channelId, true)
      reply = codeReply(0, ackId !== undefined ? { ackId } : {})
    } else {
      const ackId = this.record(outcome.events, channelId, false)
      reply = outcome.reply
      if (ackId !== undefined && reply.body !== null) reply.body.ackId = ackId
    }
    this.send(req, res, bodyText, reply)
  }

  /**
   * Commits accepted events (or holds them in ack mode 'none') and returns the ackId in ack mode.
   * An ackId is issued on success, and on an error only when some events were accepted.
   */
  private record(events: HecEvent[], channelId: string | undefined, success: boolean): number | undefined {
    if (!this.ack) {
      this.commit(events)
      return undefined
    }
    if (!success && events.length === 0) return undefined
    const channel = this.channel(channelId!)
    const ackId = channel.nextAckId++
    if (this.ackMode === 'all') {
      channel.acks.set(ackId, { state: 'ready', events })
      this.commit(events)
    } else {
      channel.acks.set(ackId, { state: 'pending', events })
    }
    return ackId
  }

  private channel(id: string): Channel {
    const key = id.toLowerCase()
    let channel = this.channels.get(key)
    if (channel === undefined) {
      channel = { nextAckId: 0, acks: new Map() }
      this.channels.set(key, channel)
    }
    return channel
  }

  private pollAcks(channelId: string, bodyText: string): Reply {
    let ids: unknown
    try {
      ids = (JSON.parse(bodyText) as { acks?: unknown }).acks
    } catch {
      return codeReply(6)
    }
    if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id) && (id as number) >= 0)) return codeReply(6)
    const channel = this.channel(channelId)
    const acks: Record<string, boolean> = {}
    for (const id of ids as number[]) {
      const entry = channel.acks.get(id)
      if (entry?.state === 'ready') {
        acks[String(id)] = true
        channel.acks.delete(id) // reported true once, then forgotten
      } else {
        acks[String(id)] = false
      }
    }
    return { status: 200, body: { acks } }
  }

  private health(req: IncomingMessage, target: URL): Reply {
    const given = tokenFrom(req, target)
    if (given !== undefined) {
      if (this.disabledTokens.has(given)) return codeReply(22)
      if (!this.tokens.has(given)) return codeReply(21)
    }
    return codeReply(this.healthy ? 17 : 18)
  }

  /** null when authorised, else the reply. */
  private authenticate(req: IncomingMessage, target: URL): Reply | null {
    const header = headerValue(req, 'authorization')
    let token: string | undefined
    if (header !== undefined) {
      const m = /^(\S+)\s+(.*)$/.exec(header.trim())
      if (m === null) return codeReply(3)
      const scheme = m[1]!.toLowerCase()
      const value = m[2]!.trim()
      if (scheme === 'splunk') {
        token = value
      } else if (scheme === 'basic') {
        const decoded = Buffer.from(value, 'base64').toString('utf8')
        const colon = decoded.indexOf(':')
        if (colon < 0) return codeReply(3)
        token = decoded.slice(colon + 1)
      } else {
        return codeReply(3)
      }
      if (token === '') return codeReply(3)
    } else {
      const q = target.searchParams.get('token')
      if (q === null) return codeReply(2)
      if (!this.queryStringAuth) return codeReply(16)
      token = q
    }
    if (this.disabledTokens.has(token)) return codeReply(1)
    if (!this.tokens.has(token)) return codeReply(4)
    return null
  }

  private checkIndex(index: unknown): boolean {
    return index === undefined || (typeof index === 'string' && this.indexes.has(index))
  }

  private parseEvents(text: string, target: URL, channel: string | undefined, limit: number): Outcome {
    const q = queryMeta(target)
    const events: HecEvent[] = []
    let i = 0
    for (const piece of splitConcatenatedJson(text)) {
      if (events.length >= limit) return { ok: true, events }
      const bad = (code: number): Outcome => ({ ok: false, events, reply: codeReply(code, { 'invalid-event-number': i }) })
      if (piece.kind !== 'object') return bad(6)
      let env: Record<string, unknown>
      try {
        env = JSON.parse(piece.text) as Record<string, unknown>
      } catch {
        return bad(6)
      }
      if (!('event' in env)) return bad(12)
      const event = env.event
      if (event === null) return bad(6)
      if (isBlank(event)) return bad(13)
      const index = env.index ?? q.index
      if (!this.checkIndex(index)) return bad(7)
      if (env.fields !== undefined && !flatFields(env.fields)) return bad(15)
      const e: HecEvent = { event, raw: piece.text, endpoint: 'event' }
      const time = env.time ?? q.time
      if (typeof time === 'number' || typeof time === 'string') e.time = time
      const host = str(env.host) ?? q.host
      if (host !== undefined) e.host = host
      const source = str(env.source) ?? q.source
      if (source !== undefined) e.source = source
      const sourcetype = str(env.sourcetype) ?? q.sourcetype
      if (sourcetype !== undefined) e.sourcetype = sourcetype
      if (typeof index === 'string') e.index = index
      if (env.fields !== undefined) e.fields = env.fields as Record<string, unknown>
      if (channel !== undefined) e.channel = channel
      events.push(e)
      i++
    }
    if (i === 0) return { ok: false, events, reply: codeReply(5) }
    return { ok: true, events }
  }

  private parseRaw(text: string, target: URL, channel: string | undefined, limit: number): Outcome {
    const q = queryMeta(target)
    const lines = text.split(/[\r\n]+/).filter((l) => l.length > 0)
    if (lines.length === 0) return { ok: false, events: [], reply: codeReply(5) }
    if (!this.checkIndex(q.index)) return { ok: false, events: [], reply: codeReply(7) }
    const events: HecEvent[] = []
    for (const line of lines) {
      if (events.length >= limit) break
      const e: HecEvent = { event: line, raw: line, endpoint: 'raw' }
      if (q.time !== undefined) e.time = q.time
      if (q.host !== undefined) e.host = q.host
      if (q.source !== undefined) e.source = q.source
      if (q.sourcetype !== undefined) e.sourcetype = q.sourcetype
      if (q.index !== undefined) e.index = q.index
      if (channel !== undefined) e.channel = channel
      events.push(e)
    }
    return { ok: true, events }
  }
}

function faultReply(fault: HecFault, accepted: number | undefined): Reply {
  if (fault.code === undefined && fault.text === undefined && fault.invalidEventNumber === undefined && accepted === undefined) {
    // Plain HTTP failure (e.g. 429, 408): no HEC code.
    return { status: fault.status, body: { text: STATUS_CODES[fault.status] ?? 'Error' } }
  }
  const body: Record<string, unknown> = {
    text: fault.text ?? (fault.code !== undefined ? HEC_CODES[fault.code]?.[1] : undefined) ?? STATUS_CODES[fault.status] ?? 'Error'
  }
  if (fault.code !== undefined) body.code = fault.code
  const number = fault.invalidEventNumber ?? accepted
  if (number !== undefined) body['invalid-event-number'] = number
  return { status: fault.status, body }
}

function queryMeta(target: URL): { host?: string, source?: string, sourcetype?: string, index?: string, time?: string } {
  const out: { host?: string, source?: string, sourcetype?: string, index?: string, time?: string } = {}
  for (const key of ['host', 'source', 'sourcetype', 'index', 'time'] as const) {
    const v = target.searchParams.get(key)
    if (v !== null) out[key] = v
  }
  return out
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined
}

function isBlank(event: unknown): boolean {
  if (typeof event === 'string') return event.trim() === ''
  if (typeof event === 'object' && event !== null && !Array.isArray(event)) return Object.keys(event).length === 0
  return false
}

/** [FMT] `fields` is a flat object: values are scalars or arrays of scalars. */
function flatFields(fields: unknown): boolean {
  if (typeof fields !== 'object' || fields === null || Array.isArray(fields)) return false
  const scalar = (v: unknown): boolean => v === null || ['string', 'number', 'boolean'].includes(typeof v)
  return Object.values(fields).every((v) => scalar(v) || (Array.isArray(v) && v.every(scalar)))
}

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name]
  return Array.isArray(v) ? v[0] : v
}

function tokenFrom(req: IncomingMessage, target: URL): string | undefined {
  const header = headerValue(req, 'authorization')
  if (header !== undefined) {
    const m = /^(\S+)\s+(.*)$/.exec(header.trim())
    if (m === null) return ''
    if (m[1]!.toLowerCase() === 'basic') {
      const decoded = Buffer.from(m[2]!.trim(), 'base64').toString('utf8')
      return decoded.slice(decoded.indexOf(':') + 1)
    }
    return m[2]!.trim()
  }
  return target.searchParams.get('token') ?? undefined
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = []
  for await (const chunk of req) chunks.push(chunk as Buffer)
  return Buffer.concat(chunks)
}
