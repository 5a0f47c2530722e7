// Replay: dead letters of a dataset that the current schema now accepts go into the spool once,
// and only once; the others stay where they are. It is a client of the service's own modules:
// the dead-letter store is read as files, each line is re-validated with the pipeline's checkLine
// against schemas/ as they are now, and the valid lines are sent as one Logpush batch at a time
// to the service's own intake (POST /logpush/<dataset> with its token), which validates them
// again, stores them durably in the spool and answers only then; the destinations get them from
// the spool like any batch. Exactly once comes from the ledger (ledger.ts) plus the intake's
// re-send detection.
//
// Why HTTP and not the spool files directly: a running service owns the spool in memory (the
// next sequence number, which segments exist, when to delete them); a second process writing
// segments would collide with it. So replay talks to the running service (found through
// DATA_DIR/service.lock) and, when none runs, runs the service's code in its own process on a
// loopback port, holding that same lock so that a service started meanwhile refuses to start.
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type { Dataset } from '../pipeline/index.js'
import { checkLine } from '../pipeline/index.js'
import { deadLetterFiles, readDeadLetterFile } from './dead-letters.js'
import { Ledger, lineId, type Pending } from './ledger.js'

/** Sends one batch body to the intake; resolves with its JSON answer or throws. */
export type Send = (dataset: string, body: string) => Promise<IntakeAnswer>

export interface IntakeAnswer {
  readonly accepted: number
  readonly rejected: number
  readonly duplicate?: boolean
}

export interface ReplayOptions {
  readonly dataDir: string
  readonly dataset: Dataset
  /** Only dead letters written at or after this time. */
  readonly since?: Date
  /** Largest batch body sent at once, bytes. */
  readonly batchBytes: number
  readonly send: Send
  /** Called after each batch is in the spool (progress; tests stop here to play a crash). */
  readonly onBatch?: (n: number) => void | Promise<void>
}

export interface ReplayReport {
  readonly dataset: string
  /** Dead letters read (of this dataset, validation stage, in the time window). */
  readonly scanned: number
  /** Lines an earlier replay already ingested (or repeated in the store). */
  readonly alreadyReplayed: number
  /** Lines ingested by this run, an interrupted batch of an earlier run included. */
  readonly replayed: number
  /** Of those, lines the service answered as already stored (an interrupted batch re-sent). */
  readonly duplicates: number
  /** Lines the current schema still refuses: they stay dead letters. */
  readonly stillInvalid: number
  /** Lines the service refused although the schema on disk accepts them: restart the service. */
  readonly refusedByService: number
  readonly batches: number
}

export class ReplayRefused extends Error {}

export async function replay(opts: ReplayOptions): Promise<ReplayReport> {
  const name = opts.dataset.name
  const ledger = new Ledger(join(opts.dataDir, 'replay', name))
  await ledger.load()
  const r = { dataset: name, scanned: 0, alreadyReplayed: 0, replayed: 0, duplicates: 0, stillInvalid: 0, refusedByService: 0, batches: 0 }

  const ingest = async (p: Pending): Promise<void> => {
    const answer = await opts.send(name, p.body)
    if (answer.duplicate) r.duplicates += p.ids.length
    else r.refusedByService += answer.rejected
    await ledger.finish(p)
    r.replayed += p.ids.length
    r.batches++
    await opts.onBatch?.(r.batches)
  }

  // An interrupted run first: the same bytes again, so that a stored batch is a re-send.
  const interrupted = await ledger.pending()
  if (interrupted) await ingest(interrupted)

  // Ids of this run's batches, and of lines met twice in the store (a repeated dead letter).
  const seen = new Set<string>()
  let ids: string[] = []
  let lines: string[] = []
  let bytes = 0
  const flush = async (): Promise<void> => {
    if (ids.length === 0) return
    const p: Pending = { ids, body: lines.join('\n') + '\n' }
    ids = []
    lines = []
    bytes = 0
    await ledger.begin(p)
    await ingest(p)
  }

  for (const file of await deadLetterFiles(join(opts.dataDir, 'dead-letter', name))) {
    for await (const letter of readDeadLetterFile(file)) {
      // Lines a destination refused were valid: replaying them would send them everywhere again.
      if (letter.stage !== 'validation' || letter.dataset !== name) continue
      if (opts.since && !(Date.parse(letter.time) >= opts.since.getTime())) continue
      r.scanned++
      const id = lineId(name, letter.raw)
      if (ledger.has(id) || seen.has(id)) { r.alreadyReplayed++; continue }
      if (!checkLine(opts.dataset, letter.raw).ok) { r.stillInvalid++; continue }
      seen.add(id)
      const size = Buffer.byteLength(letter.raw) + 1
      if (bytes + size > opts.batchBytes) await flush()
      ids.push(id)
      lines.push(letter.raw)
      bytes += size
    }
  }
  await flush()
  return r
}

/**
 * A Send that POSTs to a service's /logpush/<dataset> with its token. The service is on this
 * machine (same DATA_DIR); over TLS its certificate names the public host, not the loopback
 * address, so it is not verified.
 */
export function httpSend(baseUrl: string, token: string): Send {
  return (dataset, body) => new Promise((resolve, reject) => {
    const url = new URL(`/logpush/${dataset}`, baseUrl)
    const payload = Buffer.from(body)
    const options = {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'content-length': payload.length },
      ...(url.protocol === 'https:' ? { rejectUnauthorized: false } : {})
    }
    const req = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (c: Buffer) => chunks.push(c))
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8')
        let json: Record<string, unknown> = {}
        try { json = JSON.parse(text) as Record<string, unknown> } catch {}
        if (res.statusCode !== 200) return reject(new ReplayRefused(`the service answered ${res.statusCode}: ${typeof json.message === 'string' ? json.message : text.slice(0, 500)}`))
        resolve({ accepted: Number(json.accepted ?? 0), rejected: Number(json.rejected ?? 0), ...(json.duplicate === true ? { duplicate: true } : {}) })
      })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end(payload)
  })
}
