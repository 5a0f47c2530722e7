// fsyncs per accepted batch, two ways, for a scenario's measured window:
// - the spool's own, from lpr_spool_fsyncs_total (its counting SpoolFs, src/spool/fs.ts); a build
//   from before the counter has none;
// - the whole process's fsync and fdatasync system calls (the destination's own, the dead-letter
//   store's too), counted by the kernel with `perf stat` on the syscall tracepoints, for any build:
//   what makes a before/after of builds without the counter possible. Without perf (or without
//   the right to trace) that column is empty.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const EVENTS = 'syscalls:sys_enter_fsync,syscalls:sys_enter_fdatasync'
let perfWorks: boolean | null = null

function canPerf(): boolean {
  if (perfWorks === null) {
    const r = spawnSync('perf', ['stat', '-x', ',', '-e', EVENTS, '--', 'true'], { encoding: 'utf8' })
    perfWorks = r.status === 0 && /sys_enter_fsync/.test(r.stderr) && !/not supported|<not counted>/.test(r.stderr)
  }
  return perfWorks
}

/** lpr_spool_fsyncs_total now, or null when the build has no such counter. */
async function spoolFsyncs(url: string): Promise<number | null> {
  const text = await (await fetch(`${url}/metrics`)).text()
  const m = /^lpr_spool_fsyncs_total(?:\{\})? (\d+(?:\.\d+)?(?:e\+\d+)?)$/m.exec(text)
  return m ? Number(m[1]) : null
}

export interface FsyncWindow {
  /** Stops counting: the spool's fsyncs and the process's fsync system calls in the window (null: not known). */
  stop(): Promise<{ spool: number | null, process: number | null }>
}

export async function countFsyncs(url: string, pid: number): Promise<FsyncWindow> {
  const spool0 = await spoolFsyncs(url)
  let perf: ChildProcess | null = null
  let dir: string | null = null
  if (canPerf()) {
    dir = await mkdtemp(join(tmpdir(), 'lpr-bench-perf-'))
    perf = spawn('perf', ['stat', '-x', ',', '-o', join(dir, 'stat.csv'), '-e', EVENTS, '-p', String(pid)], { stdio: 'ignore' })
    // perf attaches asynchronously: give it a moment before the window starts.
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  return {
    async stop() {
      const spool1 = await spoolFsyncs(url)
      let process: number | null = null
      if (perf && dir) {
        const exited = new Promise<void>((resolve) => perf!.once('exit', () => resolve()))
        perf.kill('SIGINT')
        await exited
        const csv = await readFile(join(dir, 'stat.csv'), 'utf8').catch(() => '')
        let n = 0
        let seen = 0
        for (const line of csv.split('\n')) {
          const [count, , event] = line.split(',')
          if (!event?.includes('sys_enter_f')) continue
          if (!/^\d+$/.test(count ?? '')) continue
          n += Number(count)
          seen++
        }
        process = seen > 0 ? n : null
        await rm(dir, { recursive: true, force: true })
      }
      return { spool: spool0 === null || spool1 === null ? null : spool1 - spool0, process }
    }
  }
}
