// Splunk sourcetypes per dataset are data (schemas/splunk/sourcetypes.json), read by both the
// Splunk HEC destination (which sourcetype a dataset's events get) and the HEC intake (which
// dataset a splunk:// job's sourcetype= names). A leaf: it imports no room.
import { readFileSync } from 'node:fs'
import { join } from 'node:path'

export interface SplunkSourcetypes {
  /** The sourcetype of a dataset without one of its own. */
  readonly default: string
  /** dataset -> sourcetype for the destination. */
  readonly sink: ReadonlyMap<string, string>
  /** sourcetype -> dataset for the intake. */
  readonly intake: ReadonlyMap<string, string>
}

interface File {
  default?: unknown
  sink?: Record<string, unknown>
  intake?: Record<string, unknown>
}

function strings(what: string, o: Record<string, unknown> | undefined): Map<string, string> {
  const out = new Map<string, string>()
  for (const [k, v] of Object.entries(o ?? {})) {
    if (typeof v !== 'string' || v === '') throw new Error(`schemas/splunk/sourcetypes.json: ${what}.${k} must be a non-empty string`)
    out.set(k, v)
  }
  return out
}

export function loadSplunkSourcetypes(schemasDir: string): SplunkSourcetypes {
  const file = JSON.parse(readFileSync(join(schemasDir, 'splunk', 'sourcetypes.json'), 'utf8')) as File
  if (typeof file.default !== 'string' || file.default === '') throw new Error('schemas/splunk/sourcetypes.json: "default" must be a non-empty string')
  return { default: file.default, sink: strings('sink', file.sink), intake: strings('intake', file.intake) }
}

/**
 * The intake's sourcetype -> dataset map: `cloudflare:<dataset>` for every known dataset, then
 * the data file's entries for known datasets, then the operator's (CONFIG_FILE hec.sourcetypes).
 */
export function intakeSourcetypes(data: SplunkSourcetypes, known: Iterable<string>, configured: Readonly<Record<string, string>>): Map<string, string> {
  const datasets = new Set(known)
  const out = new Map<string, string>()
  for (const d of datasets) out.set(`cloudflare:${d}`, d)
  for (const [st, d] of data.intake) if (datasets.has(d)) out.set(st, d)
  for (const [st, d] of Object.entries(configured)) out.set(st, d)
  return out
}

/**
 * The destination's dataset -> sourcetype map for the known datasets. An operator's
 * SPLUNK_HEC_SOURCETYPE replaces the data's per-dataset values; CONFIG_FILE's per-dataset
 * sourcetypes win over both.
 */
export function sinkSourcetypes(data: SplunkSourcetypes, known: Iterable<string>, everyEvent: string, perDataset: ReadonlyMap<string, string>): Map<string, string> {
  const out = new Map<string, string>()
  for (const d of known) out.set(d, everyEvent !== '' ? everyEvent : data.sink.get(d) ?? data.default)
  for (const [d, st] of perDataset) out.set(d, st)
  return out
}
