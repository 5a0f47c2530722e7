// Deterministic sampling: a record is kept when a hash of its id falls below the share, so the
// same records are kept at every destination, in every run and after a replay, and a destination
// sampling 0.1 gets a subset of one sampling 0.5 (the shares nest). The id is RayID where the
// dataset has one, another field the configuration names (sampleBy), or else the whole line as
// received: the same line is the same record wherever it goes.
import { createHash } from 'node:crypto'
import type { LineRecord } from './filter.js'

/** A number in [0, 1) from the SHA-256 of `text`: its first 48 bits. */
export function unitHash(text: string): number {
  return createHash('sha256').update(text).digest().readUIntBE(0, 6) / 2 ** 48
}

export type Sampler = (record: LineRecord, line: string) => boolean

export function sampler(share: number, idField: string | null): Sampler {
  return (record, line) => {
    const id = idField === null ? undefined : record[idField]
    const text = typeof id === 'string' ? id : id === undefined || id === null ? line : JSON.stringify(id)
    return unitHash(text) < share
  }
}
