// The floor the service is compared with: one core doing nothing but gunzip, splitting on
// newlines and JSON.parse of every line, over the very bodies the scenarios send. Machines differ
// and are shared, so only ratios to a baseline measured in the same run compare across runs.
import { StringDecoder } from 'node:string_decoder'
import { createGunzip, gunzipSync } from 'node:zlib'
import type { Body, LineShape } from './bodies.js'

export interface BaselineRun {
  readonly implementation: string
  readonly lines: number
  readonly bytes: number
  readonly wallSeconds: number
  readonly cpuSeconds: number
  /** lines / max(wall, cpu): see chargedSeconds. */
  readonly linesPerSec: number
  readonly mbPerSec: number
}

export interface Baseline {
  readonly dataset: string
  /** Absent in results from before short lines were measured: every field. */
  readonly shape?: LineShape
  readonly sizeMB: number
  /** The fastest run of the fastest implementation. */
  readonly best: BaselineRun
  readonly runs: readonly BaselineRun[]
}

/** Parses every line of one string; the count, so the work cannot be optimised away. */
function parseLines(text: string): number {
  let n = 0
  let start = 0
  for (;;) {
    const end = text.indexOf('\n', start)
    const stop = end === -1 ? text.length : end
    if (stop > start) { JSON.parse(text.slice(start, stop)); n++ }
    if (end === -1) return n
    start = end + 1
  }
}

/** The whole body inflated at once, on the calling thread. */
async function wholeBody(body: Body): Promise<number> {
  return parseLines(gunzipSync(body.gzip).toString('utf8'))
}

/**
 * Inflated in 64 KiB pieces as the service does. zlib then runs on libuv's thread pool, in
 * parallel with the parsing: that is a second core, so this implementation is charged its CPU time.
 */
async function streamed(body: Body): Promise<number> {
  const gunzip = createGunzip({ chunkSize: 64 * 1024 })
  gunzip.end(body.gzip)
  const decoder = new StringDecoder('utf8')
  let rest = ''
  let n = 0
  for await (const chunk of gunzip) {
    const text = rest + decoder.write(chunk as Buffer)
    const cut = text.lastIndexOf('\n')
    if (cut === -1) { rest = text; continue }
    n += parseLines(text.slice(0, cut))
    rest = text.slice(cut + 1)
  }
  return n + parseLines(rest + decoder.end())
}

const IMPLEMENTATIONS: Record<string, (body: Body) => Promise<number>> = {
  'gunzipSync+indexOf': wholeBody,
  'createGunzip+indexOf': streamed
}

/**
 * Wall time for work done on one thread; CPU time when the process used more than one core
 * meanwhile (zlib's thread pool, parallel GC), so that no implementation gets a second core.
 */
function chargedSeconds(wall: number, cpu: number): number {
  return Math.max(wall, cpu)
}

async function once(name: string, body: Body, minBytes: number): Promise<BaselineRun> {
  const run = IMPLEMENTATIONS[name]!
  const t0 = process.hrtime.bigint()
  const c0 = process.cpuUsage()
  let lines = 0
  let bytes = 0
  do {
    const n = await run(body)
    if (n !== body.lines) throw new Error(`${name} parsed ${n} lines of ${body.lines}`)
    lines += n
    bytes += body.bytes
  } while (bytes < minBytes)
  const wallSeconds = Number(process.hrtime.bigint() - t0) / 1e9
  const c = process.cpuUsage(c0)
  const cpuSeconds = (c.user + c.system) / 1e6
  const seconds = chargedSeconds(wallSeconds, cpuSeconds)
  return { implementation: name, lines, bytes, wallSeconds, cpuSeconds, linesPerSec: lines / seconds, mbPerSec: bytes / 1e6 / seconds }
}

/** Each implementation `repeats` times over at least `minBytes` of the body; the best run wins. */
export async function measureBaseline(body: Body, repeats: number, minBytes: number): Promise<Baseline> {
  const runs: BaselineRun[] = []
  for (let r = 0; r < repeats; r++) {
    // Interleaved, so that a noisy moment of a shared machine does not hit one implementation only.
    for (const name of Object.keys(IMPLEMENTATIONS)) runs.push(await once(name, body, minBytes))
  }
  const best = runs.reduce((a, b) => (b.linesPerSec > a.linesPerSec ? b : a))
  return { dataset: body.dataset, shape: body.shape, sizeMB: body.sizeMB, best, runs }
}
