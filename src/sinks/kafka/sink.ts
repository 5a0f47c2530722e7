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
import { Admin, ConfigResourceTypes, Producer, type MessageToProduce, type SASLOptions } from '@platformatic/kafka'
import type { Logger } from 'pino'
import { LineRejectCode, SinkStopCode } from '../../errors.js'
import { eventTime } from '../event-time.js'
import { DeliveryStopped, type DeliveryBatch, type DeliveryResult, type Progress, type Rejection, type Sink, type StoppedState } from '../sink.js'
import type { Compression } from './codecs.js'
import { certificateRefusal, errorTypes, verdictOf } from './classify.js'

/** A record before its topic is set. */
type Message = Omit<MessageToProduce<Buffer, Buffer, string, string>, 'topic'> & { value: Buffer, headers: Record<string, string> }
type KafkaProducer = Producer<Buffer, Buffer, string, string>

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
  private readonly connection: Record<string, unknown>
  private producer: KafkaProducer | null = null
  /** Topics seen to exist, with their max.message.bytes when the broker told it (DescribeConfigs may be denied by ACLs). */
  private readonly knownTopics = new Map<string, number | undefined>()
  private stopped: StoppedState | null = null

  constructor (private readonly opts: KafkaSinkOptions) {
    const sasl: SASLOptions | undefined = opts.sasl === 'none'
      ? undefined
      : { mechanism: opts.sasl === 'plain' ? 'PLAIN' : opts.sasl === 'scram-sha-256' ? 'SCRAM-SHA-256' : 'SCRAM-SHA-512', username: opts.username, password: opts.password }
    this.connection = {
      clientId: opts.clientId,
      bootstrapBrokers: [...opts.brokers],
      ...(opts.tls ? { tls: { rejectUnauthorized: opts.tlsVerify, ...(opts.caFile ? { ca: [readFileSync(opts.caFile, 'utf8')] } : {}) } } : {}),
      ...(sasl ? { sasl } : {}),
      requestTimeout: opts.requestTimeoutMs,
      connectTimeout: Math.min(opts.requestTimeoutMs, 10_000),
      // A few quick retries inside the client for a leader moving; longer outages are the spool's
      // (it retries the batch with backoff and shows it in /health).
      retries: 3,
      retryDelay: 500,
      // Never create a topic on a produce or a metadata request: a typo would create topics.
      autocreateTopics: false
    }
  }

  async init (): Promise<void> {}

  private getProducer (): KafkaProducer {
    this.producer ??= new Producer<Buffer, Buffer, string, string>({
      ...this.connection as { clientId: string, bootstrapBrokers: string[] },
      idempotent: true,
      acks: -1,
      compression: this.opts.compression,
      // Header keys and values are strings; keys and values stay the Buffers we give.
      serializers: { headerKey: (k) => k === undefined ? undefined : Buffer.from(k), headerValue: (v) => v === undefined ? undefined : Buffer.from(v) }
    })
    return this.producer
  }

  private async dropProducer (): Promise<void> {
    const p = this.producer
    this.producer = null
    await p?.close(true).catch(() => {})
  }

  /** `{dataset}` is the dataset's name, `{tenant}` the tenant of a routed batch (routing, src/shaping/route.ts), `default` without one. */
  topicOf (dataset: string, tenant?: string): string {
    return (this.opts.topics?.get(dataset) ?? this.opts.topic).replaceAll('{dataset}', dataset).replaceAll('{tenant}', tenant ?? 'default')
  }

  async deliver (batch: DeliveryBatch, progress: Progress, signal?: AbortSignal): Promise<DeliveryResult> {
    const topic = this.topicOf(batch.dataset, batch.route?.tenant)
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
    for await (const { raw, stored } of records_(batch)) {
      if (raw.length === 0) { pos++; continue }
      const message = this.message(raw, stored, batch, field)
      const size = recordBytes(message)
      // Checkpoints up to the line before this one: it goes into the next send.
      if (records.length > 0 && bytes + size > sendBytes) await flush()
      // Kept until the send: the line as received, never a view into the spool's read buffer
      // (valid only until the next payload): the value is that copy; a shaped line's stored line is
      // its own Buffer already (records_).
      records.push({ message, raw: stored === raw ? message.value : stored })
      bytes += size
      pos++
    }
    if (records.length > 0) await flush()
    return { ...report, rejected: [] }
  }

  /** `raw` is the line to write (shaped, if shaping applies); `stored` the line as received, which the key hashes. */
  private message (raw: Buffer, stored: Buffer, batch: DeliveryBatch, timeField: string): Message {
    // The value is a copy: the payload may be a view into a read buffer the spool reuses.
    const value = Buffer.from(raw)
    const needRecord = timeField !== '' || (this.opts.key !== 'hash' && this.opts.key !== 'none')
    const line = needRecord ? value.toString('utf8') : ''
    const record = needRecord ? JSON.parse(line) as Record<string, unknown> : {}
    let key: string | undefined
    // The hash of the line as received: a replay under other shaping keeps the key consumers and
    // compacted topics drop re-sends by.
    if (this.opts.key === 'hash') key = createHash('sha256').update(stored).digest('base64url')
    else if (this.opts.key !== 'none') {
      const v = record[this.opts.key]
      key = v === undefined || v === null ? undefined : typeof v === 'string' ? v : JSON.stringify(v)
    }
    const headers: Record<string, string> = { dataset: batch.dataset }
    const time = timeField ? eventTime(line, record, timeField) : undefined
    if (time) headers.event_time = time
    if (batch.digest) headers.batch_digest = batch.digest
    return { ...(key === undefined ? {} : { key: Buffer.from(key) }), value, headers }
  }

  /** A topic that does not exist stops delivery (auto-creation is off: a typo would otherwise create topics). */
  private async ensureTopic (topic: string): Promise<void> {
    if (this.knownTopics.has(topic)) return
    const admin = new Admin({ ...this.connection as { clientId: string, bootstrapBrokers: string[] }, retries: 2 })
    try {
      await admin.metadata({ topics: [topic], autocreateTopics: false, forceUpdate: true })
      this.knownTopics.set(topic, await maxMessageBytes(admin, topic))
      this.stopped = null
    } catch (err) {
      throw this.classified(err, topic)
    } finally {
      await admin.close().catch(() => {})
    }
  }

  /** Sends `records` with acks=all; halves a send the broker finds too large, down to one record, which is dead-lettered. */
  private async send (topic: string, dataset: string, records: Array<{ message: Message, raw: Buffer }>, rejected: Rejection[], report: { delivered: number }): Promise<void> {
    if (records.length === 0) return
    try {
      await this.getProducer().send({ messages: records.map((r) => ({ ...r.message, topic })) })
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
    const types = errorTypes(err)
    const verdict = verdictOf(types)
    if (verdict === 'topic') return this.stop(SinkStopCode.kafkaTopic, `Kafka has no topic ${topic} (and does not create topics on a produce): create it, or set KAFKA_TOPIC`)
    if (verdict === 'auth') return this.stop(SinkStopCode.kafkaAuth, `Kafka refused our credentials or their ACLs for topic ${topic} (${describe(err)}): check KAFKA_SASL_MECHANISM, KAFKA_USERNAME, KAFKA_PASSWORD and the ACLs (WRITE and DESCRIBE on the topic, IDEMPOTENT_WRITE on the cluster)`)
    if (verdict === 'tls') return this.stop(SinkStopCode.kafkaTls, `Kafka's TLS certificate was refused (${certificateRefusal(types)}; ${describe(err)}): KAFKA_CA_FILE must hold the CA that signed the brokers' certificates (empty for publicly trusted ones), and KAFKA_BROKERS name the hosts the certificates are for`)
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

const EMPTY = Buffer.alloc(0)

/**
 * Every line of the batch as bytes, an empty one where a line is not delivered (blank, dropped by
 * shaping, another tenant's), so positions count every line. Unshaped batches are read as the
 * spool's bytes; shaped and routed ones by their lines(), with the stored line each came from.
 */
async function * records_ (batch: DeliveryBatch): AsyncGenerator<{ raw: Buffer, stored: Buffer }> {
  if (!batch.originalOf) {
    for await (const raw of batch.payloads()) yield { raw, stored: raw }
    return
  }
  for await (const line of batch.lines()) {
    if (line.length === 0) { yield { raw: EMPTY, stored: EMPTY }; continue }
    const raw = Buffer.from(line)
    const original = batch.originalOf(line)
    yield { raw, stored: original === line ? raw : Buffer.from(original) }
  }
}

function recordBytes (m: Message): number {
  let n = 32 + m.value.length + (m.key ? m.key.length : 0)
  for (const [k, v] of Object.entries(m.headers)) n += 8 + k.length + Buffer.byteLength(String(v))
  return n
}

/** The topic's max.message.bytes (its own or the broker's default), or undefined when it cannot be read. */
async function maxMessageBytes (admin: Admin, topic: string): Promise<number | undefined> {
  try {
    const res = await admin.describeConfigs({ includeSynonyms: false, resources: [{ resourceType: ConfigResourceTypes.TOPIC, resourceName: topic, configurationKeys: ['max.message.bytes'] }] })
    const value = Number(res[0]?.configs.find((e) => e.name === 'max.message.bytes')?.value)
    return Number.isSafeInteger(value) && value > 0 ? value : undefined
  } catch {
    return undefined
  }
}

function describe (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}
