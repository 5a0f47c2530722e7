// The body of a parse worker (see parse-pool.ts): per session, check the lines of each piece of
// bytes it is sent (complete lines: the main thread holds the unfinished one, lines.ts) with the
// same LineChecker the in-thread path uses, and answer what to leave out and the checksum of the
// rest: the main thread stores the piece it kept. A worker keeps no bytes between messages.
import { parentPort, workerData } from 'node:worker_threads'
import { driftKey } from '../observability/stats.js'
import type { DatasetSchema } from '../dataset-schema.js'
import { datasetsFromSchemas, type LineValidatorKind } from './datasets.js'
import { LineChecker, type Tally } from './line-checker.js'
import { checkPiece, type CheckedPiece } from './lines.js'
import type { ChunkResult } from './parse-pool.js'

// The main thread's snapshot of the schemas (parse-pool.ts): never SCHEMAS_DIR read again here.
const { schemas, driftFieldsMax, driftFieldNameMaxChars, lineValidator } = workerData as { schemas: Array<[string, DatasetSchema]>, driftFieldsMax: number, driftFieldNameMaxChars: number, lineValidator: LineValidatorKind }
const datasets = datasetsFromSchemas(schemas, lineValidator)

interface Session {
  readonly checker: LineChecker
  readonly unknownFields: Map<string, number>
  readonly typeMismatches: Map<string, number>
  refused: boolean
}

const sessions = new Map<number, Session>()

function handle(s: Session, data: Uint8Array): CheckedPiece {
  // After a refusal the main thread stops; whatever was already on its way is not looked at.
  if (s.refused || data.byteLength === 0) return { count: 0, cuts: [0, data.byteLength], crc: 0, rejects: [] }
  const r = checkPiece(s.checker, Buffer.from(data.buffer, data.byteOffset, data.byteLength))
  if (r.refuse) s.refused = true
  return r
}

parentPort!.on('message', (m: { op: string, sid: number, mid?: number, dataset?: string, maxLineBytes?: number, maxDepth?: number, data?: Uint8Array }) => {
  try {
    if (m.op === 'open') {
      const dataset = datasets.get(m.dataset!)
      if (!dataset) throw new Error(`unknown dataset ${m.dataset}`)
      const unknownFields = new Map<string, number>()
      const typeMismatches = new Map<string, number>()
      const bounded = (counts: Map<string, number>, field: string): void => {
        const key = driftKey(counts, field, driftFieldsMax, driftFieldNameMaxChars)
        counts.set(key, (counts.get(key) ?? 0) + 1)
      }
      const tally: Tally = {
        accepted: 0,
        // The main thread counts rejections from the dead letters it writes.
        countRejected () {},
        countUnknownField (field) { bounded(unknownFields, field) },
        countTypeMismatch (field) { bounded(typeMismatches, field) }
      }
      sessions.set(m.sid, { checker: new LineChecker(dataset, m.maxLineBytes!, tally, m.maxDepth), unknownFields, typeMismatches, refused: false })
      return
    }
    if (m.op === 'cancel') { sessions.delete(m.sid); return }
    const s = sessions.get(m.sid)
    if (!s) throw new Error(`no parse session ${m.sid}`)
    if (m.op === 'chunk') {
      const result = handle(s, m.data!)
      parentPort!.postMessage({ mid: m.mid, result })
      return
    }
    if (m.op === 'end') {
      const result = handle(s, m.data ?? new Uint8Array(0))
      sessions.delete(m.sid)
      const c = s.checker
      const summary = { lines: c.lineNo, accepted: c.accepted, rejected: c.rejected, notNdjson: s.refused ? null : c.finish(), unknownFields: [...s.unknownFields], typeMismatches: [...s.typeMismatches] }
      parentPort!.postMessage({ mid: m.mid, result: { ...result, summary } satisfies ChunkResult })
    }
  } catch (err) {
    parentPort!.postMessage({ mid: m.mid, error: (err as Error).message })
  }
})
