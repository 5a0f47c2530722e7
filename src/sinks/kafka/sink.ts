// Delivers a staged batch to Kafka: one record per line, the value the line's bytes exactly as
// received, on the dataset's topic. The producer is idempotent with acks=all, and the spool
// checkpoint moves only once the broker acknowledged a send: at least once.
//
// After any failed send the producer is thrown away and the next attempt takes a new one (a new
// producer id): the records that failed may have been written without the answer reaching us,
// and a producer that sent different records under the sequence numbers the broker saw already
// would have them acknowledged as duplicates and dropped. With a new id they are written again
// instead: a broker restart can duplicate records (the key, by default the line's hash, lets
// consumers and compacted topics drop them), never lose one that was answered 200.
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import kafkajs, { type Message, type Producer, type SASLOptions } from 'kafkajs'
import type { Logger } from 'pino'
import { LineRejectCode, SinkStopCode } from '../../errors.js'
import { eventTime } from '../event-time.js'
import { DeliveryStopped, type DeliveryBatch, type DeliveryResult, type Progress, type Rejection, type Sink, type StoppedState } from '../sink.js'
import { compressionType, registerCodecs, type Compression } from './codecs.js'
import { errorTypes, verdictOf } from './classify.js'

const { Kafka, logLevel, Partitioners, ConfigResourceTypes } = kafkajs

/** Bytes of a record batch besides its records' values, keys and headers, and then some (v2 format: 61 + varints per record). */
const BATCH_OVERHEAD = 256

export interface KafkaSinkOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  /** The topic of a dataset: `{dataset}` is replaced by its name. */
  readonly topic: string
  /** Per-dataset topics (CONFIG_FILE); `topic` for the others. */
  readonly topics?: ReadonlyMap<string, string>
  /** `hash` (the line's SHA-256), `none`, or the name of a top-level field of the line. */
  readonly key: string
  readonly compression: Compression
  readonly sasl: 'none' | 'plain' | 'scram-sha-256' | 'scram-sha-512'
  readonly username: string
  readonly password: string
  readonly tls: boolean
  readonly caFile: string
  readonly tlsVerify: boolean
  /** Uncompressed bytes of the records of one send. */
  readonly batchBytes: number
  readonly requestTimeoutMs: number
  readonly eventTimeFields: ReadonlyMap<string, string>
  readonly log: Logger
}

export class KafkaSink implements Sink {
  readonly name = 'kafka'
  private readonly kafka: kafkajs.Kafka
  private producer: Promise<Producer> | null = null
  /** Topics seen to exist, with their max.message.bytes when the broker told it (DescribeConfigs may be denied by ACLs). */
  private readonly knownTopics = new Map<string, number | undefined>()
  private stopped: StoppedState | null = null

