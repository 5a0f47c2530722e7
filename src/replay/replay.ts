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
import { randomBytes, randomUUID } from 'node:crypto'
import { request as httpRequest } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import type { Dataset } from '../pipeline/index.js'
import { LineRejectCode } from '../errors.js'
import { checkLine } from '../pipeline/index.js'
import { oneLine } from '../one-line.js'
import { UNRECOGNISED_DATASET } from '../spool/index.js'
import { deadLetterFiles, readDeadLetterFile } from './dead-letters.js'
import { Ledger, lineId, type Pending } from './ledger.js'

/**
 * Sends one batch body to the intake under the given request id (the service's dead letters of
 * the batch carry it); resolves with its JSON answer or throws.
 */
export type Send = (dataset: string, body: string, requestId: string) => Promise<IntakeAnswer>

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
  /** MAX_LINE_DEPTH of the service, so replay checks lines exactly as it will. */
  readonly maxDepth?: number
  readonly send: Send
  /**
   * Replays the HEC batches kept under dead-letter/_unknown/ (their dataset could not be told)
   * that this function, given each batch's first record, now tells as the dataset: after its
   * schema was added. The dataset's own dead letters are not read then.
   */
  readonly recognise?: (record: Record<string, unknown>) => Dataset | null
  /**
   * Replays only the dead letters of this tenant (whose token `send` uses); without it only those
   * no tenant's token sent. Another tenant's lines are never sent under this run's token: they
   * would reach this token's target, not their own.
   */
  readonly tenant?: string
  /** Called after each batch is in the spool (progress; tests stop here to play a crash). */
  readonly onBatch?: (n: number) => void | Promise<void>
}

export interface ReplayReport {
  readonly dataset: string
  /** Dead letters read (of this dataset, validation stage, in the time window). */
  readonly scanned: number
  /**
   * Lines an earlier replay already ingested (or repeated in the store). The lines of an
   * interrupted batch that this run sent again are counted in `replayed`, not here (whether or
   * not the scan meets them): no line is counted in two of alreadyReplayed, replayed,
   * stillInvalid and refusedByService. A run stopped by a refusal leaves the rest uncounted.
   */
  readonly alreadyReplayed: number
  /** Lines ingested by this run, an interrupted batch of an earlier run included. */
  readonly replayed: number
  /** Of those, lines the service answered as already stored (an interrupted batch re-sent). */
  readonly duplicates: number
  /** Dead letters of another tenant (or of none, with --tenant): left for a replay as that tenant. */
  readonly otherTenant: number
  /** Lines the current schema still refuses: they stay dead letters. */
  readonly stillInvalid: number
  /**
   * Lines the service refused although the schema on disk accepts them: it runs an older schema.
   * They are dead letters again, not recorded as replayed, and the run stops there.
   */
  readonly refusedByService: number
  readonly batches: number
}

export class ReplayRefused extends Error {}

/**
 * A blank first line (spaces and tabs, which the intake skips) spelling 64 random bits, so every
 * new batch has a body of its own: the intake's re-send digest must not mistake a batch for one
 * sent before with the same lines, say to a service still on an older schema that dead-lettered
 * them all. A batch re-sent from pending.json keeps its line, so there the digest still says
 * "already stored".
 */
function nonceLine(): string {
  let out = ''
  for (const byte of randomBytes(8)) for (let bit = 0; bit < 8; bit++) out += (byte >> bit) & 1 ? '\t' : ' '
  return out
}

