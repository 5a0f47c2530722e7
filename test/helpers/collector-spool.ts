// The spool as a collector sees it: a gzip body stored once per digest, a re-send a duplicate.
import type { Readable } from 'node:stream'
import { buffer } from 'node:stream/consumers'
import { gunzipSync } from 'node:zlib'
import type { ObjectOutcome } from '../../src/sources/bucket/index.js'

export function fakeSpool(): { ingest: (body: Readable, digest: string, label?: string) => Promise<ObjectOutcome>, lines: () => any[], digests: Map<string, string[]> } {
  const digests = new Map<string, string[]>()
  return {
    digests,
    async ingest(body, digest) {
      const bytes = await buffer(body)
      if (digests.has(digest)) return { kind: 'duplicate' }
      const lines = gunzipSync(bytes).toString('utf8').split('\n').filter(Boolean)
      digests.set(digest, lines)
      return { kind: 'stored', lines: lines.length, accepted: lines.length, rejected: 0, inflatedBytes: bytes.length }
    },
    lines: () => [...digests.values()].flat().map((l) => JSON.parse(l))
  }
}
