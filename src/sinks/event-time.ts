// The event time of a Cloudflare line, in whichever timestamp_format the job uses, for every
// destination that needs one (@timestamp in Elasticsearch, `time` for Splunk HEC).

type Rec = Record<string, unknown>

/**
 * Event time as an ISO 8601 string with nanoseconds, from an integer (unix seconds, ms, µs or ns:
 * told apart by digit count, read from the raw text so nanoseconds are exact) or an RFC 3339 string.
 */
export function eventTime(line: string, record: Rec, field: string): string | undefined {
  const v = record[field]
  if (typeof v === 'string') return normaliseRfc3339(v)
  if (typeof v !== 'number') return undefined
  const m = new RegExp(`"${field}"\\s*:\\s*(\\d+)`).exec(line)
  if (!m) return undefined
  const digits = m[1]!
  let ns: bigint
  if (digits.length >= 18) ns = BigInt(digits)
  else if (digits.length >= 15) ns = BigInt(digits) * 1_000n
  else if (digits.length >= 12) ns = BigInt(digits) * 1_000_000n
  else ns = BigInt(digits) * 1_000_000_000n
  const seconds = ns / 1_000_000_000n
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0')
  const iso = new Date(Number(seconds) * 1000).toISOString()
  return `${iso.slice(0, 19)}.${frac}Z`
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
