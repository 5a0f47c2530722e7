// HTML built by a tagged template that escapes every value it is given, unless the value is
// itself built by the template. Senders choose field names and lines; nothing they send can become
// markup, because there is no way to put a plain string into a page unescaped.

export class Html {
  constructor (readonly value: string) {}
  toString(): string { return this.value }
}

const ENTITIES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', '\'': '&#39;' }

export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ENTITIES[c]!)
}

function part(v: unknown): string {
  if (v instanceof Html) return v.value
  if (Array.isArray(v)) return v.map(part).join('')
  if (v === null || v === undefined || v === false) return ''
  return escapeHtml(String(v))
}

export function html(strings: TemplateStringsArray, ...values: unknown[]): Html {
  let out = strings[0]!
  for (let i = 0; i < values.length; i++) out += part(values[i]) + strings[i + 1]!
  return new Html(out)
}
