// What a service stored, read back the way the crash tests check it: the file destination's
// events files (plain or gzip) and a data stream's document count.
import { createReadStream } from 'node:fs'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Readable } from 'node:stream'
import { createGunzip } from 'node:zlib'
import split2 from 'split2'

export async function eventLines(dataDir: string, dataset: string): Promise<string[]> {
  const dir = join(dataDir, 'events', dataset)
  const out: string[] = []
  for (const f of (await readdir(dir).catch(() => [] as string[])).filter((f) => /\.ndjson(\.gz)?$/.test(f)).sort()) {
    let s: Readable = createReadStream(join(dir, f))
    if (f.endsWith('.gz')) s = s.pipe(createGunzip())
    for await (const line of s.pipe(split2())) if (line) out.push(line as string)
  }
  return out
}

export async function esCount(url: string, stream: string): Promise<number> {
  await fetch(`${url}/${stream}/_refresh`, { method: 'POST' })
  const res = await fetch(`${url}/${stream}/_count`)
  return res.ok ? ((await res.json()) as { count: number }).count : 0
}
