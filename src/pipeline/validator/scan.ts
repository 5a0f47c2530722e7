// The one-pass line validator: reads a line's text once, left to right, and says whether it is a
// JSON object that the reference path (line-checker.ts: JSON.parse, the nesting and duplicate-key
// walks, Ajv) would accept, and if not with which reason code, without building the record.
// Only the keys of the top-level object are made into strings (to find their field in the plan,
// to count unknown fields); values are looked at in place. A string is decoded only when its
// field has a pattern and the string holds an escape; a number is converted only when it is not
// a short integer.
//
// The rules it must agree with, in the reference's order of precedence:
//  1. not JSON (anywhere in the line, JSON.parse's grammar: RFC 8259, whitespace is space, tab,
//     LF and CR, lone surrogates in escapes allowed);   2. not an object at the top;
//  3. an object or array nested deeper than maxDepth (the top object is level 1), in the value
//     JSON.parse builds (where the last of two equal keys wins);
//  4. an object with the same key twice (keys compared as decoded strings; keys of objects
//     deeper than maxDepth need no comparing: such an object is either kept, and the line too
//     deep, or replaced through a key that is there twice higher up);
//  5. a top-level field whose value the schema refuses (types as Ajv reads them: an integer is a
//     finite number without fraction, 1.0 and 1e3 included; 1e400 is no number at all).
// Only the code is found here; the reference path gives the reason text (line-checker.ts).
//
// Before the scan, the line is tried against the templates learned from lines the scan accepted
// (template.ts): one native regular-expression match accepts most lines of a job.
import { LineRejectCode } from '../../errors.js'
import { ANY, T, type FieldPlan, type Plan } from './plan.js'
import { templateOf } from './template.js'
import { decode, escapes, isJson, numberEnd, numberType, resetStrings, skipWs, startsValue, stringEnd } from './tokens.js'

const OBJ = 1
const ARR = 2
/** An object's keys are compared one by one up to this many, then through a Set. */
const LINEAR_KEYS = 16
/** Templates kept per dataset (and thread): a few jobs' field lists. */
const TEMPLATES = 4
/**
 * A template is learned from at most one line in this many that no template matched; each line
 * in a row that would not make one (whitespace, nested objects) doubles the wait, up to LEARN_MAX.
 */
const LEARN_EVERY = 64
const LEARN_MAX = 65_536
/** Longer lines are left to the scanner: a regular expression's backtracking stack grows with the line. */
const TEMPLATE_MAX_CHARS = 65_536
/**
 * A template that fails may have backtracked through the whole line (on crafted lines, ~100 ns
 * a character against ~10 for JSON.parse). Failing attempts are paid from a budget of
 * characters that lines a template accepted refill (and every line a little), so lines made to
 * nearly match cost template time only in proportion to lines that really matched.
 */
const MISS_BUDGET_MAX = 1 << 20
const MISS_REFILL_PER_LINE = 256
/** Templates hold an array of empty objects: three levels. */
const TEMPLATE_MIN_DEPTH = 3
const NONE: string[] = []

/** check()'s answer for a line whose reason only the reference can tell. */
export const ASK_REFERENCE = 'reference'

const enum At { KeyOrClose, Key, ValueOrClose, Value, AfterValue }

export class LineValidator {
  /** The top-level keys that are not fields of the schema, of the last line checked. */
  unknownFields: string[] = []
  private readonly fields: readonly FieldPlan[]
  private readonly index: ReadonlyMap<string, number>
  /** seen[f] === stamp: field f already appeared in the current line. */
  private readonly seen: Uint32Array
  private stamp = 0
  /** After field f (index f + 1; 0 is the start) the next key was field succ[f + 1] last time: tried first, by comparing text. */
  private readonly succ: Int32Array
  private kinds = new Uint8Array(64)
  private readonly keyStack: string[] = []
  private readonly keyStart: number[] = []
  private readonly keySets: Array<Set<string> | null> = []
  /** The deepest level a key set was made at since forget() (0: none). */
  private setsTop = 0

  /** Lines accepted by a template (tests: the fast path was taken). */
  templateHits = 0
  private readonly templates: RegExp[] = []
  private sinceLearned = LEARN_EVERY
  private missBudget = MISS_BUDGET_MAX
  private learnEvery = LEARN_EVERY
  /** The fields of the line being scanned, in order (a template's field list). */
  private readonly order: number[] = []

  constructor (private readonly plan: Plan) {
    this.fields = plan.fields
    this.index = plan.index
    this.seen = new Uint32Array(plan.fields.length)
    this.succ = new Int32Array(plan.fields.length + 1).fill(-1)
  }

