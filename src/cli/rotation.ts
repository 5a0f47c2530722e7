// Token rotation on Logpush jobs: which jobs push to this service with a given token, and their
// destination_conf with the token swapped, every other byte kept (an ownership token or a
// {DATE} placeholder elsewhere in the conf must not change, and Cloudflare compares confs byte for byte).

/** Whether a destination_conf pushes to the service at `base` (PUBLIC_URL): same host and port, under its path. */
export function pointsAt(conf: string, base: string): boolean {
  let c: URL
  let b: URL
  try {
    // splunk:// jobs reach the service's HEC intake over https.
    c = new URL(conf.replace(/^splunk:\/\//i, 'https://'))
    b = new URL(base)
  } catch {
    return false
  }
  if (c.protocol !== b.protocol || c.host !== b.host) return false
  const prefix = b.pathname.replace(/\/+$/, '')
  return c.pathname === prefix || c.pathname.startsWith(prefix + '/')
}

function decodeSafe(s: string): string {
  try { return decodeURIComponent(s.replace(/\+/g, ' ')) } catch { return s }
}

/** Whether a header_* parameter's decoded value carries `token`, as the service reads it. */
function carries(name: string, value: string, token: string, authHeader: string): boolean {
  const header = decodeSafe(name).slice('header_'.length).toLowerCase()
  const v = decodeSafe(value).trim()
  if (header === 'authorization') {
    const m = /^(?:bearer|splunk)\s+(.+)$/i.exec(v)
    return m?.[1]?.trim() === token
  }
  return authHeader !== '' && header === authHeader.toLowerCase() && v === token
}

function headerParams(conf: string): Array<{ start: number, name: string, value: string }> {
  const q = conf.indexOf('?')
  if (q < 0) return []
  const out: Array<{ start: number, name: string, value: string }> = []
  let pos = q + 1
  for (const part of conf.slice(q + 1).split('&')) {
    const eq = part.indexOf('=')
    if (eq > 0 && decodeSafe(part.slice(0, eq)).toLowerCase().startsWith('header_')) out.push({ start: pos + eq + 1, name: part.slice(0, eq), value: part.slice(eq + 1) })
    pos += part.length + 1
  }
  return out
}

export function usesToken(conf: string, token: string, authHeader: string): boolean {
  return headerParams(conf).some((p) => carries(p.name, p.value, token, authHeader))
}

/**
 * The conf with `from` replaced by `to` in the header parameters that carry it; the rest byte
 * for byte. The token is replaced in its encoded form, so "Bearer%20" (or "Bearer+") stays as written.
 */
export function swapToken(conf: string, from: string, to: string, authHeader: string): string {
  let out = ''
  let at = 0
  for (const p of headerParams(conf)) {
    if (!carries(p.name, p.value, from, authHeader)) continue
    const encFrom = encodeURIComponent(from)
    const i = p.value.lastIndexOf(encFrom) >= 0 ? p.value.lastIndexOf(encFrom) : p.value.lastIndexOf(from)
    if (i < 0) continue
    const len = p.value.lastIndexOf(encFrom) >= 0 ? encFrom.length : from.length
    out += conf.slice(at, p.start + i) + encodeURIComponent(to)
    at = p.start + i + len
  }
  return out + conf.slice(at)
}
