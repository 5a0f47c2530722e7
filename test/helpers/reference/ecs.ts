// The reference for test/sinks/document-differential.test.ts: src/sinks/elasticsearch/ecs.ts as it was at
// commit 98203ed, before its per-document work was made cheaper (issue 26). Documents built by
// the current code must equal this code's, byte for byte. Not used by the service.
// ECS fields for a Cloudflare line, from data: schemas/ecs/<dataset>.yaml says which Cloudflare
// field becomes which ECS field (the way Elastic's Cloudflare Logpush integration maps it, ECS
// otherwise) and through which of a few named transforms. This file is the one generic builder
// that reads those files; no dataset has code of its own.
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { isIP } from 'node:net'
import { parse as parseYaml } from 'yaml'
import { eventTime } from '../../../src/sinks/event-time.js'

type Rec = Record<string, unknown>

/** How Elasticsearch indexes an ECS field we emit (schemas/ecs/_types.yaml). */
export type EcsType = 'keyword' | 'long' | 'double' | 'ip' | 'date' | 'boolean' | 'flattened' | 'object'

/** One line of a mapping file's `ecs:` list. */
export interface EcsRule {
  /** Cloudflare field(s); absent for a constant (`value`). A list: the first present one, or the inputs of `url`/`community_id`. */
  readonly from?: string | readonly string[]
  /** ECS field; for `pair` two of them; for `url` the object that gets the URL's parts. */
  readonly to: string | readonly string[]
  readonly transform?: Transform
  /** A constant, or with `from` the value to set when the field is present (e.g. event.type). */
  readonly value?: unknown
  /** `map`: Cloudflare value (as text) → ECS value; `default` for any other present value. */
  readonly map?: Readonly<Record<string, unknown>>
  readonly default?: unknown
  /** `split` and `pair`: the separator (`,` and `/` by default). */
  readonly separator?: string
  /** A dotted path inside the value (an object field, or JSON text with `json`). */
  readonly path?: string
  /** `scale`: the factor (1000000 turns milliseconds into ECS's nanosecond durations). */
  readonly factor?: number
  /** Copy: a leading text to drop (`?` before a query string). */
  readonly strip?: string
  /** Add to the ECS array (related.ip, event.type) instead of setting it; duplicates are dropped. */
  readonly append?: boolean
}

export const TRANSFORMS = ['lowercase', 'uppercase', 'map', 'split', 'json', 'url', 'pair', 'string', 'date', 'duration', 'scale', 'community_id', 'http_outcome'] as const
export type Transform = typeof TRANSFORMS[number]

export interface EcsMapping {
  readonly dataset: string
  /** Elastic's data stream for this dataset (`http_request` for http_requests), null when Elastic has none. */
  readonly elastic: string | null
  readonly rules: readonly EcsRule[]
}

export interface EcsSet {
  readonly types: ReadonlyMap<string, EcsType>
  readonly mappings: ReadonlyMap<string, EcsMapping>
}

/** The parts of a URL that `url` writes under its target (what Elastic's uri_parts processor writes). */
const URL_PARTS: ReadonlyArray<[string, EcsType]> = [
  ['original', 'keyword'], ['scheme', 'keyword'], ['domain', 'keyword'], ['port', 'long'], ['path', 'keyword'],
  ['query', 'keyword'], ['fragment', 'keyword'], ['extension', 'keyword'], ['username', 'keyword']
]

/** Every ECS field a rule can write, for the index template and the tests. */
export function ruleTargets(rule: EcsRule): string[] {
  const to = typeof rule.to === 'string' ? [rule.to] : [...rule.to]
  if (rule.transform === 'url') return URL_PARTS.map(([p]) => `${to[0]}.${p}`)
  return to
}

const fromList = (r: EcsRule): string[] => r.from === undefined ? [] : typeof r.from === 'string' ? [r.from] : [...r.from]