  /**
   * null when the reference would accept the line, else the code it would reject it with, or
   * ASK_REFERENCE when only the reference can tell (a line both too deep and with a key twice).
   */
  check(s: string, maxDepth: number): LineRejectCode | typeof ASK_REFERENCE | null {
    const templated = maxDepth >= TEMPLATE_MIN_DEPTH && s.length <= TEMPLATE_MAX_CHARS
    this.missBudget = Math.min(MISS_BUDGET_MAX, this.missBudget + MISS_REFILL_PER_LINE)
    if (templated && this.missBudget >= s.length) {
      const templates = this.templates
      for (let k = 0; k < templates.length; k++) {
        const t = templates[k]!
        if (t.test(s)) {
          this.missBudget = Math.min(MISS_BUDGET_MAX, this.missBudget + s.length)
          // The template that matched is tried first next time: a job's lines come in runs.
          if (k > 0) { templates.splice(k, 1); templates.unshift(t) }
          this.unknownFields = NONE
          this.templateHits++
          return null
        }
        this.missBudget -= s.length
      }
    }
    const code = this.scan(s, maxDepth)
    this.forget()
    if (code === null && templated && this.unknownFields.length === 0 && ++this.sinceLearned >= this.learnEvery) this.learn(s)
    return code
  }

  /** A template from a line the scanner accepted, kept when it matches that line (no whitespace, no nested objects). */
  private learn(s: string): void {
    this.sinceLearned = 0
    const t = templateOf(this.plan, this.order)
    if (!t.test(s)) {
      this.learnEvery = Math.min(LEARN_MAX, this.learnEvery * 2)
      return
    }
    this.learnEvery = LEARN_EVERY
    // In front, as the newest job's; the one tried last (used least lately) makes room.
    if (this.templates.length === TEMPLATES) this.templates.pop()
    this.templates.unshift(t)
  }

