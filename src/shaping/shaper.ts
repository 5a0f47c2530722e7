// One destination's shaping of one dataset's lines: the rules' filters and samples decide whether
// a line goes out at all, then the transforms and the field lists rewrite it. The line is parsed
// once to decide; the rewrite joins the text of the members kept (members.ts), so a value no
// transform touches goes out byte for byte as received, and a line nothing rewrites is the stored
// string itself.
import type { CompiledRule } from './config.js'
import type { FieldGate } from './fields.js'
import type { LineRecord } from './filter.js'
import { members, type Member } from './members.js'

export type Outcome = 'passed' | 'filtered' | 'sampled'
export const OUTCOMES: readonly Outcome[] = ['passed', 'filtered', 'sampled']

/** Lines counted per rule and outcome, for one delivery; added to the totals once it is delivered. */
export class Tally {
  readonly passed: number[]
  readonly filtered: number[]
  readonly sampled: number[]
  constructor (rules: number) {
    this.passed = new Array<number>(rules).fill(0)
    this.filtered = new Array<number>(rules).fill(0)
    this.sampled = new Array<number>(rules).fill(0)
  }
}

export class Shaper {
  private readonly transforms: CompiledRule['transforms']
  private readonly rewrites: boolean
  /** The fields the filters, samples and transforms read: only those are parsed. */
  private readonly reads: ReadonlySet<string>
  readonly ruleNames: readonly string[]

  constructor (private readonly rules: readonly CompiledRule[], private readonly gate: FieldGate) {
    this.transforms = rules.flatMap((r) => r.transforms)
    this.rewrites = gate !== null || this.transforms.length > 0
    this.reads = new Set(rules.flatMap((r) => r.reads))
    this.ruleNames = rules.map((r) => r.name)
  }

  /** The line as this destination gets it, or null when a filter or the sampling keeps it back (counted in `tally`). */
  shape(line: string, tally: Tally): string | null {
    // Only the values something reads are parsed, from the line's own spans: a whole JSON.parse
    // of a 4 kB http_requests line costs more than everything else shaping does with it.
    let ms: Member[] | null = null
    const record: LineRecord = {}
    if (this.reads.size > 0) {
      ms = members(line)
      for (const m of ms) if (this.reads.has(m.name)) record[m.name] = JSON.parse(line.slice(m.start, m.end))
    }
    const { rules } = this
    for (let i = 0; i < rules.length; i++) {
      const r = rules[i]!
      if (r.filter !== null && !r.filter(record)) { tally.filtered[i]!++; return null }
      if (r.sample !== null && !r.sample(record, line)) { tally.sampled[i]!++; return null }
      tally.passed[i]!++
    }
    if (!this.rewrites) return line
    let replaced: Map<string, string> | null = null
    for (const t of this.transforms) {
      const before = replaced?.get(t.field)
      const text = t.apply(before === undefined ? record[t.field] : JSON.parse(before))
      if (text !== null) (replaced ??= new Map()).set(t.field, text)
    }
    const { gate } = this
    if (replaced === null && gate === null) return line
    // Runs of members kept as they are go out as one slice of the line; only a member dropped or
    // replaced breaks a run.
    const parts: string[] = []
    let runFrom = -1
    let runTo = -1
    for (const m of ms ?? members(line)) {
      const keep = gate === null || gate(m.name)
      const text = keep ? replaced?.get(m.name) : undefined
      if (keep && text === undefined) {
        if (runFrom < 0) runFrom = m.at
        runTo = m.end
        continue
      }
      if (runFrom >= 0) { parts.push(line.slice(runFrom, runTo)); runFrom = -1 }
      if (keep) parts.push(`${m.nameText}:${text}`)
    }
    if (runFrom >= 0) parts.push(line.slice(runFrom, runTo))
    return `{${parts.join(',')}}`
  }

  /** Fields that go out hashed, masked or cut so that they are no IP address any more (truncate-ip keeps one). */
  nonIpFields(): string[] {
    return [...new Set(this.transforms.filter((t) => t.kind !== 'truncate-ip').map((t) => t.field))]
  }

  /** One line for /health: the rules in order. */
  describe(): string {
    return this.rules.map((r) => r.summary).join(' | ')
  }
}
