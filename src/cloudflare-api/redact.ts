// Secrets in destination_conf values, wherever they show: a leaf of its own (no SDK import), so the
// CLI can redact without loading the SDK.

// Query parameters of a destination_conf that hold secrets in some destination type: header_*
// (HTTP, Splunk, Datadog), R2/S3-compatible keys, Azure SAS signatures, New Relic's Api-Key.
const SECRET_PARAM = /((?:header_[A-Za-z0-9_-]+|access-key-id|secret-access-key|sig|api-key)=)(?:([A-Za-z]+)(%20|\+))?[^&\s"'\\:]*/gi

/**
 * Any text (a destination_conf, a job's error_message, an API error quoting one) with the values
 * of secret-bearing parameters replaced by REDACTED; an "Authorization: <scheme> <secret>" value
 * keeps its scheme so the form can still be checked. Every other byte is kept.
 */
export function redactDestinationSecrets(text: string): string {
  return text.replace(SECRET_PARAM, (_m, name: string, scheme: string | undefined, sep: string | undefined) => `${name}${scheme !== undefined ? scheme + sep : ''}REDACTED`)
}