  private scan(s: string, maxDepth: number): LineRejectCode | typeof ASK_REFERENCE | null {
    const end = s.length
    let i = skipWs(s, 0)
    if (s.charCodeAt(i) !== 0x7b) return startsValue(s.charCodeAt(i)) && isJson(s) ? LineRejectCode.notObject : LineRejectCode.notJson
    if (++this.stamp === 0xffffffff) { this.seen.fill(0); this.stamp = 1 }
    const stamp = this.stamp
    const fields = this.fields
    const seen = this.seen
    const succ = this.succ
    const keyStack = this.keyStack
    keyStack.length = 0
    this.unknownFields = []
    const order = this.order
    order.length = 0
    let kinds = this.kinds
    let depth = 1
    kinds[1] = OBJ
    this.keyStart[1] = 0
    this.keySets[1] = null
    let deep = false
    let dup = false
    let schema = false
    /** The field whose value comes next at depth 1 (-1: unknown field). */
    let field = -1
    let prev = -1
    /** Allowed types of the items of the array open at depth 2, when a field's items are typed. */
    let items = 0
    let at = At.KeyOrClose
    resetStrings()
    i++
    for (;;) {
      let c = s.charCodeAt(i)
      while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s.charCodeAt(++i)
      if (at === At.AfterValue) {
        const kind = kinds[depth]
        if (c === 0x2c) { at = kind === OBJ ? At.Key : At.Value; i++; continue }
        if (c === (kind === OBJ ? 0x7d : 0x5d)) {
          if (kind === OBJ && depth <= maxDepth) this.closeKeys(depth)
          depth--
          i++
          if (depth === 0) break
          continue
        }
        return LineRejectCode.notJson
      }
      if (at === At.KeyOrClose || at === At.Key) {
        if (c === 0x7d && at === At.KeyOrClose) {
          if (depth <= maxDepth) this.closeKeys(depth)
          depth--
          i++
          if (depth === 0) break
          at = At.AfterValue
          continue
        }
        if (c !== 0x22) return LineRejectCode.notJson
        const from = i + 1
        if (depth === 1) {
          // The field that followed the previous one last time, compared in place: Logpush
          // writes a job's fields in the same order on every line, so this is the usual case.
          field = -1
          const guess = succ[prev + 1]!
          if (guess >= 0) {
            const f = fields[guess]!
            if (f.plain) {
              const name = f.name
              const n = name.length
              let j = 0
              while (j < n && s.charCodeAt(from + j) === name.charCodeAt(j)) j++
              if (j === n && s.charCodeAt(from + n) === 0x22) {
                field = guess
                i = from + n + 1
              }
            }
          }
          if (field < 0) {
            const close = stringEnd(s, from)
            if (close < 0) return LineRejectCode.notJson
            const key = escapes ? decode(s, from, close) : s.slice(from, close)
            i = close + 1
            field = this.index.get(key) ?? -1
            if (field >= 0) succ[prev + 1] = field
            else {
              if (!dup && this.addKey(1, key)) dup = true
              this.unknownFields.push(key)
            }
          }
          if (field >= 0) {
            if (seen[field] === stamp) dup = true
            seen[field] = stamp
            prev = field
            order.push(field)
          }
        } else {
          const close = stringEnd(s, from)
          if (close < 0) return LineRejectCode.notJson
          if (!dup && depth <= maxDepth && this.addKey(depth, escapes ? decode(s, from, close) : s.slice(from, close))) dup = true
          i = close + 1
        }
        c = s.charCodeAt(i)
        while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) c = s.charCodeAt(++i)
        if (c !== 0x3a) return LineRejectCode.notJson
        i++
        at = At.Value
        continue
      }
      // A value (At.Value, At.ValueOrClose).
      if (c === 0x5d && at === At.ValueOrClose) {
        depth--
        i++
        at = At.AfterValue
        continue
      }
      let type: number
      if (c === 0x22) {
        const close = stringEnd(s, i + 1)
        if (close < 0) return LineRejectCode.notJson
        type = T.string
        if (depth === 1 && field >= 0 && !schema) {
          const pattern = fields[field]!.pattern
          if (pattern !== null && (fields[field]!.types & T.string) !== 0 && !pattern.test(escapes ? decode(s, i + 1, close) : s.slice(i + 1, close))) schema = true
        }
        i = close + 1
        at = At.AfterValue
      } else if (c === 0x7b || c === 0x5b) {
        type = c === 0x7b ? T.object : T.array
        if (++depth > maxDepth) deep = true
        if (depth >= kinds.length) { const grown = new Uint8Array(kinds.length * 2); grown.set(kinds); kinds = this.kinds = grown }
        if (c === 0x7b) {
          kinds[depth] = OBJ
          if (depth <= maxDepth) { this.keyStart[depth] = keyStack.length; this.keySets[depth] = null }
          at = At.KeyOrClose
        } else {
          kinds[depth] = ARR
          at = At.ValueOrClose
        }
        i++
        // The container's own type is checked against its parent's rule, before its content.
        if (depth === 2) {
          items = c === 0x5b && field >= 0 && fields[field]!.items !== ANY ? fields[field]!.items : 0
          if (!schema && field >= 0 && (fields[field]!.types & type) === 0) schema = true
          continue
        }
        if (depth - 1 === 2 && items !== 0 && kinds[2] === ARR && (items & type) === 0) schema = true
        continue
      } else if (c === 0x74) {
        if (!s.startsWith('true', i)) return LineRejectCode.notJson
        type = T.boolean; i += 4; at = At.AfterValue
      } else if (c === 0x66) {
        if (!s.startsWith('false', i)) return LineRejectCode.notJson
        type = T.boolean; i += 5; at = At.AfterValue
      } else if (c === 0x6e) {
        if (!s.startsWith('null', i)) return LineRejectCode.notJson
        type = T.null; i += 4; at = At.AfterValue
      } else {
        const stop = numberEnd(s, i)
        if (stop < 0) return LineRejectCode.notJson
        type = numberType(s, i, stop)
        i = stop
        at = At.AfterValue
      }
      if (depth === 1) {
        // A field of any type takes even a number too large to be finite (Ajv looks at nothing).
        if (!schema && field >= 0 && fields[field]!.types !== ANY && (fields[field]!.types & type) === 0) schema = true
      } else if (depth === 2 && items !== 0 && kinds[2] === ARR && (items & type) === 0) schema = true
    }
    if (skipWs(s, i) !== end) return LineRejectCode.notJson
    // JSON.parse keeps the last of two equal keys, and the reference measures the depth of what
    // it kept: a too-deep value whose key comes again later is gone, and the line is "duplicate
    // key" there rather than "too deep". Which value survived the reference tells (hostile lines only).
    if (deep) return dup ? ASK_REFERENCE : LineRejectCode.tooDeep
    if (dup) return LineRejectCode.duplicateKey
    return schema ? LineRejectCode.schema : null
  }

  /**
   * Drops what the scan of a line kept of it, however the scan ended: its keys are slices of the
   * line, and a key set left at a level (a line that broke off inside an object of more than
   * LINEAR_KEYS keys) would keep the whole line alive until a later line opened an object there,
   * one line per level up to MAX_LINE_DEPTH. Only unknownFields stays, for the caller (one line's).
   */
  private forget(): void {
    this.keyStack.length = 0
    const sets = this.keySets
    for (let d = this.setsTop; d > 0; d--) sets[d] = null
    this.setsTop = 0
    // A hostile line may have grown the stack of kinds to its length: not kept for the next line.
    if (this.kinds.length > 4096) this.kinds = new Uint8Array(64)
  }

  /** Adds a key to the object open at `depth`; true when it was there already. */
  private addKey(depth: number, key: string): boolean {
    const keyStack = this.keyStack
    const from = this.keyStart[depth]!
    let set = this.keySets[depth]
    if (set) {
      if (set.has(key)) return true
      set.add(key)
    } else {
      for (let j = from; j < keyStack.length; j++) if (keyStack[j] === key) return true
      if (keyStack.length - from >= LINEAR_KEYS) {
        set = new Set(keyStack.slice(from))
        set.add(key)
        this.keySets[depth] = set
        if (depth > this.setsTop) this.setsTop = depth
      }
    }
    keyStack.push(key)
    return false
  }

  private closeKeys(depth: number): void {
    this.keyStack.length = this.keyStart[depth]!
    this.keySets[depth] = null
  }
}
