// The body of a parse worker (see parse-pool.ts): per session, decode UTF-8, split on '\n',
// check each line with the same LineChecker the in-thread path uses, and frame the valid lines
// as spool records here, so the main thread only writes bytes.
import { StringDecoder } from 'node:string_decoder'
import { parentPort, workerData } from 'node:worker_threads'
import { frame } from '../spool/format.js'
import { loadDatasets } from './datasets.js'
import { LineChecker, type Tally } from './line-checker.js'
import type { ChunkResult, Reject } from './parse-pool.js'

const { schemasDir, driftFieldsMax } = workerData as { schemasDir: string, driftFieldsMax: number }
const datasets = loadDatasets(schemasDir)

interface Session {
  readonly checker: LineChecker
  readonly decoder: StringDecoder
  readonly unknownFields: Map<string, number>
  readonly typeMismatches: Map<string, number>
  readonly maxLineBytes: number
  tail: string
  refuse: ChunkResult['refuse'] | null
}

const sessions = new Map<number, Session>()

function handle(s: Session, text: string, last: boolean): Omit<ChunkResult, 'summary'> {
  const valid: string[] = []
  const rejects: Reject[] = []
  const take = (line: string): void => {
    const outcome = s.checker.check(line)
    if (outcome.kind === 'valid') valid.push(line)
    else if (outcome.kind === 'reject') rejects.push({ line: s.checker.lineNo, code: outcome.code, reason: outcome.reason, raw: line })
    else if (outcome.kind === 'refuse') s.refuse = { error: outcome.error, reason: outcome.reason }
  }
  if (!s.refuse) {
    // Lines are cut out of the chunk where they lie; only the line that straddles the previous
    // chunk is joined with its beginning. Joining the whole chunk to the carried tail first
    // would copy every chunk once more (costly for two-byte strings: any non-ASCII character).
    let start = 0
    let nl = text.indexOf('\n')
    if (nl >= 0 && s.tail !== '') {
      const line = s.tail + text.slice(0, nl)
      s.tail = ''
      take(line)
      start = nl + 1
      nl = text.indexOf('\n', start)
    }
    while (nl >= 0 && !s.refuse) {
      take(text.slice(start, nl))
      start = nl + 1
      nl = text.indexOf('\n', start)
    }
    if (!s.refuse) {
      s.tail = start === 0 ? s.tail + text : text.slice(start)
      if (s.tail.length > s.maxLineBytes) s.refuse = { error: 'line-too-long', reason: '' }
    }
    if (!s.refuse && last && s.tail.length > 0) {
      const line = s.tail
      s.tail = ''
      take(line)
    }
  }
  const framed = valid.length > 0 ? frame(valid) : Buffer.alloc(0)
  return { framed, count: valid.length, rejects, ...(s.refuse ? { refuse: s.refuse } : {}) }
}

parentPort!.on('message', (m: { op: string, sid: number, mid?: number, dataset?: string, maxLineBytes?: number, data?: Uint8Array }) => {
  try {
    if (m.op === 'open') {
      const dataset = datasets.get(m.dataset!)
      if (!dataset) throw new Error(`unknown dataset ${m.dataset}`)
      const unknownFields = new Map<string, number>()
      const typeMismatches = new Map<string, number>()
      const bounded = (m: Map<string, number>, field: string): void => {
        const key = m.has(field) || m.size < driftFieldsMax ? field : '_other'
        m.set(key, (m.get(key) ?? 0) + 1)
      }
      const tally: Tally = {
        accepted: 0,
        // The main thread counts rejections from the dead letters it writes.
        countRejected () {},
        countUnknownField (field) { bounded(unknownFields, field) },
        countTypeMismatch (field) { bounded(typeMismatches, field) }
      }
      sessions.set(m.sid, { checker: new LineChecker(dataset, m.maxLineBytes!, tally), decoder: new StringDecoder('utf8'), unknownFields, typeMismatches, maxLineBytes: m.maxLineBytes!, tail: '', refuse: null })
      return
    }
    if (m.op === 'cancel') { sessions.delete(m.sid); return }
    const s = sessions.get(m.sid)
    if (!s) throw new Error(`no parse session ${m.sid}`)
    if (m.op === 'chunk') {
      const data = m.data!
      const result = handle(s, s.decoder.write(Buffer.from(data.buffer, data.byteOffset, data.byteLength)), false)
      parentPort!.postMessage({ mid: m.mid, result }, transferable(result.framed))
      return
    }
    if (m.op === 'end') {
      const result = handle(s, s.decoder.end(), true)
      sessions.delete(m.sid)
      const c = s.checker
      const summary = { lines: c.lineNo, accepted: c.accepted, rejected: c.rejected, notNdjson: s.refuse ? null : c.finish(), unknownFields: [...s.unknownFields], typeMismatches: [...s.typeMismatches] }
      parentPort!.postMessage({ mid: m.mid, result: { ...result, summary } }, transferable(result.framed))
    }
  } catch (err) {
    parentPort!.postMessage({ mid: m.mid, error: (err as Error).message })
  }
})

/** A framed buffer that owns its whole memory moves to the main thread without a copy. */
function transferable(b: Buffer): ArrayBuffer[] {
  return b.byteOffset === 0 && b.buffer.byteLength === b.length && b.length > 0 ? [b.buffer as ArrayBuffer] : []
}
