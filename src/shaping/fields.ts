// Which fields a destination gets: `keep` (only these) or `drop` (all but these). The event time
// field is always kept, whatever the lists say: every destination orders, indexes and retains by
// it (Elasticsearch's @timestamp, Splunk's time, the file rotation), and a line without it would
// be dated by its arrival instead.

/** Decides per field name whether it goes out; null when every field does. */
export type FieldGate = ((name: string) => boolean) | null

export function fieldGate(keep: ReadonlySet<string> | null, drop: ReadonlySet<string>, eventTimeField: string): FieldGate {
  if (keep === null && drop.size === 0) return null
  return (name) => name === eventTimeField || ((keep === null || keep.has(name)) && !drop.has(name))
}
