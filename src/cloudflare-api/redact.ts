// Secrets in destination_conf values and other URLs, wherever they show (the CLI, the watchdog,
// the start-up configuration line): one redactor, a leaf of its own (no SDK import), so the CLI
// and the configuration can redact without loading the SDK. Every form Cloudflare documents is
// in test/cli/redact.test.ts, with its source.

// Query parameters that hold secrets in some destination type: header_* (HTTP, Splunk, Datadog,
// Elastic), R2/S3-compatible/Kinesis keys, Azure SAS signatures, New Relic's Api-Key, IBM Cloud
// Logs' ibm_api_key.
const SECRET_NAMES = 'header_[A-Za-z0-9_-]+|access-key-id|secret-access-key|sig|api-key|ibm_api_key'

// An Authorization scheme is kept, so that the form can still be checked: "Bearer REDACTED".
// Only these words: any other first word of a value may itself be the secret.
const SCHEMES = 'basic|bearer|splunk|token|apikey|digest|dsn'

// A value: quoted (any bytes up to its quote; an error message may quote what it printed), or
// bare up to '&', whitespace, a quote or a backslash, with a scheme in front that may be
// followed by decoded spaces ("Bearer SECRET", as an error message quotes it; any number of
// them, or a tab: what follows is the secret all the same).
//
// Also a value quoted with escaped quotes (\"...\": the conf inside a JSON string, as a log
// line or an API error body carries it), and a name followed by %3D (a conf percent-encoded
// whole; its value then runs to the end of the encoded text, '&' being %26 there).
const SECRET_PARAM = new RegExp(`((?:${SECRET_NAMES})(?:=|%3D))(\\\\"(?:[^"\\\\]|\\\\[^"])*(?:\\\\")?|"[^"]*"?|'[^']*'?|(?:(?:${SCHEMES})(?:%20|\\+|[ \\t])+)?[^&\\s"'\\\\]*)`, 'gi')
const SCHEME_PREFIX = new RegExp(`^(?:${SCHEMES})(?:%20|\\+|[ \\t])+`, 'i')

// The userinfo of a URL (https://user:password@host): the password, or a lone token, goes. It
// ends at the authority's last '@', as the URL parser (and so the client using the URL) reads
// it: a password holding an unencoded '@' goes whole.
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s/?#"'\\]*)@/gi

// A Sumo Logic HTTP source address carries its secret in the path (sumo:// or https://); the
// code is base64, so a colon after it is the message's.
const SUMO_PATH = /(\/receiver\/v1\/http\/)[^\s/?#&:"'\\]+/gi

function masked(value: string): string {
  const scheme = SCHEME_PREFIX.exec(value)
  return `${scheme ? scheme[0] : ''}REDACTED`
}

/**
 * Any text (a destination_conf, a job's error_message, an API error quoting one, a URL setting)
 * with its secrets replaced by REDACTED: the values of secret-bearing parameters, quoted or not
 * (an Authorization value keeps its scheme), a URL's password or lone userinfo token, and a Sumo
 * Logic source's path secret. Every other byte is kept.
 */
export function redactDestinationSecrets(text: string): string {
  return text
    .replace(SECRET_PARAM, (_m, name: string, value: string) => {
      if (value.startsWith('\\"')) {
        const closed = value.length > 3 && value.endsWith('\\"')
        return `${name}\\"${masked(value.slice(2, closed ? -2 : undefined))}${closed ? '\\"' : ''}`
      }
      const quote = value[0] === '"' || value[0] === '\'' ? value[0] : ''
      // A colon that ends the value is the message's ("...=Bearer x: 401"), not the secret's.
      if (!quote) return name + masked(value) + (value.endsWith(':') ? ':' : '')
      const inner = value.endsWith(quote) && value.length > 1 ? value.slice(1, -1) : value.slice(1)
      return `${name}${quote}${masked(inner)}${value.length > 1 && value.endsWith(quote) ? quote : ''}`
    })
    .replace(USERINFO, (_m, scheme: string, userinfo: string) => {
      const colon = userinfo.indexOf(':')
      return `${scheme}${colon >= 0 ? `${userinfo.slice(0, colon)}:REDACTED` : 'REDACTED'}@`
    })
    .replace(SUMO_PATH, '$1REDACTED')
}