export async function replay(opts: ReplayOptions): Promise<ReplayReport> {
  const name = opts.dataset.name
  // A tenant's replays keep their own ledger: the same line sent by two tenants is two lines.
  const ledger = new Ledger(opts.tenant === undefined ? join(opts.dataDir, 'replay', name) : join(opts.dataDir, 'replay', name, `tenant-${opts.tenant}`))
  await ledger.load()
  const r = { dataset: name, scanned: 0, alreadyReplayed: 0, replayed: 0, duplicates: 0, otherTenant: 0, stillInvalid: 0, refusedByService: 0, batches: 0 }

  /** False when the service refused lines: the run must stop. */
  const ingest = async (p: Pending): Promise<boolean> => {
    const requestId = p.requestId ?? `replay-${randomUUID()}`
    const answer = await opts.send(name, p.body, requestId)
    let refused = new Set<string>()
    if (answer.rejected > 0) {
      // Those lines are dead letters again (under our request id): they are not replayed yet. A
      // duplicate too: the service stored the batch before, with the same refusals, and
      // dead-lettered them then under the same request id (kept in pending.json).
      refused = await refusedIds(opts.dataDir, name, requestId, answer.rejected)
      r.refusedByService += answer.rejected
    }
    if (answer.duplicate) r.duplicates += p.ids.length - refused.size
    await ledger.finish({ ids: p.ids.filter((id) => !refused.has(id)), body: p.body })
    r.replayed += p.ids.length - refused.size
    r.batches++
    await opts.onBatch?.(r.batches)
    return refused.size === 0
  }

  // An interrupted run first: the same bytes again, so that a stored batch is a re-send.
  let interrupted = await ledger.pending()
  // Unless all its ids are recorded: that happens only after the service's 200, so the kill came
  // before pending.json was removed. Sent again, only the service's re-send window (none with
  // DEDUPE_WINDOW_SECONDS 0, or a day later) would keep it from being stored twice.
  if (interrupted && interrupted.ids.every((id) => ledger.has(id))) {
    await ledger.finish({ ids: [], body: interrupted.body })
    interrupted = null
  }
  if (interrupted && !await ingest(interrupted)) return r
  // Its lines are met again below, now in the ledger: this run counted them as replayed.
  const resent = new Set(interrupted?.ids)

  // Ids of this run's batches, and of lines met twice in the store (a repeated dead letter).
  const seen = new Set<string>()
  let ids: string[] = []
  let lines: string[] = []
  // Every batch starts with its nonce line (64 bytes and a newline).
  let bytes = 65
  const flush = async (): Promise<boolean> => {
    if (ids.length === 0) return true
    const p: Pending = { ids, body: `${nonceLine()}\n${lines.join('\n')}\n`, requestId: `replay-${randomUUID()}` }
    ids = []
    lines = []
    bytes = 65
    await ledger.begin(p)
    return await ingest(p)
  }

  const from = opts.recognise ? UNRECOGNISED_DATASET : name
  // With `recognise`: the request whose lines are being read, and whether they are this dataset's.
  let request: string | undefined
  let ours = false
  for (const file of await deadLetterFiles(join(opts.dataDir, 'dead-letter', from))) {
    for await (const letter of readDeadLetterFile(file)) {
      // Lines a destination refused were valid: replaying them would send them everywhere again.
      if (letter.stage !== 'validation' || letter.dataset !== from) continue
      // An HEC envelope without an event holds no record, whatever the schema says now.
      if (letter.code === LineRejectCode.envelope) continue
      if (opts.since && !(Date.parse(letter.time) >= opts.since.getTime())) continue
      if (letter.tenant !== opts.tenant) { r.otherTenant++; continue }
      if (opts.recognise) {
        // A request's dead letters are appended together, in order: its first one decides.
        if (letter.requestId !== request || request === undefined) {
          request = letter.requestId
          let record: unknown
          try { record = JSON.parse(letter.raw) } catch {}
          ours = record !== null && typeof record === 'object' && !Array.isArray(record) && opts.recognise(record as Record<string, unknown>)?.name === name
        }
        if (!ours) continue
      }
      r.scanned++
      // A batch is NDJSON: an HEC event dead-lettered as it was sent, pretty-printed, goes as the
      // one line the service stores (and dead-letters again, if it still refuses it).
      const line = letter.raw.includes('\n') ? oneLine(Buffer.from(letter.raw)).toString('utf8') : letter.raw
      const id = lineId(name, line)
      if (resent.delete(id)) { seen.add(id); continue }
      if (ledger.has(id) || seen.has(id)) { r.alreadyReplayed++; continue }
      if (!checkLine(opts.dataset, line, opts.maxDepth).ok) { r.stillInvalid++; continue }
      seen.add(id)
      const size = Buffer.byteLength(line) + 1
      if (bytes + size > opts.batchBytes && !await flush()) return r
      ids.push(id)
      lines.push(line)
      bytes += size
    }
  }
  await flush()
  return r
}

/** The ids of the lines the service dead-lettered under `requestId`: the newest files hold them. */
async function refusedIds(dataDir: string, dataset: string, requestId: string, count: number): Promise<Set<string>> {
  const out = new Set<string>()
  for (const file of (await deadLetterFiles(join(dataDir, 'dead-letter', dataset))).reverse()) {
    for await (const letter of readDeadLetterFile(file)) if (letter.requestId === requestId) out.add(lineId(dataset, letter.raw))
    if (out.size >= count) break
  }
  return out
}

/**
 * A Send that POSTs to a service's /logpush/<dataset> with its token. The service is on this
 * machine (same DATA_DIR); over TLS its certificate names the public host, not the loopback
 * address, so it is not verified.
 */
export function httpSend(baseUrl: string, token: string): Send {
  return (dataset, body, requestId) => new Promise((resolve, reject) => {
    const url = new URL(`/logpush/${dataset}`, baseUrl)
    const payload = Buffer.from(body)
    const options = {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson', 'content-length': payload.length, 'x-request-id': requestId },
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
