/** A batch of valid lines, staged in a file as NDJSON, ready to be delivered. */
export interface BatchFile {
  readonly dataset: string
  readonly eventsPath: string
  readonly eventLines: number
}

/** One line a sink could not take for good (a mapping error): it goes to the dead-letter store. */
export interface Rejection {
  readonly dataset: string
  readonly sink: string
  readonly code: string
  readonly reason: string
  readonly raw: string
}

export interface DeliveryReport {
  readonly delivered: number
  readonly duplicates: number
  readonly rejected: readonly Rejection[]
}

/** Every destination behind one interface: deliver a whole staged batch, or throw. */
export interface Sink {
  readonly name: string
  init(): Promise<void>
  deliver(batch: BatchFile, signal?: AbortSignal): Promise<DeliveryReport>
  close(): Promise<void>
}
