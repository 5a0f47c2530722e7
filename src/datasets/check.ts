// Our field reference against Cloudflare's live field list of a dataset (GET …/logpush/datasets/
// {dataset}/fields: field name -> description, no types): what Cloudflare added, what it dropped,
// and the reference updated with both. Pure functions; `schemas check` (src/cli/schemas.ts) does
// the calls and the writing.
import type { Reference, ReferenceDataset, ReferenceField } from './reference.js'

/** Bounds on what the API sends us before it is printed or kept in the reference. */
export const LIVE_LIMITS = { fields: 2000, nameChars: 128, descriptionChars: 500 } as const

export interface DatasetDrift {
  readonly dataset: string
  /** In Cloudflare's list, not in our reference (sorted). */
  readonly added: readonly string[]
  /** In our reference, not in Cloudflare's list, and not yet recorded as dropped (sorted). */
  readonly dropped: readonly string[]
  /** Recorded as dropped by an earlier --write, still not listed: no news. */
  readonly knownDropped: readonly string[]
  /** Recorded as dropped, but Cloudflare lists it again. */
  readonly back: readonly string[]
}

export function hasNews(d: DatasetDrift): boolean {
  return d.added.length + d.dropped.length + d.back.length > 0
}

/** Cloudflare's answer, checked and bounded: field name -> description. Throws on what is not that shape. */
export function liveFields(result: unknown): Map<string, string> {
  if (result === null || typeof result !== 'object' || Array.isArray(result)) throw new Error('the field list is not an object of field name -> description')
  const entries = Object.entries(result as Record<string, unknown>)
  if (entries.length > LIVE_LIMITS.fields) throw new Error(`the field list has ${entries.length} fields, more than ${LIVE_LIMITS.fields}`)
  const out = new Map<string, string>()
  for (const [name, description] of entries) {
    // Names become object keys of our schemas and are printed: a name no dataset could have is refused, not kept.
    if (name.length === 0 || name.length > LIVE_LIMITS.nameChars || !/^[A-Za-z0-9_.-]+$/.test(name)) throw new Error(`the field list has a field name we cannot keep: ${JSON.stringify(name.slice(0, LIVE_LIMITS.nameChars))}`)
    const text = typeof description === 'string' ? description : ''
    out.set(name, text.replace(/[\u0000-\u001f\u007f]+/g, ' ').trim().slice(0, LIVE_LIMITS.descriptionChars))
  }
  return out
}

const byName = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)

export function compareDataset(dataset: string, ours: ReferenceDataset, live: ReadonlyMap<string, string>): DatasetDrift {
  const known = new Map(ours.fields.map((f) => [f.name, f]))
  const added = [...live.keys()].filter((n) => !known.has(n)).sort(byName)
  const missing = ours.fields.filter((f) => !live.has(f.name))
  return {
    dataset,
    added,
    dropped: missing.filter((f) => f.removed === undefined).map((f) => f.name).sort(byName),
    knownDropped: missing.filter((f) => f.removed !== undefined).map((f) => f.name).sort(byName),
    back: ours.fields.filter((f) => f.removed !== undefined && live.has(f.name)).map((f) => f.name).sort(byName)
  }
}

/**
 * The dataset with Cloudflare's changes written in. An added field's type is not in the list, so it
 * is marked unverified: its schema accepts any value, as for the reference's other inferred types.
 * A dropped field stays (old jobs may still send it; Cloudflare says deprecated fields "may
 * eventually become empty values"), marked deprecated with the date it left the list.
 */
export function applyDrift(ours: ReferenceDataset, drift: DatasetDrift, live: ReadonlyMap<string, string>, today: string): ReferenceDataset {
  const dropped = new Set(drift.dropped)
  const back = new Set(drift.back)
  const fields: ReferenceField[] = ours.fields.map((f) => {
    if (dropped.has(f.name)) return { ...f, deprecated: true, removed: today }
    if (back.has(f.name)) return Object.fromEntries(Object.entries(f).filter(([k]) => k !== 'removed')) as unknown as ReferenceField
    return f
  })
  for (const name of drift.added) {
    fields.push({
      name,
      type: 'string',
      description: live.get(name) || '(no description in Cloudflare\'s field list)',
      deprecated: false,
      type_unverified: true,
      note: `added from Cloudflare's field list (GET …/logpush/datasets/{dataset}/fields) on ${today}, which gives no types`
    })
  }
  fields.sort((a, b) => byName(a.name, b.name))
  return { ...ours, field_count: fields.length, fields }
}

export function applyAll(reference: Reference, drifts: ReadonlyArray<{ drift: DatasetDrift, live: ReadonlyMap<string, string> }>, today: string): Reference {
  const out: Record<string, ReferenceDataset> = { ...reference }
  for (const { drift, live } of drifts) {
    if (hasNews(drift)) out[drift.dataset] = applyDrift(out[drift.dataset]!, drift, live, today)
  }
  return out
}
