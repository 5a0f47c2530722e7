// Where a .cpuprofile (node --cpu-prof) spent its time, as text: self time summed by function and
// file, then by area (a package in node_modules, a directory of src/, Node's internals, GC), so a
// profile of a bench run can be read in a terminal and pasted into an issue.
//
//   node dist/test/bench/profile-summary.js <file.cpuprofile> [--top=25]
import { readFile } from 'node:fs/promises'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { packageRoot } from '../../src/paths.js'

interface CallFrame { functionName: string, url: string, lineNumber: number }
interface ProfileNode { id: number, callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[], startTime: number, endTime: number, samples: number[], timeDeltas: number[] }

export interface ProfileRow {
  readonly function: string
  readonly url: string
  readonly selfMs: number
  readonly selfPercent: number
}

export interface ProfileSummary {
  readonly totalMs: number
  readonly functions: readonly ProfileRow[]
  readonly areas: readonly { readonly area: string, readonly selfMs: number, readonly selfPercent: number }[]
}

const root = pathToFileURL(packageRoot).href

function shortUrl(url: string): string {
  if (url.startsWith(root)) return url.slice(root.length)
  return url
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

export function summarise(profile: CpuProfile): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n.callFrame]))
  // A sample's time is the gap to the next sample, as Chrome DevTools counts it.
  const self = new Map<number, number>()
  for (let i = 0; i < profile.samples.length; i++) {
    const us = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1]! : 0
    self.set(profile.samples[i]!, (self.get(profile.samples[i]!) ?? 0) + Math.max(0, us))
  }
  let total = 0
  const fns = new Map<string, { function: string, url: string, us: number }>()
  const areas = new Map<string, number>()
  for (const [id, us] of self) {
    const f = byId.get(id)!
    total += us
    // Anonymous functions of one file are many different closures: the line tells them apart.
    const name = f.functionName || `(anonymous:${f.lineNumber + 1})`
    const key = `${name}\0${f.url}`
    const row = fns.get(key) ?? { function: name, url: shortUrl(f.url), us: 0 }
    row.us += us
    fns.set(key, row)
    const a = area(name, f.url)
    areas.set(a, (areas.get(a) ?? 0) + us)
  }
  const pct = (us: number): number => Number((100 * us / total).toFixed(1))
  return {
    totalMs: Math.round(total / 1000),
    functions: [...fns.values()].sort((a, b) => b.us - a.us)
      .map((r) => ({ function: r.function, url: r.url, selfMs: Math.round(r.us / 1000), selfPercent: pct(r.us) })),
    areas: [...areas].sort((a, b) => b[1] - a[1]).map(([name, us]) => ({ area: name, selfMs: Math.round(us / 1000), selfPercent: pct(us) }))
  }
}

export async function summariseFile(path: string): Promise<ProfileSummary> {
  return summarise(JSON.parse(await readFile(path, 'utf8')) as CpuProfile)
}

export function printSummary(path: string, s: ProfileSummary, top = 25): void {
  console.log(`\nCPU profile ${path}: ${(s.totalMs / 1000).toFixed(1)} s sampled on the main thread`)
  console.log(`Top ${top} functions by self time:`)
  console.table(s.functions.slice(0, top).map((r) => ({ 'self ms': r.selfMs, '%': r.selfPercent, function: r.function, url: r.url })))
  console.log('Self time by area:')
  console.table(s.areas.slice(0, 20).map((r) => ({ 'self ms': r.selfMs, '%': r.selfPercent, area: r.area })))
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const files = process.argv.slice(2).filter((a) => !a.startsWith('--'))
  const top = Number(process.argv.find((a) => a.startsWith('--top='))?.slice(6) ?? 25)
  if (files.length === 0) {
    console.error('usage: node dist/test/bench/profile-summary.js <file.cpuprofile>... [--top=25]')
    process.exit(2)
  }
  for (const file of files) printSummary(file, await summariseFile(file), top)
}
