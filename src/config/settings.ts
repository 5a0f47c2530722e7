// Every setting the service reads, in one table: its environment variable, type, default and
// unit. load.ts validates the environment against it, docs/configuration.md's table is checked against it.
export interface SettingDef {
  readonly env: string
  readonly type: 'string' | 'integer' | 'boolean'
  readonly default?: string | number | boolean
  readonly minimum?: number
  readonly maximum?: number
  readonly enum?: readonly string[]
  readonly pattern?: string
  readonly secret?: boolean
  readonly description: string
}

const KiB = 1024
const MiB = 1024 * KiB
const GiB = 1024 * MiB

// Elasticsearch and OpenSearch name their data streams the same way, so their namespaces share one rule.
function dataStreamNamespace<E extends string>(env: E) {
  return {
    env,
    type: 'string',
    default: 'default',
    pattern: '^[a-z0-9_]{1,100}$',
    description: 'Data stream namespace: events go to logs-cloudflare.<dataset>-<namespace>'
  } as const
}

/** A retention such as 30d or 12h; empty: none. */
const RETENTION = '^([1-9][0-9]*(d|h|m|s))?$'

export const settings = {
  configFile: {
    env: 'CONFIG_FILE',
    type: 'string',
    default: '',
    description: 'Optional JSON or YAML file: per-dataset destinations, namespace, Splunk index/sourcetype, and any setting (the environment wins)'
  },
  port: { env: 'PORT', type: 'integer', default: 8080, minimum: 0, description: 'TCP port to listen on' },
  host: { env: 'HOST', type: 'string', default: '0.0.0.0', description: 'Address to bind' },
  adminPort: {
    env: 'ADMIN_PORT',
    type: 'integer',
    default: 8081,
    minimum: 0,
    description: 'TCP port of the admin listener: the status page (GET /), GET /metrics and GET /logpush/challenges (and /health again)'
  },
  adminHost: { env: 'ADMIN_HOST', type: 'string', default: '127.0.0.1', description: 'Address the admin listener binds; the default keeps it on this machine' },
  adminOnIntake: {
    env: 'ADMIN_ON_INTAKE',
    type: 'boolean',
    default: false,
    description: 'true: no admin listener; the status page, /metrics and /logpush/challenges are served on the intake listener (PORT), as before the admin listener existed. Less safe: whoever reaches the intake port reaches them'
  },
  dataDir: { env: 'DATA_DIR', type: 'string', default: './data', description: 'Where tokens, events, dead letters and staging files live' },
  schemasDir: {
    env: 'SCHEMAS_DIR',
    type: 'string',
    default: '',
    description: 'Directory of the dataset schemas (<dataset>.json); empty: schemas/ of this installation'
  },
  publicUrl: {
    env: 'PUBLIC_URL',
    type: 'string',
    default: 'https://logs.example.com',
    description: 'Base URL Logpush reaches this service at; used to print ready-to-paste destination_conf values and by the job watchdog to tell this service\'s jobs'
  },
  tlsCertFile: {
    env: 'TLS_CERT_FILE',
    type: 'string',
    default: '',
    description: 'PEM certificate chain; with TLS_KEY_FILE the service serves HTTPS with HTTP/2 and HTTP/1.1 itself (reloaded on SIGHUP)'
  },
  tlsKeyFile: { env: 'TLS_KEY_FILE', type: 'string', default: '', description: 'PEM private key for TLS_CERT_FILE' },
  keepAliveTimeoutMs: {
    env: 'KEEP_ALIVE_TIMEOUT_MS',
    type: 'integer',
    default: 75_000,
    minimum: 1000,
    description: 'Idle keep-alive time, ms; keep it above your load balancer\'s idle timeout (ALB: 60 s) so it never reuses a closed connection'
  },
  tokens: {
    env: 'LOGPUSH_TOKENS',
    type: 'string',
    default: '',
    secret: true,
    description: 'Comma-separated shared secrets; several at once allow rotation. Empty: generate one into DATA_DIR/token on first start'
  },
  authHeader: {
    env: 'AUTH_HEADER',
    type: 'string',
    default: '',
    description: 'Extra header name whose whole value is a token (e.g. X-Logpush-Secret); "Authorization: Bearer <token>" and "Authorization: Splunk <token>" always work'
  },
  metricsToken: {
    env: 'METRICS_TOKEN',
    type: 'string',
    default: '',
    secret: true,
    description: 'When set, GET /metrics needs "Authorization: Bearer <this>"; unset, /metrics is open like /health'
  },
  statusToken: {
    env: 'STATUS_TOKEN',
    type: 'string',
    default: '',
    secret: true,
    description: 'The token that opens the status page (GET /); unset: any of LOGPUSH_TOKENS. METRICS_TOKEN never opens it'
  },
  statusCookieSecure: {
    env: 'STATUS_COOKIE_SECURE',
    type: 'string',
    default: 'auto',
    enum: ['auto', 'always'],
    description: 'The status page\'s session cookie is Secure: auto, when the listener itself serves TLS; always, e.g. behind a proxy that ends TLS. X-Forwarded-Proto is never trusted'
  },
  logLevel: { env: 'LOG_LEVEL', type: 'string', default: 'info', enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], description: 'pino log level' },
  maxBodyBytes: { env: 'MAX_BODY_BYTES', type: 'integer', default: 512 * MiB, minimum: 1, description: 'Largest request body on the wire (compressed), bytes' },
  maxInflatedBytes: {
    env: 'MAX_INFLATED_BYTES',
    type: 'integer',
    default: GiB + 64 * MiB,
    minimum: 1,
    description: 'Largest decompressed body, bytes (Logpush max_upload_bytes goes up to 1e9); guards against decompression bombs'
  },
  maxLineBytes: { env: 'MAX_LINE_BYTES', type: 'integer', default: MiB, minimum: 1024, description: 'Longest NDJSON line, bytes' },
  parseWorkers: {
    env: 'PARSE_WORKERS',
    type: 'integer',
    default: -1,
    minimum: -1,
    description: 'Worker threads that split, parse and validate batches: -1 one per CPU core, 0 none (all on the main thread)'
  },
  smallBodyBytes: {
    env: 'SMALL_BODY_BYTES',
    type: 'integer',
    default: 4 * KiB,
    minimum: 64,
    description: 'Bodies up to this size are checked for the Logpush validation upload and ownership-challenge tokens'
  },
  challengesKept: { env: 'CHALLENGES_KEPT', type: 'integer', default: 10, minimum: 0, description: 'How many ownership-challenge bodies GET /logpush/challenges keeps' },
  driftFieldsMax: {
    env: 'DRIFT_FIELDS_MAX',
    type: 'integer',
    default: 200,
    minimum: 0,
    description: 'Distinct unknown field names counted per dataset before the rest are counted as "_other"'
  },
  driftFieldNameMaxChars: {
    env: 'DRIFT_FIELD_NAME_MAX_CHARS',
    type: 'integer',
    default: 128,
    minimum: 1,
    description: 'Unknown field names longer than this are counted as "_other" (names come from the sender and are shown in /health and /metrics)'
  },
  maxLineDepth: {
    env: 'MAX_LINE_DEPTH',
    type: 'integer',
    default: 32,
    minimum: 1,
    description: 'Lines whose objects and arrays nest deeper than this are dead-lettered (Cloudflare records nest two or three levels)'
  },
  lineValidator: {
    env: 'LINE_VALIDATOR',
    type: 'string',
    default: 'fast',
    enum: ['ajv', 'fast'],
    description: 'How lines are checked against their schema: fast checks the text in one pass with a validator generated from the schema, without building the record (rejected lines are worded by the reference); ajv parses each line and checks the object (the reference). Same verdicts and reason codes either way'
  },
  lineBufferBudgetBytes: {
    env: 'LINE_BUFFER_BUDGET_BYTES',
    type: 'integer',
    default: 64 * MiB,
    minimum: 1,
    description: 'Memory all requests together may hold for lines not yet ended by a newline; past it a request gets 503 + Retry-After (at least MAX_LINE_BYTES is used)'
  },
  eventsRotateBytes: { env: 'EVENTS_ROTATE_BYTES', type: 'integer', default: 256 * MiB, minimum: 1, description: 'File sink: rotate the events file past this size, bytes' },
  eventsRotateSeconds: { env: 'EVENTS_ROTATE_SECONDS', type: 'integer', default: 3600, minimum: 1, description: 'File sink: rotate the events file after this age, seconds' },
  eventsGzipRotated: { env: 'EVENTS_GZIP_ROTATED', type: 'boolean', default: true, description: 'File sink: gzip rotated events files' },
  shutdownGraceMs: {
    env: 'SHUTDOWN_GRACE_MS',
    type: 'integer',
    default: 30_000,
    minimum: 0,
    // Node's timers fire at once past 2^31-1 ms; an hour is more than any balancer or pod needs.
    maximum: 3_600_000,
    description: 'On SIGTERM, how long in-flight requests may take before connections are cut, ms (at most an hour)'
  },
  shutdownHealthDelayMs: {
    env: 'SHUTDOWN_HEALTH_DELAY_MS',
    type: 'integer',
    default: 5000,
    minimum: 0,
    // Node's timers fire at once past 2^31-1 ms; an hour is more than any balancer or pod needs.
    maximum: 3_600_000,
    description: 'On SIGTERM, how long /health answers 503 while uploads are still served, before the listener closes (more than a balancer\'s fall x inter), ms (at most an hour)'
  },
  requestTimeoutMs: {
    env: 'REQUEST_TIMEOUT_MS',
    type: 'integer',
    default: 300_000,
    minimum: 0,
    description: 'Longest a whole request may take (a 1 GB upload on a slow link needs minutes), ms'
  },
  spoolHighWatermarkBytes: {
    env: 'SPOOL_HIGH_WATERMARK_BYTES',
    type: 'integer',
    default: 4 * GiB,
    minimum: 1,
    description: 'Undelivered spool bytes above which new batches get 503 + Retry-After'
  },
  spoolLowWatermarkBytes: {
    env: 'SPOOL_LOW_WATERMARK_BYTES',
    type: 'integer',
    default: 3 * GiB,
    minimum: 0,
    description: 'Once refusing, batches are accepted again when the spool drains below this, bytes'
  },
  spoolCheckpointIntervalMs: {
    env: 'SPOOL_CHECKPOINT_INTERVAL_MS',
    type: 'integer',
    default: 1000,
    minimum: 0,
    maximum: 60_000,
    description: 'Longest a destination that takes a replay without duplicates (files, Elasticsearch, OpenSearch) waits for its checkpoint to be written, with others in one group; a crash replays at most this much to it, ms (0: each written at once)'
  },
  spoolGroupCommitWaitMs: {
    env: 'SPOOL_GROUP_COMMIT_WAIT_MS',
    type: 'integer',
    default: 10,
    minimum: 0,
    maximum: 1000,
    description: 'Longest a group commit waits for batches whose staging fsync is under way, so that they share its directory fsync; adds at most this to a batch\'s answer, ms (0: never waits)'
  },
  spoolMinFreeBytes: {
    env: 'SPOOL_MIN_FREE_BYTES',
    type: 'integer',
    default: GiB,
    minimum: 0,
    description: 'New batches get 503 + Retry-After while the data directory\'s disk has less free space than this, bytes'
  },
  dedupeWindowSeconds: {
    env: 'DEDUPE_WINDOW_SECONDS',
    type: 'integer',
    default: 86_400,
    minimum: 0,
    description: 'How long a byte-identical re-send of an accepted batch is recognised and not stored again, seconds'
  },
  dedupeMaxEntries: {
    env: 'DEDUPE_MAX_ENTRIES',
    type: 'integer',
    default: 6_000_000,
    minimum: 1000,
    description: 'Most batches the re-send index keeps (about 27 bytes of memory each at most); with more within DEDUPE_WINDOW_SECONDS, only the newest are recognised'
  },
  deliveryRetryMaxMs: {
    env: 'DELIVERY_RETRY_MAX_MS',
    type: 'integer',
    default: 30_000,
    minimum: 10,
    description: 'Longest wait between two attempts to deliver to a destination that fails (backoff doubles up to this), ms'
  },
  sinks: {
    env: 'SINKS',
    type: 'string',
    default: 'file',
    pattern: '^(file|elasticsearch|splunk|opensearch|kafka|discard)(,(file|elasticsearch|splunk|opensearch|kafka|discard))*$',
    description: 'Comma-separated destinations: file, elasticsearch, splunk, opensearch, kafka, discard (reads and drops; for benchmarks)'
  },
  elasticsearchUrl: { env: 'ELASTICSEARCH_URL', type: 'string', default: 'http://127.0.0.1:9200', description: 'Elasticsearch endpoint (8.x or 9.x), with SINKS=elasticsearch' },
  elasticsearchApiKey: { env: 'ELASTICSEARCH_API_KEY', type: 'string', default: '', secret: true, description: 'Elasticsearch API key (the encoded form); wins over username/password' },
  elasticsearchUsername: { env: 'ELASTICSEARCH_USERNAME', type: 'string', default: '', description: 'Elasticsearch basic-auth user' },
  elasticsearchPassword: { env: 'ELASTICSEARCH_PASSWORD', type: 'string', default: '', secret: true, description: 'Elasticsearch basic-auth password' },
  elasticsearchCaFile: { env: 'ELASTICSEARCH_CA_FILE', type: 'string', default: '', description: 'PEM file of the CA that signed the Elasticsearch certificate' },
  elasticsearchTlsVerify: { env: 'ELASTICSEARCH_TLS_VERIFY', type: 'boolean', default: true, description: 'Verify the Elasticsearch certificate (false only for tests)' },
  elasticsearchNamespace: dataStreamNamespace('ELASTICSEARCH_NAMESPACE'),
  elasticsearchBulkBytes: { env: 'ELASTICSEARCH_BULK_BYTES', type: 'integer', default: 5 * MiB, minimum: 1024, description: 'Size of one _bulk request body, bytes' },
  elasticsearchBulkConcurrency: { env: 'ELASTICSEARCH_BULK_CONCURRENCY', type: 'integer', default: 2, minimum: 1, description: '_bulk requests in flight per batch' },
  elasticsearchRetryMs: {
    env: 'ELASTICSEARCH_RETRY_MS',
    type: 'integer',
    default: 20_000,
    minimum: 0,
    description: 'How long one delivery keeps retrying 429, 5xx and connection errors before it gives up and the spool retries it later, ms'
  },
  elasticsearchRequestTimeoutMs: { env: 'ELASTICSEARCH_REQUEST_TIMEOUT_MS', type: 'integer', default: 30_000, minimum: 1, description: 'Timeout of one Elasticsearch request, ms' },
  elasticsearchIndexMode: {
    env: 'ELASTICSEARCH_INDEX_MODE',
    type: 'string',
    default: 'standard',
    enum: ['standard', 'logsdb'],
    description: 'index.mode of the data streams: standard, or logsdb (sorted by time, smaller on disk); set explicitly, as Elasticsearch 9 defaults logs-*-* to logsdb'
  },
  elasticsearchSourceMode: {
    env: 'ELASTICSEARCH_SOURCE_MODE',
    type: 'string',
    default: 'stored',
    enum: ['stored', 'synthetic'],
    description: 'index.mapping.source.mode: stored keeps each line exactly as sent; synthetic rebuilds _source from indexed values (smaller; needs an Enterprise licence; numbers, order and arrays change)'
  },
  elasticsearchFormat: {
    env: 'ELASTICSEARCH_FORMAT',
    type: 'string',
    default: 'ecs',
    enum: ['ecs', 'elastic-integration'],
    description: 'ecs: our documents (ECS fields + the line) in logs-cloudflare.<dataset>-<namespace>; elastic-integration: {@timestamp, message} in Elastic\'s logs-cloudflare_logpush.<stream>-<namespace> for the datasets its integration covers'
  },
  elasticsearchDataRetention: {
    env: 'ELASTICSEARCH_DATA_RETENTION',
    type: 'string',
    default: '',
    pattern: RETENTION,
    description: 'Data stream lifecycle retention of every logs-cloudflare.* stream (e.g. 30d, 12h); empty: kept until you delete them'
  },
  opensearchUrl: { env: 'OPENSEARCH_URL', type: 'string', default: 'http://127.0.0.1:9200', description: 'OpenSearch endpoint (2.x or 3.x, or an Amazon OpenSearch Service / Serverless endpoint), with SINKS=opensearch' },
  opensearchAuth: { env: 'OPENSEARCH_AUTH', type: 'string', default: 'none', enum: ['none', 'basic', 'aws-sigv4'], description: 'none, basic (OPENSEARCH_USERNAME/PASSWORD) or aws-sigv4 (Amazon OpenSearch Service or Serverless, credentials from the AWS SDK\'s standard chain)' },
  opensearchUsername: { env: 'OPENSEARCH_USERNAME', type: 'string', default: '', description: 'OpenSearch basic-auth user' },
  opensearchPassword: { env: 'OPENSEARCH_PASSWORD', type: 'string', default: '', secret: true, description: 'OpenSearch basic-auth password' },
  opensearchCaFile: { env: 'OPENSEARCH_CA_FILE', type: 'string', default: '', description: 'PEM file of the CA that signed the OpenSearch certificate' },
  opensearchTlsVerify: { env: 'OPENSEARCH_TLS_VERIFY', type: 'boolean', default: true, description: 'Verify the OpenSearch certificate (false only for tests)' },
  opensearchAwsService: { env: 'OPENSEARCH_AWS_SERVICE', type: 'string', default: 'es', enum: ['es', 'aoss'], description: 'With OPENSEARCH_AUTH=aws-sigv4: es (Amazon OpenSearch Service) or aoss (OpenSearch Serverless: no _id, no ISM)' },
  opensearchAwsRegion: { env: 'OPENSEARCH_AWS_REGION', type: 'string', default: '', description: 'With OPENSEARCH_AUTH=aws-sigv4: the domain\'s or collection\'s region; empty: AWS_REGION' },
  opensearchNamespace: dataStreamNamespace('OPENSEARCH_NAMESPACE'),
  opensearchBulkBytes: { env: 'OPENSEARCH_BULK_BYTES', type: 'integer', default: 5 * MiB, minimum: 1024, description: 'Size of one _bulk request body, bytes (Amazon OpenSearch Service takes 10 MiB on the smallest instances)' },
  opensearchBulkConcurrency: { env: 'OPENSEARCH_BULK_CONCURRENCY', type: 'integer', default: 2, minimum: 1, description: '_bulk requests in flight per batch' },
  opensearchRetryMs: { env: 'OPENSEARCH_RETRY_MS', type: 'integer', default: 20_000, minimum: 0, description: 'How long one delivery keeps retrying 429/5xx and connection errors before the spool retries it later, ms' },
  opensearchRequestTimeoutMs: { env: 'OPENSEARCH_REQUEST_TIMEOUT_MS', type: 'integer', default: 30_000, minimum: 1, description: 'Timeout of one OpenSearch request, ms' },
  opensearchDataRetention: {
    env: 'OPENSEARCH_DATA_RETENTION',
    type: 'string',
    default: '',
    pattern: RETENTION,
    description: 'ISM: delete a backing index this long after its rollover (e.g. 30d); empty: kept until you delete it'
  },
  kafkaBrokers: { env: 'KAFKA_BROKERS', type: 'string', default: '127.0.0.1:9092', pattern: '^[^,\\s]+(,[^,\\s]+)*$', description: 'Comma-separated bootstrap brokers (host:port), with SINKS=kafka' },
  kafkaClientId: { env: 'KAFKA_CLIENT_ID', type: 'string', default: 'logpush-receiver', description: 'Kafka client.id (quotas, broker logs)' },
  kafkaTopic: { env: 'KAFKA_TOPIC', type: 'string', default: 'cloudflare.{dataset}', pattern: '^[A-Za-z0-9._{}-]+$', description: 'Topic of a dataset; {dataset} is replaced by its name. Topics must exist: the producer never creates one' },
  kafkaKey: { env: 'KAFKA_KEY', type: 'string', default: 'hash', pattern: '^[A-Za-z_][A-Za-z0-9_]*$', description: 'Record key: hash (SHA-256 of the line, base64url), none, or a top-level field of the line (e.g. ZoneName)' },
  kafkaCompression: { env: 'KAFKA_COMPRESSION', type: 'string', default: 'zstd', enum: ['none', 'gzip', 'lz4', 'zstd'], description: 'Compression of record batches' },
  kafkaSaslMechanism: { env: 'KAFKA_SASL_MECHANISM', type: 'string', default: 'none', enum: ['none', 'plain', 'scram-sha-256', 'scram-sha-512'], description: 'SASL mechanism; use TLS with plain' },
  kafkaUsername: { env: 'KAFKA_USERNAME', type: 'string', default: '', description: 'SASL user' },
  kafkaPassword: { env: 'KAFKA_PASSWORD', type: 'string', default: '', secret: true, description: 'SASL password' },
  kafkaTls: { env: 'KAFKA_TLS', type: 'boolean', default: false, description: 'Connect to the brokers over TLS' },
  kafkaCaFile: { env: 'KAFKA_CA_FILE', type: 'string', default: '', description: 'PEM file of the CA that signed the brokers\' certificates' },
  kafkaTlsVerify: { env: 'KAFKA_TLS_VERIFY', type: 'boolean', default: true, description: 'Verify the brokers\' certificates (false only for tests)' },
  kafkaBatchBytes: { env: 'KAFKA_BATCH_BYTES', type: 'integer', default: 512 * KiB, minimum: 1024, description: 'Uncompressed bytes of the records of one produce request; the checkpoint moves after each' },
  kafkaRequestTimeoutMs: { env: 'KAFKA_REQUEST_TIMEOUT_MS', type: 'integer', default: 30_000, minimum: 1, description: 'Timeout of one produce request (acks=all), ms' },
  splunkHecUrl: { env: 'SPLUNK_HEC_URL', type: 'string', default: 'https://127.0.0.1:8088', description: 'Splunk HEC base URL, with SINKS=splunk (/services/collector/event is appended)' },
  splunkHecToken: { env: 'SPLUNK_HEC_TOKEN', type: 'string', default: '', secret: true, description: 'HEC token, sent as "Authorization: Splunk <token>"' },
  splunkHecCaFile: { env: 'SPLUNK_HEC_CA_FILE', type: 'string', default: '', description: 'PEM file of the CA that signed the HEC certificate' },
  splunkHecTlsVerify: { env: 'SPLUNK_HEC_TLS_VERIFY', type: 'boolean', default: true, description: 'Verify the HEC certificate (false accepts self-signed ones, like Logpush\'s insecure-skip-verify)' },
  splunkHecSourcetype: {
    env: 'SPLUNK_HEC_SOURCETYPE',
    type: 'string',
    default: '',
    description: 'sourcetype of every event; empty: per dataset from schemas/splunk/sourcetypes.json (cloudflare:json, cloudflare:access for access_requests)'
  },
  splunkHecSource: { env: 'SPLUNK_HEC_SOURCE', type: 'string', default: '', description: 'source of every event; empty: cloudflare:<dataset>' },
  splunkHecHost: { env: 'SPLUNK_HEC_HOST', type: 'string', default: '', description: 'host of every event; empty: not sent (HEC uses its own)' },
  splunkHecIndex: { env: 'SPLUNK_HEC_INDEX', type: 'string', default: '', description: 'Index for every dataset without its own in CONFIG_FILE; empty: the token\'s default index' },
  splunkHecBatchBytes: { env: 'SPLUNK_HEC_BATCH_BYTES', type: 'integer', default: 1_000_000, minimum: 1024, description: 'Size of one HEC request before gzip, bytes' },
  splunkHecGzip: { env: 'SPLUNK_HEC_GZIP', type: 'boolean', default: true, description: 'gzip HEC request bodies' },
  splunkHecRetryMs: { env: 'SPLUNK_HEC_RETRY_MS', type: 'integer', default: 20_000, minimum: 0, description: 'How long one delivery keeps retrying 503/500/429/408 and connection errors before the spool retries it later, ms' },
  splunkHecRequestTimeoutMs: { env: 'SPLUNK_HEC_REQUEST_TIMEOUT_MS', type: 'integer', default: 30_000, minimum: 1, description: 'Timeout of one HEC request, ms' },
  splunkHecAck: { env: 'SPLUNK_HEC_ACK', type: 'boolean', default: false, description: 'Indexer acknowledgement (Splunk Enterprise, token with useACK): a batch counts as delivered when its ackIds read true' },
  splunkHecAckPollMs: { env: 'SPLUNK_HEC_ACK_POLL_MS', type: 'integer', default: 10_000, minimum: 10, description: 'How often to poll /services/collector/ack, ms' },
  splunkHecAckTimeoutMs: { env: 'SPLUNK_HEC_ACK_TIMEOUT_MS', type: 'integer', default: 300_000, minimum: 100, description: 'Resend a request whose ackId is not true after this long, ms (Splunk suggests about 5 minutes)' },
  cloudflareApiUrl: {
    env: 'CLOUDFLARE_API_URL',
    type: 'string',
    default: 'https://api.cloudflare.com/client/v4',
    pattern: '^https?://',
    description: 'Cloudflare API v4 base URL, for the pull collectors, the watchdog and the CLI (change it only for a proxy or a test double)'
  },
  sourceRetryAfterMaxSeconds: {
    env: 'SOURCE_RETRY_AFTER_MAX_SECONDS',
    type: 'integer',
    default: 300,
    minimum: 1,
    description: 'Longest Retry-After a bucket source or pull collector obeys; a longer one (or a peer sending a day) waits this long, then tries again, seconds'
  },
  watchdogApiToken: {
    env: 'WATCHDOG_API_TOKEN',
    type: 'string',
    default: '',
    secret: true,
    description: 'Cloudflare API token of the job watchdog (Logs Write, which Cloudflare needs even to list jobs, and Analytics Read on the watched zones/accounts); with WATCHDOG_ZONES or WATCHDOG_ACCOUNTS it turns the watchdog on'
  },
  watchdogZones: {
    env: 'WATCHDOG_ZONES',
    type: 'string',
    default: '',
    pattern: '^([0-9a-f]{32}(,[0-9a-f]{32})*)?$',
    description: 'Comma-separated zone ids whose Logpush jobs the watchdog watches'
  },
  watchdogAccounts: {
    env: 'WATCHDOG_ACCOUNTS',
    type: 'string',
    default: '',
    pattern: '^([0-9a-f]{32}(,[0-9a-f]{32})*)?$',
    description: 'Comma-separated account ids whose (account-level) Logpush jobs the watchdog watches'
  },
  watchdogAllJobs: {
    env: 'WATCHDOG_ALL_JOBS',
    type: 'boolean',
    default: false,
    description: 'Watch every Logpush job of those zones/accounts; false: only jobs whose destination_conf points at PUBLIC_URL (/logpush/ or the HEC path)'
  },
  watchdogPollSeconds: {
    env: 'WATCHDOG_POLL_SECONDS',
    type: 'integer',
    default: 300,
    minimum: 1,
    description: 'How often the watchdog reads jobs and upload health, seconds (GraphQL allows 300 queries per 5 minutes per user)'
  },
  watchdogWindowSeconds: {
    env: 'WATCHDOG_WINDOW_SECONDS',
    type: 'integer',
    default: 900,
    minimum: 60,
    description: 'Upload health read per poll: the last this many seconds of logpushHealthAdaptiveGroups'
  },
  watchdogFailingSeconds: {
    env: 'WATCHDOG_FAILING_SECONDS',
    type: 'integer',
    default: 3600,
    minimum: 0,
    description: 'A job failing this long is logged as an error and lpr_logpush_job_failing becomes 1 (Cloudflare disables a job after about 24 h of failures)'
  },
  watchdogLagSeconds: {
    env: 'WATCHDOG_LAG_SECONDS',
    type: 'integer',
    default: 3600,
    minimum: 60,
    description: 'An enabled job whose last_complete is older than this is lagging: logged as an error, lpr_logpush_job_lagging becomes 1'
  },
  statusDeadLettersKept: {
    env: 'STATUS_DEAD_LETTERS_KEPT',
    type: 'integer',
    default: 10,
    minimum: 0,
    description: 'Latest dead letters per dataset the status page (GET /) keeps in memory, raw lines cut to 300 characters; 0 shows none'
  }
} as const satisfies Record<string, SettingDef>

export type SettingKey = keyof typeof settings