/** Reads schemas/ecs: `_types.yaml` (ECS field → type) and one `<dataset>.yaml` per dataset; throws on anything it cannot use. */
export function loadEcs(dir: string): EcsSet {
  const types = new Map(Object.entries(parseYaml(readFileSync(join(dir, '_types.yaml'), 'utf8')) as Record<string, EcsType>))
  const mappings = new Map<string, EcsMapping>()
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.yaml') && !f.startsWith('_')).sort()) {
    const dataset = file.slice(0, -'.yaml'.length)
    const doc = parseYaml(readFileSync(join(dir, file), 'utf8')) as { elastic?: string | null, ecs?: EcsRule[] }
    const rules = doc.ecs ?? []
    for (const [i, rule] of rules.entries()) {
      const where = `schemas/ecs/${file}, rule ${i + 1}`
      if (rule.transform !== undefined && !TRANSFORMS.includes(rule.transform)) throw new Error(`${where}: unknown transform "${rule.transform}" (known: ${TRANSFORMS.join(', ')})`)
      if (rule.from === undefined && rule.value === undefined) throw new Error(`${where}: needs "from" or "value"`)
      if (rule.transform === 'map' && !rule.map) throw new Error(`${where}: transform "map" needs "map"`)
      if (rule.transform === 'pair' && (typeof rule.to === 'string' || rule.to.length !== 2)) throw new Error(`${where}: transform "pair" writes two fields`)
      for (const target of ruleTargets(rule)) {
        if (!types.has(target)) throw new Error(`${where}: ECS field "${target}" has no type in schemas/ecs/_types.yaml`)
      }
    }
    mappings.set(dataset, { dataset, elastic: doc.elastic ?? null, rules })
  }
  return { types, mappings }
}

const present = (v: unknown): boolean =>
  v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0) && !(typeof v === 'object' && !Array.isArray(v) && Object.keys(v as Rec).length === 0)

/** Converts a value to what the ECS field's type accepts; undefined when it cannot (never a mapping error). */
function coerce(v: unknown, type: EcsType): unknown {
  if (Array.isArray(v)) {
    const out = v.map((x) => coerce(x, type)).filter((x) => x !== undefined)
    return out.length > 0 ? out : undefined
  }
  switch (type) {
    case 'keyword':
      return typeof v === 'string' ? (v === '' ? undefined : v) : typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined
    case 'long': {
      const n = typeof v === 'string' && /^-?\d+$/.test(v.trim()) ? Number(v) : v
      return typeof n === 'number' && Number.isSafeInteger(n) ? n : undefined
    }
    case 'double': {
      const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
      return typeof n === 'number' && Number.isFinite(n) ? n : undefined
    }
    case 'ip': return typeof v === 'string' && isIP(v) !== 0 ? v : undefined
    case 'boolean': return typeof v === 'boolean' ? v : v === 'true' ? true : v === 'false' ? false : undefined
    case 'date': return typeof v === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(v) ? v : undefined
    case 'flattened':
    case 'object': return typeof v === 'object' && v !== null ? v : undefined
  }
}

function setPath(target: Rec, path: string, value: unknown, append: boolean): void {
  const keys = path.split('.')
  let o = target
  for (let i = 0; i < keys.length - 1; i++) o = (o[keys[i]!] ??= {}) as Rec
  const last = keys[keys.length - 1]!
  if (!append) {
    o[last] = value
    return
  }
  const list = Array.isArray(o[last]) ? o[last] as unknown[] : o[last] === undefined ? [] : [o[last]]
  for (const v of Array.isArray(value) ? value : [value]) if (!list.includes(v)) list.push(v)
  o[last] = list
}

function pick(v: unknown, path: string): unknown {
  for (const k of path.split('.')) v = typeof v === 'object' && v !== null ? (v as Rec)[k] : undefined
  return v
}

/**
 * A timestamp field in any of Logpush's formats, as ISO 8601 with nanoseconds. With the line, a
 * unixnano integer keeps its last digits (the parsed number has lost them); without, it is exact to
 * about a quarter of a microsecond.
 */
function timeOf(record: Rec, field: string, line: string | undefined): string | undefined {
  return eventTime(line ?? '', record, field)
}

