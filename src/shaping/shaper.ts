// One destination's shaping of one dataset's lines: the rules' filters and samples decide whether
// a line goes out at all, then the transforms and the field lists rewrite it. The line is parsed
// once to decide; the rewrite joins the text of the members kept (members.ts), so a value no
// transform touches goes out byte for byte as received, and a line nothing rewrites is the stored
// string itself.
import type { CompiledRule } from './config.js'
import type { FieldGate } from './fields.js'
import type { LineRecord } from './filter.js'
import { members } from './members.js'

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
  private readonly needsRecord: boolean
  readonly ruleNames: readonly string[]

  constructor (private readonly rules: readonly CompiledRule[], private readonly gate: FieldGate) {
    this.transforms = rules.flatMap((r) => r.transforms)
    this.rewrites = gate !== null || this.transforms.length > 0
    this.needsRecord = this.transforms.length > 0 || rules.some((r) => r.filter !== null || r.sample !== null)
    this.ruleNames = rules.map((r) => r.name)
  }

  /** The line as this destination gets it, or null when a filter or the sampling keeps it back (counted in `tally`). */
  shape(line: string, tally: Tally): string | null {
    const record = this.needsRecord ? JSON.parse(line) as LineRecord : {}
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
    let out = '{'
    let first = true
    for (const m of members(line)) {
      if (gate !== null && !gate(m.name)) continue
      out += `${first ? '' : ','}${m.nameText}:${replaced?.get(m.name) ?? line.slice(m.start, m.end)}`
      first = false
    }
    return `${out}}`
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
