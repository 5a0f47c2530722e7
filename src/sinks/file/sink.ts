import type { BatchFile, DeliveryReport, Sink } from '../sink.js'
import { RotatingFiles, type RotatingFilesOptions } from './rotating-files.js'

/** The embedded default destination: events appended to NDJSON files under DATA_DIR/events/<dataset>/. */
export class FileSink implements Sink {
  readonly name = 'file'
  private readonly files: RotatingFiles

  constructor (opts: Omit<RotatingFilesOptions, 'kind'>) {
    this.files = new RotatingFiles({ ...opts, kind: 'events' })
  }

  init(): Promise<void> {
    return this.files.init()
  }

  async deliver(batch: BatchFile): Promise<DeliveryReport> {
    await this.files.appendFile(batch.dataset, batch.eventsPath)
    return { delivered: batch.eventLines, duplicates: 0, rejected: [] }
  }

  close(): Promise<void> {
    return this.files.close()
  }
}