// scheme://[user@]host[:port][path][?query][#fragment], read as written: WHATWG URL parsing would
// resolve dot segments and re-encode, and url.original must be what the client asked for.
const URL_RE = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(?:([^@/?#]*)@)?(\[[^\]]*\]|[^:/?#]*)(?::(\d*))?([^?#]*)(?:\?([^#]*))?(?:#(.*))?$/s

function nanos(iso: string): bigint {
  return BigInt(Date.parse(iso.slice(0, 19) + 'Z')) * 1_000_000n + BigInt(iso.slice(20, 29).padEnd(9, '0'))
}

function urlParts(text: string): Rec | undefined {
  const m = URL_RE.exec(text)
  if (!m || m[3] === '') return undefined
  const [, scheme, user, host, port, path, query, fragment] = m
  const file = path!.slice(path!.lastIndexOf('/') + 1)
  const dot = file.lastIndexOf('.')
  return {
    original: text,
    scheme,
    // Bracketed IPv6 hosts are stored without brackets, as an address.
    domain: host!.replace(/^\[(.*)\]$/, '$1'),
    port: port ? Number(port) : undefined,
    path: path === '' ? undefined : path,
    query: query === '' ? undefined : query,
    fragment: fragment === '' ? undefined : fragment,
    extension: dot > 0 && dot < file.length - 1 ? file.slice(dot + 1) : undefined,
    username: user ? user.split(':')[0] : undefined
  }
}

const IANA: Readonly<Record<string, number>> = { icmp: 1, tcp: 6, udp: 17, gre: 47, esp: 50, icmpv6: 58, 'ipv6-icmp': 58, sctp: 132 }

/** Community ID v1 (https://github.com/corelight/community-id-spec), seed 0: the flow hash ECS puts in network.community_id. */
export function communityId(srcIp: string, dstIp: string, srcPort: number, dstPort: number, proto: number): string | undefined {
  const ipBytes = (ip: string): Buffer | undefined => {
    const v = isIP(ip)
    if (v === 4) return Buffer.from(ip.split('.').map(Number))
    if (v !== 6) return undefined
    const [head, tail = ''] = ip.split('::')
    const h = head ? head.split(':') : []
    const t = ip.includes('::') && tail ? tail.split(':') : []
    // An embedded IPv4 tail (::ffff:192.0.2.1) counts as two groups.
    const groups = [...h, ...Array(8 - h.length - t.length - (t.at(-1)?.includes('.') ? 1 : 0)).fill('0'), ...t]
    const out: number[] = []
    for (const g of groups) {
      if (g.includes('.')) out.push(...g.split('.').map(Number))
      else out.push(parseInt(g, 16) >> 8, parseInt(g, 16) & 255)
    }
    return out.length === 16 ? Buffer.from(out) : undefined
  }
  const s = ipBytes(srcIp)
  const d = ipBytes(dstIp)
  if (!s || !d || s.length !== d.length) return undefined
  // Only port-carrying protocols: ICMP's type/code rules and port-less protocols are not worth a wrong hash.
  if (proto !== 6 && proto !== 17 && proto !== 132) return undefined
  let a = { ip: s, port: srcPort }
  let b = { ip: d, port: dstPort }
  // The flow hashes the same in both directions: the smaller endpoint goes first.
  const cmp = Buffer.compare(a.ip, b.ip)
  if (cmp > 0 || (cmp === 0 && a.port > b.port)) [a, b] = [b, a]
  const port = (p: number): Buffer => Buffer.from([(p >> 8) & 255, p & 255])
  const hash = createHash('sha1')
    .update(Buffer.from([0, 0])).update(a.ip).update(b.ip).update(Buffer.from([proto, 0]))
    .update(port(a.port)).update(port(b.port))
    .digest('base64')
  return `1:${hash}`
}

/** Adds a dataset's ECS fields to `out`; `line` (the raw text of `record`) keeps unixnano times exact. */
export type EcsBuilder = (record: Rec, out: Rec, line?: string) => void

/** Compiles a dataset's rules once into one function that adds its ECS fields to `out`. */
export function compileEcs(mapping: EcsMapping, types: ReadonlyMap<string, EcsType>): EcsBuilder {
  const steps = mapping.rules.map((rule) => compileRule(rule, types))
  return (record, out, line) => {
    for (const step of steps) step(record, out, line)
  }
}

function compileRule(rule: EcsRule, types: ReadonlyMap<string, EcsType>): EcsBuilder {
  const from = fromList(rule)
  const to = typeof rule.to === 'string' ? rule.to : rule.to[0]!
  const append = rule.append === true
  const put = (out: Rec, field: string, v: unknown): void => {
    const c = v === undefined ? undefined : coerce(v, types.get(field)!)
    if (c !== undefined) setPath(out, field, c, append)
  }
  // The input: the first present `from` field, parsed when it holds JSON text (`json`), then
  // followed down `path` (a field inside an object, as workers_trace_events' Event.RayID).
  const json = rule.transform === 'json'
  const first = (r: Rec): unknown => {
    let v: unknown
    for (const f of from) {
      if (present(r[f])) {
        v = r[f]
        break
      }
    }
    if (json && typeof v === 'string') {
      try {
        v = JSON.parse(v)
      } catch {
        return undefined
      }
    }
    if (rule.path !== undefined) v = pick(v, rule.path)
    return present(v) ? v : undefined
  }
  if (from.length === 0) return (_r, out) => put(out, to, rule.value)
  switch (rule.transform) {
    case undefined: {
      if (rule.value !== undefined) return (r, out) => { if (first(r) !== undefined) put(out, to, rule.value) }
      const strip = rule.strip
      if (strip === undefined) return (r, out) => put(out, to, first(r))
      return (r, out) => {
        const v = first(r)
        put(out, to, typeof v === 'string' && v.startsWith(strip) ? v.slice(strip.length) : v)
      }
    }
    case 'lowercase':
    case 'uppercase': {
      const upper = rule.transform === 'uppercase'
      return (r, out) => {
        const v = first(r)
        if (typeof v === 'string') put(out, to, upper ? v.toUpperCase() : v.toLowerCase())
      }
    }
    case 'map': {
      const table = rule.map!
      return (r, out) => {
        const v = first(r)
        if (v === undefined) return
        // Cloudflare's case is not always documented ("High", "high"): an exact key wins, then the lowercase one.
        const key = String(v)
        const lower = key.toLowerCase()
        put(out, to, Object.hasOwn(table, key) ? table[key] : Object.hasOwn(table, lower) ? table[lower] : rule.default)
      }
    }
    case 'split': {
      const sep = rule.separator ?? ','
      return (r, out) => {
        const v = first(r)
        put(out, to, typeof v === 'string' ? v.split(sep).map((s) => s.trim()).filter((s) => s !== '') : v)
      }
    }
    case 'json':
      return (r, out) => put(out, to, first(r))
    case 'url':
      // One field holding a whole URL, or [scheme, host, path-and-query] put together.
      return (r, out) => {
        let text: string | undefined
        if (from.length === 1) {
          const v = first(r)
          text = typeof v === 'string' ? v : undefined
        } else {
          const [scheme, host, uri] = from.map((f) => r[f])
          if (typeof host === 'string' && host !== '' && typeof uri === 'string' && uri.startsWith('/')) {
            text = `${typeof scheme === 'string' && scheme !== '' ? scheme : 'https'}://${host}${uri}`
          }
        }
        if (!text) return
        const parts = urlParts(text)
        if (!parts) return
        for (const [p] of URL_PARTS) put(out, `${to}.${p}`, parts[p])
      }
    case 'pair': {
      // "HTTP/2" → network.protocol http + http.version 2; "TLSv1.3" → tls + 1.3.
      const sep = rule.separator ?? '/'
      const [a, b] = rule.to as readonly string[]
      return (r, out) => {
        const v = first(r)
        if (typeof v !== 'string' || v === 'none' || v === 'unknown') return
        const at = v.indexOf(sep)
        if (at <= 0) return
        put(out, a!, v.slice(0, at).toLowerCase())
        put(out, b!, v.slice(at + sep.length))
      }
    }
    case 'string':
      return (r, out) => {
        const v = first(r)
        if (v !== undefined) put(out, to, typeof v === 'object' ? JSON.stringify(v) : String(v))
      }
    case 'date':
      return (r, out, line) => {
        const f = from.find((x) => present(r[x]))
        if (f !== undefined) put(out, to, timeOf(r, f, line))
      }
    case 'duration':
      // [start, end] timestamps → nanoseconds between them (ECS event.duration).
      return (r, out, line) => {
        const [start, end] = from.map((f) => timeOf(r, f, line))
        if (start === undefined || end === undefined) return
        put(out, to, Number(nanos(end) - nanos(start)))
      }
    case 'scale': {
      const factor = rule.factor ?? 1
      return (r, out) => {
        const v = first(r)
        if (typeof v === 'number') put(out, to, Math.round(v * factor))
      }
    }
    case 'http_outcome':
      // ECS's reading of an HTTP status: below 400 the request succeeded, from 400 on it failed.
      return (r, out) => {
        const v = Number(first(r))
        if (Number.isInteger(v) && v >= 100) put(out, to, v < 400 ? 'success' : 'failure')
      }
    case 'community_id':
      return (r, out) => {
        const [sip, dip, sport, dport, proto] = from.map((f) => r[f])
        const p = typeof proto === 'number' ? proto : typeof proto === 'string' ? IANA[proto.toLowerCase()] : undefined
        if (typeof sip !== 'string' || typeof dip !== 'string' || p === undefined) return
        put(out, to, communityId(sip, dip, Number(sport ?? 0), Number(dport ?? 0), p))
      }
  }
}
