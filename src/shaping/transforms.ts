// Privacy transforms on named fields. Each turns a field's parsed value into the JSON text that
// replaces it in the line (or null: the value stays as it was). A value that is absent or null is
// never touched: there is nothing to protect, and a transform must not invent a field.
import { createHmac } from 'node:crypto'
import { isIP } from 'node:net'

export type TransformKind = 'hmac-sha256' | 'truncate-ip' | 'remove-query' | 'mask'

/** What changes a field's value: the new JSON text for a value, or null to leave it. */
export type ValueTransform = (value: unknown) => string | null

/**
 * A keyed pseudonym: the same value under the same key gives the same 64 hex digits in every
 * dataset and on every day, so pseudonyms still join; without the key they cannot be reversed by
 * trying the 2^32 IPv4 addresses. A string is hashed as its characters, any other value as its JSON.
 */
export function hmacSha256(key: Buffer): ValueTransform {
  return (value) => {
    if (value === null || value === undefined) return null
    const text = typeof value === 'string' ? value : JSON.stringify(value)
    return `"${createHmac('sha256', key).update(text).digest('hex')}"`
  }
}

/** The address with all but its first `bits` bits zeroed, as text; null when `ip` is not an address. */
export function truncateIp(ip: string, v4Bits: number, v6Bits: number): string | null {
  const family = isIP(ip)
  if (family === 4) {
    const n = ip.split('.').reduce((a, o) => a * 256 + Number(o), 0)
    const kept = v4Bits === 0 ? 0 : Math.floor(n / 2 ** (32 - v4Bits)) * 2 ** (32 - v4Bits)
    return [24, 16, 8, 0].map((s) => Math.floor(kept / 2 ** s) % 256).join('.')
  }
  if (family === 6) {
    const words = ipv6Words(ip)
    // An IPv4-mapped address (::ffff:a.b.c.d, as a dual-stack listener reports IPv4 clients) is an
    // IPv4 client: cut it by the IPv4 prefix. By the IPv6 one (/48) every such client became "::".
    if (words.slice(0, 5).every((w) => w === 0) && words[5] === 0xffff) {
      const v4 = truncateIp(`${words[6]! >> 8}.${words[6]! & 0xff}.${words[7]! >> 8}.${words[7]! & 0xff}`, v4Bits, v6Bits)
      return `::ffff:${v4}`
    }
    for (let i = 0; i < 8; i++) {
      const bitsHere = Math.max(0, Math.min(16, v6Bits - i * 16))
      words[i] = bitsHere === 0 ? 0 : words[i]! & (0xffff << (16 - bitsHere)) & 0xffff
    }
    return formatIpv6(words)
  }
  return null
}

/** The eight 16-bit words of an IPv6 address (isIP already said it is one), embedded IPv4 included. */
function ipv6Words(ip: string): number[] {
  const addr = ip.split('%', 1)[0]!
  const [head, tail] = addr.includes('::') ? addr.split('::') as [string, string] : [addr, undefined]
  const parse = (part: string): number[] => {
    if (part === '') return []
    const out: number[] = []
    for (const w of part.split(':')) {
      if (w.includes('.')) {
        const o = w.split('.').map(Number)
        out.push(o[0]! * 256 + o[1]!, o[2]! * 256 + o[3]!)
      } else {
        out.push(parseInt(w, 16))
      }
    }
    return out
  }
  const h = parse(head)
  if (tail === undefined) return h
  const t = parse(tail)
  return [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t]
}

/** RFC 5952 text: lowercase, no leading zeros, the longest run of two or more zero words as '::'. */
function formatIpv6(words: readonly number[]): string {
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = words.map((w) => w.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/**
 * A network instead of a host: /24 and /48 by default, still a valid address (it keeps an
 * Elasticsearch ip field). A string that is not an address becomes null: it might be anything,
 * and a privacy transform that lets through what it cannot read protects nothing.
 */
export function truncateIpTransform(v4Bits: number, v6Bits: number): ValueTransform {
  return (value) => {
    if (value === null || value === undefined) return null
    const out = typeof value === 'string' ? truncateIp(value, v4Bits, v6Bits) : null
    return out === null ? 'null' : JSON.stringify(out)
  }
}

/** A URI without its query string (and fragment): the path is kept, parameters (tokens, e-mail addresses) go. */
export function removeQuery(): ValueTransform {
  return (value) => {
    if (typeof value !== 'string') return null
    const cut = value.search(/[?#]/)
    return cut === -1 ? null : JSON.stringify(value.slice(0, cut))
  }
}

/** A fixed string in place of any value. */
export function mask(text: string): ValueTransform {
  const json = JSON.stringify(text)
  return (value) => (value === null || value === undefined ? null : json)
}
