// The re-send index's table in memory: open addressing (linear probing) over 16-byte keys, in one
// typed array. A key's words are parts of a SHA-256, already uniformly distributed, so its first
// word picks its home slot. Each slot is 5 words: the key's 4 and its commit time in whole seconds
// (0: an empty slot), side by side, so that a probe touches one cache line, not two. The capacity
// need not be a power of two: a table is sized to what it will hold (a start knows how many keys
// it reads), not to the next doubling, which saves up to half of its memory.
//
// No per-key object, no string: 20 bytes a slot, nothing for the garbage collector to trace.

const STRIDE = 5
/** Highest share of slots in use: linear probing stays short (~2.5 probes per hit) below it. */
export const MAX_LOAD = 0.75

/** Slots needed for `keys` keys at MAX_LOAD. */
export function capacityFor(keys: number): number {
  return Math.max(1024, Math.ceil(keys / MAX_LOAD))
}

export class KeyTable {
  private readonly slots: Uint32Array
  readonly capacity: number
  size = 0

  constructor (capacity = 1024) {
    this.capacity = Math.max(8, Math.floor(capacity))
    this.slots = new Uint32Array(this.capacity * STRIDE)
  }

  /** The home slot of a key whose first word is `a` (uniform over 2^32): range reduction by multiply. */
  private home(a: number): number {
    return Math.floor((a * this.capacity) / 4294967296)
  }

  /** Seconds of the key's commit, or 0 when absent. */
  get(key: Uint8Array): number {
    const a = word(key, 0)
    const b = word(key, 4)
    const c = word(key, 8)
    const d = word(key, 12)
    const s = this.slots
    const cap = this.capacity
    for (let i = this.home(a); ; i = i + 1 === cap ? 0 : i + 1) {
      const o = i * STRIDE
      const at = s[o + 4]!
      if (at === 0) return 0
      if (s[o] === a && s[o + 1] === b && s[o + 2] === c && s[o + 3] === d) return at
    }
  }

  /**
   * Reads the home slot of a key whose first word is `a`, and nothing else. A start calls it for
   * the next few keys before inserting them: those reads do not wait for each other, so the
   * memory fetches of several random slots overlap instead of coming one after the other.
   */
  touch(a: number): number {
    return this.slots[this.home(a) * STRIDE + 4]!
  }

  /** Whether one more key fits without passing the load limit. */
  fits(): boolean {
    return this.size + 1 <= this.capacity * MAX_LOAD
  }

  /** Sets the key's time (the later of the two when present). The caller checks fits() first. */
  set(key: Uint8Array, seconds: number): void {
    this.setWords(word(key, 0), word(key, 4), word(key, 8), word(key, 12), Math.max(1, seconds))
  }

  /**
   * The same with the key as four little-endian words: the loop of a start calls this for
   * millions of records straight from its read buffer. `seconds` > 0; the caller checks fits().
   */
  setWords(a: number, b: number, c: number, d: number, seconds: number): void {
    const s = this.slots
    const cap = this.capacity
    for (let i = this.home(a); ; i = i + 1 === cap ? 0 : i + 1) {
      const o = i * STRIDE
      const at = s[o + 4]!
      if (at === 0) {
        s[o] = a; s[o + 1] = b; s[o + 2] = c; s[o + 3] = d; s[o + 4] = seconds
        this.size++
        return
      }
      if (s[o] === a && s[o + 1] === b && s[o + 2] === c && s[o + 3] === d) {
        if (at < seconds) s[o + 4] = seconds
        return
      }
    }
  }

  /** A table of `capacity` slots holding this one's keys at or after `minSeconds`. */
  rebuilt(capacity: number, minSeconds: number): KeyTable {
    const t = new KeyTable(capacity)
    const s = this.slots
    for (let o = 0; o < s.length; o += STRIDE) {
      const at = s[o + 4]!
      if (at === 0 || at < minSeconds) continue
      t.setWords(s[o]!, s[o + 1]!, s[o + 2]!, s[o + 3]!, at)
    }
    return t
  }

  /**
   * Drops the keys before `minSeconds` in place, without a second table: expired slots are
   * emptied, then every key, once around from a slot that was empty BEFORE the drop, is taken out
   * and put back, which closes the gaps its probe sequence may now cross (it can only move towards
   * its home slot). The walk must start at a slot no probe sequence crossed: from one that the
   * drop itself emptied, a key of a cluster wrapping past it was put back before the part of its
   * cluster nearer its home had moved up, and a later move then left a gap in front of it (the
   * key could no longer be found).
   */
  dropBefore(minSeconds: number): void {
    const s = this.slots
    const cap = this.capacity
    let start = 0
    while (start < cap && s[start * STRIDE + 4] !== 0) start++
    if (start === cap) {
      // No empty slot at all (never at MAX_LOAD): every key is put back into a fresh table.
      const t = this.rebuilt(cap, minSeconds)
      s.set(t.slots)
      this.size = t.size
      return
    }
    for (let o = 0; o < s.length; o += STRIDE) {
      const at = s[o + 4]!
      if (at !== 0 && at < minSeconds) { s[o + 4] = 0; this.size-- }
    }
    for (let n = 1; n < cap; n++) {
      const i = (start + n) % cap
      const o = i * STRIDE
      const at = s[o + 4]!
      if (at === 0) continue
      s[o + 4] = 0
      this.size--
      this.setWords(s[o]!, s[o + 1]!, s[o + 2]!, s[o + 3]!, at)
    }
  }

  /** The time (seconds) below which about `fraction` of the keys lie. */
  quantile(fraction: number): number {
    const times = new Uint32Array(this.size)
    const s = this.slots
    let n = 0
    for (let o = 4; o < s.length; o += STRIDE) if (s[o] !== 0) times[n++] = s[o]!
    times.sort()
    return times[Math.min(n - 1, Math.floor(n * fraction))] ?? 0
  }
}

/** The little-endian 32-bit word at `offset`, whatever the machine's byte order. */
function word(b: Uint8Array, offset: number): number {
  return (b[offset]! | (b[offset + 1]! << 8) | (b[offset + 2]! << 16) | (b[offset + 3]! << 24)) >>> 0
}
