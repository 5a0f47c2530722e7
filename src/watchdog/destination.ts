// Which Logpush jobs are this service's: those whose destination_conf reaches PUBLIC_URL. A job
// names no receiver other than its URL (research/logpush.md §1.1), so host, port and path are all
// there is to go by. Query parameters (header_Authorization=..., tags) do not matter.

const DEFAULT_PORTS: Readonly<Record<string, string>> = { 'https:': '443', 'http:': '80', 'splunk:': '443' }

function hostAndPort(u: URL): string {
  return `${u.hostname.toLowerCase()}:${u.port !== '' ? u.port : DEFAULT_PORTS[u.protocol] ?? ''}`
}

/**
 * True when `destinationConf` points at this service at `publicUrl`: an https:// job posting under
 * <PUBLIC_URL>/logpush/, or a splunk:// job posting to the HEC routes under <PUBLIC_URL>/services/collector.
 */
export function pointsAtService(publicUrl: string, destinationConf: string): boolean {
  let base: URL
  let conf: URL
  try {
    base = new URL(publicUrl)
    conf = new URL(destinationConf)
  } catch {
    return false
  }
  if (hostAndPort(base) !== hostAndPort(conf)) return false
  const prefix = base.pathname.replace(/\/+$/, '')
  if (conf.protocol === 'https:' || conf.protocol === 'http:') return conf.pathname.startsWith(`${prefix}/logpush/`)
  // splunk://host:port/services/collector/raw?channel=... (Logpush's Splunk destination, served
  // by the HEC routes; research/logpush.md §4).
  if (conf.protocol === 'splunk:') return conf.pathname.startsWith(`${prefix}/services/collector`)
  return false
}
