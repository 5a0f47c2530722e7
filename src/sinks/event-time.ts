// The event time of a Cloudflare line, in whichever timestamp_format the job uses, for every
// destination that needs one (@timestamp in Elasticsearch, `time` for Splunk HEC).

type Rec = Record<string, unknown>

/**
 * Event time as an ISO 8601 string with nanoseconds, from an integer (unix seconds, ms, µs or ns:
 * told apart by digit count) or an RFC 3339 string (rfc3339, rfc3339ms, rfc3339ns).
 */
export function eventTime(line: string, record: Rec, field: string): string | undefined {
  const v = record[field]
  let digits: string
  if (typeof v === 'string') {
    // Quoted unix / unixnano digits: not what Cloudflare sends, but what some producers do.
    if (!/^\d{1,19}$/.test(v)) return normaliseRfc3339(v)
    digits = v
  } else if (typeof v === 'number' && Number.isInteger(v) && v >= 0) {
    // A unixnano value is above 2^53, so the parsed number lost its last digits: read them from
    // the line itself, at the top level (a nested record, e.g. in http_requests' Subrequests, may
    // carry a field of the same name).
    digits = Number.isSafeInteger(v) ? String(v) : topLevelInteger(line, field) ?? BigInt(v).toString()
  } else {
    return undefined
  }
  let ns: bigint
  if (digits.length >= 18) ns = BigInt(digits)
  else if (digits.length >= 15) ns = BigInt(digits) * 1_000n
  else if (digits.length >= 12) ns = BigInt(digits) * 1_000_000n
  else ns = BigInt(digits) * 1_000_000_000n
  const seconds = ns / 1_000_000_000n
  if (seconds > MAX_SECONDS) return undefined
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  const iso = new Date(Number(seconds) * 1000).toISOString()
  return `${iso.slice(0, 19)}.${frac}Z`
}

/** 9999-12-31T23:59:59Z: beyond it an ISO date needs six-digit years, which nobody reads. */
const MAX_SECONDS = 253402300799n

/** The digits of the integer value of `field` in the top-level object of `line`, if it has one. */
export function topLevelInteger(line: string, field: string): string | undefined {
  let depth = 0
  for (let i = 0; i < line.length; i++) {
    const c = line.charCodeAt(i)
    if (c === 0x22 /* " */) {
      const start = i + 1
      for (i = start; i < line.length && line.charCodeAt(i) !== 0x22; i++) if (line.charCodeAt(i) === 0x5c /* \ */) i++
      if (depth !== 1 || i - start !== field.length || line.slice(start, i) !== field) continue
      const m = /^\s*:\s*(\d+)/.exec(line.slice(i + 1, i + 64))
      if (m) return m[1]
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--
    }
  }
  return undefined
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:?\d{2})$/

function normaliseRfc3339(v: string): string | undefined {
  const m = RFC3339.exec(v)
  if (!m) return undefined
  const [, date, time, frac = '', zone] = m
  const base = Date.parse(`${date}T${time}${zone === 'z' ? 'Z' : zone!.length === 5 ? `${zone!.slice(0, 3)}:${zone!.slice(3)}` : zone}`)
  if (Number.isNaN(base)) return undefined
  return `${new Date(base).toISOString().slice(0, 19)}.${frac.padEnd(9, '0')}Z`
}


/** Epoch seconds with the fraction (up to nanoseconds), as text: what Splunk HEC's `time` takes. */
export function epochSeconds(iso: string): string {
  const seconds = Math.floor(Date.parse(iso.slice(0, 19) + 'Z') / 1000)
  const frac = /\.(\d+)Z$/.exec(iso)?.[1]?.replace(/0+$/, '') ?? ''
  return frac ? `${seconds}.${frac}` : String(seconds)
}
