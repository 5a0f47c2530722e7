// Where a process spent its CPU, from the .cpuprofile files of `node --cpu-prof` (one per thread:
// the main thread and each worker thread): self time summed by function and file, then by area
// (a package in node_modules, a directory of src/, Node's internals, GC), so that a profile of a
// bench run can be read in a terminal and pasted into an issue.
//
//   node dist/test/bench/profile-summary.js <file.cpuprofile>... [--top=25] [--window=<from µs>,<to µs>]
//
// Several files are summed as threads of one process. Sample times are V8's monotonic clock in
// microseconds, the clock of process.hrtime() of any process on the machine: a window taken by
// the bench around a scenario leaves out the service's start (module loading, schema
// compilation) and stop.
import { readFile } from 'node:fs/promises'
import { basename } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { packageRoot } from '../../src/paths.js'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

export interface Window { readonly fromUs: number, readonly toUs: number }

export interface ProfileRow {
  readonly function: string
  readonly url: string
  readonly selfMs: number
  readonly selfPercent: number
}

export interface ProfileSummary {
  /** The samples were limited to this window (none fell in it: the whole profiles). */
  readonly window: Window | null
  readonly totalMs: number
  /** Sampled time per file, that is per thread; "(idle)" included. */
  readonly threads: readonly { readonly file: string, readonly ms: number, readonly idleMs: number }[]
  readonly functions: readonly ProfileRow[]
  readonly areas: readonly { readonly area: string, readonly selfMs: number, readonly selfPercent: number }[]
}

const root = pathToFileURL(packageRoot).href

function shortUrl(url: string): string {
  return url.startsWith(root) ? url.slice(root.length) : url
}

/** Coarse owner of a function: a package, a directory of the service, Node itself, or V8. */
function area(fn: string, url: string): string {
  if (!url) return fn.startsWith('(') ? fn : '(native / V8 builtins)'
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`
  const nm = url.lastIndexOf('node_modules/')
  if (nm !== -1) {
    const parts = url.slice(nm + 13).split('/')
    return `node_modules/${parts[0]!.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]}`
  }
  const short = shortUrl(url)
  const m = /^dist\/src\/([^/]+)(\/|\.js$)/.exec(short)
  if (m) return `src/${m[1]}${m[2] === '/' ? '/' : '.ts'}`
  return short
}

/** Self time per profile node, µs, of the samples inside the window. */
function selfTimes(profile: CpuProfile, window: Window | null): Map<number, number> {
  // A sample's time is the gap to the next sample, as Chrome DevTools counts it.
  const self = new Map<number, number>()
  let at = profile.startTime
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i]!
    if (window && (at < window.fromUs || at > window.toUs)) continue
    const us = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + Math.max(0, us))
  }
  return self
}

export function summarise(profiles: ReadonlyArray<{ file: string, profile: CpuProfile }>, window: Window | null = null): ProfileSummary {
  let selves = profiles.map((p) => selfTimes(p.profile, window))
  if (window && selves.every((s) => s.size === 0)) {
    window = null
    selves = profiles.map((p) => selfTimes(p.profile, null))
  }
  let total = 0
  const threads: { file: string, ms: number, idleMs: number }[] = []
  const fns = new Map<string, { function: string, url: string, us: number }>()
  const areas = new Map<string, number>()
  profiles.forEach(({ file, profile }, i) => {
    const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
    let threadUs = 0
    let idleUs = 0
    for (const [id, us] of selves[i]!) {
      const f = byId.get(id)!
      threadUs += us
      // Anonymous functions of one file are many different closures: the line tells them apart.
      const name = f.functionName || `(anonymous:${f.lineNumber + 1})`
      if (name === '(idle)') idleUs += us
      const key = `${name}\0${f.url}`
      const row = fns.get(key) ?? { function: name, url: shortUrl(f.url), us: 0 }
      row.us += us
      fns.set(key, row)
      const a = area(name, f.url)
      areas.set(a, (areas.get(a) ?? 0) + us)
    }
    total += threadUs
    threads.push({ file, ms: Math.round(threadUs / 1000), idleMs: Math.round(idleUs / 1000) })
  })
  const pct = (us: number): number => Number((100 * us / total).toFixed(1))
  return {
    window,
    totalMs: Math.round(total / 1000),
    threads,
    functions: [...fns.values()].sort((a, b) => b.us - a.us)
      .map((r) => ({ function: r.function, url: r.url, selfMs: Math.round(r.us / 1000), selfPercent: pct(r.us) })),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ area: name, selfMs: Math.round(us / 1000), selfPercent: pct(us) }))
  }
}

export async function summariseFiles(paths: readonly string[], window: Window | null = null): Promise<ProfileSummary> {
  const profiles = await Promise.all(paths.map(async (file) => ({ file: basename(file), profile: JSON.parse(await readFile(file, 'utf8')) as CpuProfile })))
  return summarise(profiles, window)
}

export function printSummary(title: string, s: ProfileSummary, top = 25): void {
  const span = s.window ? `the measured ${((s.window.toUs - s.window.fromUs) / 1e6).toFixed(1)} s` : 'the whole process lifetime'
  console.log(`\nCPU profile ${title}: ${(s.totalMs / 1000).toFixed(1)} s of samples over ${span}, ${s.threads.length} thread(s)`)
  if (s.threads.length > 1) console.table(s.threads.map((t) => ({ file: t.file, 'sampled ms': t.ms, 'idle ms': t.idleMs })))
  console.log(`Top ${top} functions by self time:`)
  console.table(s.functions.slice(0, top).map((r) => ({ 'self ms': r.selfMs, '%': r.selfPercent, function: r.function, url: r.url })))
  console.log('Self time by area:')
  console.table(s.areas.slice(0, 20).map((r) => ({ 'self ms': r.selfMs, '%': r.selfPercent, area: r.area })))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice(6) ?? 25)
  const w = process.argv.find((a) => a.startsWith('--window='))?.slice(9).split(',').map(Number)
  const window = w && w.length === 2 ? { fromUs: w[0]!, toUs: w[1]! } : null
  if (files.length === 0) {
    console.error('usage: node dist/test/bench/profile-summary.js <file.cpuprofile>... [--top=25] [--window=<from µs>,<to µs>]')
    process.exit(2)
  }
  printSummary(files.map((f) => basename(f)).join(', '), await summariseFiles(files, window), top)
}