  constructor (private readonly opts: KafkaSinkOptions) {
    const sasl: SASLOptions | undefined = opts.sasl === 'none' ? undefined : { mechanism: opts.sasl, username: opts.username, password: opts.password } as SASLOptions
    this.kafka = new Kafka({
      clientId: opts.clientId,
      brokers: [...opts.brokers],
      ...(opts.tls ? { ssl: { rejectUnauthorized: opts.tlsVerify, ...(opts.caFile ? { ca: [readFileSync(opts.caFile, 'utf8')] } : {}) } } : {}),
      ...(sasl ? { sasl } : {}),
      requestTimeout: opts.requestTimeoutMs,
      connectionTimeout: Math.min(opts.requestTimeoutMs, 10_000),
      // A few quick retries inside the client for a leader moving; longer outages are the spool's
      // (it retries the batch with backoff and shows it in /health).
      retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 },
      logLevel: logLevel.NOTHING
    })
  }

  async init (): Promise<void> {
    await registerCodecs()
  }

  private getProducer (): Promise<Producer> {
    this.producer ??= (async () => {
      const p = this.kafka.producer({
        idempotent: true,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        createPartitioner: Partitioners.DefaultPartitioner,
        retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2_000 }
      })
      await p.connect()
      return p
    })()
    this.producer.catch(() => { this.producer = null })
    return this.producer
  }

  private async dropProducer (): Promise<void> {
    const p = this.producer
    this.producer = null
    await p?.then((x) => x.disconnect()).catch(() => {})
  }

  topicOf (dataset: string): string {
    return (this.opts.topics?.get(dataset) ?? this.opts.topic).replaceAll('{dataset}', dataset)
  }

  async deliver (batch: DeliveryBatch, progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const topic = this.topicOf(batch.dataset)
    await this.ensureTopic(topic)
    const field = this.opts.eventTimeFields.get(batch.dataset) ?? ''
    // A send's records go into one record batch per partition, each of which must be within the
    // topic's max.message.bytes: a send of no more than that many bytes always is (uncompressed).
    const limit = this.knownTopics.get(topic)
    const sendBytes = limit === undefined ? this.opts.batchBytes : Math.max(1, Math.min(this.opts.batchBytes, limit - BATCH_OVERHEAD))
    const report = { delivered: 0, duplicates: 0 }
    let records: Array<{ message: Message, raw: Buffer }> = []
    let bytes = 0
    let pos = batch.from
    const flush = async (): Promise<void> => {
      signal?.throwIfAborted()
      const rejected: Rejection[] = []
      // A record that may be over the limit by itself goes alone, so that a refusal is its own
      // and no other record is sent twice (a refused send may have been written to its other
      // partitions); compressed, the broker may still take it.
      const alone = limit === undefined ? [] : records.filter((r) => recordBytes(r.message) + BATCH_OVERHEAD > limit)
      await this.send(topic, batch.dataset, alone.length === 0 ? records : records.filter((r) => !alone.includes(r)), rejected, report)
      for (const r of alone) await this.send(topic, batch.dataset, [r], rejected, report)
      records = []
      bytes = 0
      await progress(pos, rejected)
    }
    for await (const raw of batch.payloads()) {
      if (raw.length === 0) { pos++; continue }
      const message = this.message(raw, batch, field)
      const size = recordBytes(message)
      // Checkpoints up to the line before this one: it goes into the next send.
      if (records.length > 0 && bytes + size > sendBytes) await flush()
      records.push({ message, raw })
      bytes += size
      pos++
    }
    if (records.length > 0) await flush()
    return { ...report, rejected: [] }
  }

  private message (raw: Buffer, batch: DeliveryBatch, timeField: string): Message {
    // The value is a copy: the payload may be a view into a read buffer the spool reuses.
    const value = Buffer.from(raw)
    const needRecord = timeField !== '' || (this.opts.key !== 'hash' && this.opts.key !== 'none')
    const line = needRecord ? value.toString('utf8') : ''
    const record = needRecord ? JSON.parse(line) as Record<string, unknown> : {}
    let key: string | null = null
    if (this.opts.key === 'hash') key = createHash('sha256').update(value).digest('base64url')
    else if (this.opts.key !== 'none') {
      const v = record[this.opts.key]
      key = v === undefined || v === null ? null : typeof v === 'string' ? v : JSON.stringify(v)
    }
    const headers: Record<string, string> = { dataset: batch.dataset }
    const time = timeField ? eventTime(line, record, timeField) : undefined
    if (time) headers.event_time = time
    if (batch.digest) headers.batch_digest = batch.digest
    return { key, value, headers }
  }

  /** A topic that does not exist stops delivery (auto-creation is off: a typo would otherwise create topics). */
  private async ensureTopic (topic: string): Promise<void> {
    if (this.knownTopics.has(topic)) return
    const admin = this.kafka.admin({ retry: { retries: 2 } })
    try {
      await admin.connect()
      await admin.fetchTopicMetadata({ topics: [topic] })
      this.knownTopics.set(topic, await maxMessageBytes(admin, topic))
      this.stopped = null
    } catch (err) {
      throw this.classified(err, topic)
    } finally {
      await admin.disconnect().catch(() => {})
    }
  }

  /** Sends `records` with acks=all; halves a send the broker finds too large, down to one record, which is dead-lettered. */
  private async send (topic: string, dataset: string, records: Array<{ message: Message, raw: Buffer }>, rejected: Rejection[], report: { delivered: number }): Promise<void> {
    if (records.length === 0) return
    try {
      const producer = await this.getProducer()
      await producer.send({ topic, acks: -1, compression: compressionType(this.opts.compression), timeout: this.opts.requestTimeoutMs, messages: records.map((r) => r.message) })
      report.delivered += records.length
      this.stopped = null
      return
    } catch (err) {
      await this.dropProducer()
      if (verdictOf(errorTypes(err)) !== 'too-large') throw this.classified(err, topic)
    }
    if (records.length === 1) {
      const r = records[0]!
      rejected.push({ dataset, sink: this.name, code: LineRejectCode.kafkaTooLarge, reason: `Kafka refused the ${r.raw.length}-byte record as MESSAGE_TOO_LARGE (over the topic's max.message.bytes or the broker's message.max.bytes)`, raw: r.raw.toString('utf8') })
      return
    }
    const half = Math.ceil(records.length / 2)
    await this.send(topic, dataset, records.slice(0, half), rejected, report)
    await this.send(topic, dataset, records.slice(half), rejected, report)
  }

  /** The error to throw: DeliveryStopped for what needs an operator, the error itself for what passes. */
  private classified (err: unknown, topic: string): Error {
    const verdict = verdictOf(errorTypes(err))
    if (verdict === 'topic') return this.stop(SinkStopCode.kafkaTopic, `Kafka has no topic ${topic} (and does not create topics on a produce): create it, or set KAFKA_TOPIC`)
    if (verdict === 'auth') return this.stop(SinkStopCode.kafkaAuth, `Kafka refused our credentials or their ACLs for topic ${topic} (${describe(err)}): check KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD and the ACLs (WRITE and DESCRIBE on the topic, IDEMPOTENT_WRITE on the cluster)`)
    return err instanceof Error ? err : new Error(String(err))
  }

  private stop (code: string, message: string): DeliveryStopped {
    if (this.stopped?.code !== code) this.stopped = { code, reason: message, since: new Date().toISOString() }
    else this.stopped = { ...this.stopped, reason: message }
    return new DeliveryStopped(code, message)
  }

  health (): Record<string, unknown> {
    return { stopped: this.stopped }
  }

  async close (): Promise<void> {
    await this.dropProducer()
  }
}

function recordBytes (m: Message): number {
  let n = 32 + (m.value as Buffer).length + (typeof m.key === 'string' ? Buffer.byteLength(m.key) : 0)
  for (const [k, v] of Object.entries(m.headers ?? {})) n += 8 + k.length + Buffer.byteLength(String(v))
  return n
}

/** The topic's max.message.bytes (its own or the broker's default), or undefined when it cannot be read. */
async function maxMessageBytes (admin: kafkajs.Admin, topic: string): Promise<number | undefined> {
  try {
    const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['max.message.bytes'] }] })
    const value = Number(res.resources[0]?.configEntries.find((e) => e.configName === 'max.message.bytes')?.configValue)
    return Number.isSafeInteger(value) && value > 0 ? value : undefined
  } catch {
    return undefined
  }
}

function describe (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
