import { createRegistry } from '../../src/observability/index.js'
import { Stats } from '../../src/observability/stats.js'

/** The `# TYPE` lines of a fresh app's /metrics registry, in the order it writes them. */
export async function typeLines(): Promise<string[]> {
  const registry = createRegistry({
    stats: new Stats(['http_requests'], 10),
    version: 'test',
    spool: () => ({ bytes: 0, accepting: true, highWatermarkBytes: 1 }),
    sinks: () => new Map()
  })
  return (await registry.metrics()).split('\n').filter((l) => l.startsWith('# TYPE '))
}

/** Every metric family name /metrics exports (histograms also as _bucket, _sum and _count). */
export async function exportedNames(): Promise<Set<string>> {
  const out = new Set<string>()
  for (const line of await typeLines()) {
    const [, , name, type] = line.split(' ')
    out.add(name!)
    if (type === 'histogram') for (const s of ['_bucket', '_sum', '_count']) out.add(name! + s)
  }
  return out
}
