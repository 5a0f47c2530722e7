// The disk guard: refuses batches while the data directory's disk is (nearly) full.
//
// Invariants
// - Free space is re-read after every group commit and on a timer, so that a burst of batches
//   stops at the SPOOL_MIN_FREE_BYTES reserve instead of filling the disk.
// - A write that failed with ENOSPC/EDQUOT refuses batches, even with no reserve, until
//   DISK_FULL_RECOVERY_BYTES more than the reserve are free.
// - Free space that cannot be read is estimated as the last reading less what was written since:
//   never "unknown, so unlimited".
import type { Logger } from 'pino'
import type { SpoolFs } from './fs.js'

// After a write failed with ENOSPC, batches are refused until this much more than
// SPOOL_MIN_FREE_BYTES is free again: accepting at the first free byte would fail the next write.
const DISK_FULL_RECOVERY_BYTES = 16 * 1024 * 1024

export function errorCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | null)?.code
  return typeof code === 'string' ? code : undefined
}

export class DiskGuard {
  private freeBytes = Infinity
  private diskFull = false
  private statfsFailing = false

  constructor (private readonly dir: string, private readonly minFreeBytes: number, private readonly fs: SpoolFs, private readonly log: Logger) {}

  /** Why the disk refuses batches now, or null. */
  refusal(): string | null {
    if (this.diskFull) return `the disk is full (a write failed with ENOSPC); accepting again once ${this.minFreeBytes + DISK_FULL_RECOVERY_BYTES} bytes are free`
    if (this.freeBytes < this.minFreeBytes) return `the disk is nearly full (${this.freeBytes} bytes free, SPOOL_MIN_FREE_BYTES=${this.minFreeBytes})`
    return null
  }

  async readFreeSpace(): Promise<void> {
    const s = await this.fs.statfs(this.dir)
    this.freeBytes = s.bavail * s.bsize
  }

  /** Reads the free space again; `writtenBytes` were committed since the last reading. */
  async refresh(writtenBytes = 0): Promise<void> {
    try {
      await this.readFreeSpace()
      if (this.statfsFailing) this.log.info('The free space of the data directory can be read again.')
      this.statfsFailing = false
    } catch (err) {
      this.freeBytes -= writtenBytes
      if (!this.statfsFailing) this.log.error({ err: { message: (err as Error).message, code: errorCode(err) }, estimatedFreeBytes: this.freeBytes }, 'Cannot read the free space of the data directory; estimating it from the bytes written.')
      this.statfsFailing = true
    }
    if (this.diskFull && this.freeBytes >= this.minFreeBytes + DISK_FULL_RECOVERY_BYTES) {
      this.diskFull = false
      this.log.info({ freeBytes: this.freeBytes }, 'Disk space free again: accepting batches.')
    }
  }

  noteWriteError(err: unknown): void {
    const code = errorCode(err)
    if ((code === 'ENOSPC' || code === 'EDQUOT') && !this.diskFull) {
      this.diskFull = true
      this.freeBytes = Math.min(this.freeBytes, 0)
      this.log.error({ code }, 'The disk is full: refusing batches with 503 until space is free.')
    }
  }
}
