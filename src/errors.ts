// The one error catalogue. Every code is stable (operators grep for it, Logpush shows the
// message in the job's error_message) and listed in docs/errors.md's table; a test keeps the two
// in step. Codes read LPR_ERR_<ROOM>_<WHAT>.
import createError from '@fastify/error'

export const IntakeTokenMissing = createError(
  'LPR_ERR_INTAKE_TOKEN_MISSING',
  'No token: send "Authorization: Bearer <token>" (in destination_conf: header_Authorization=Bearer%%20<token>)',
  401
)
export const IntakeTokenMalformed = createError('LPR_ERR_INTAKE_TOKEN_MALFORMED', 'The Authorization header is not "Splunk <token>" or "Bearer <token>"', 401)
export const IntakeTokenInvalid = createError('LPR_ERR_INTAKE_TOKEN_INVALID', 'The token is not one of the configured tokens', 401)
export const IntakeUnknownDataset = createError(
  'LPR_ERR_INTAKE_UNKNOWN_DATASET',
  'Unknown dataset "%s". Known datasets: %s',
  404
)
export const IntakeUnsupportedEncoding = createError(
  'LPR_ERR_INTAKE_UNSUPPORTED_ENCODING',
  'Content-Encoding "%s" is not supported: send gzip (what Logpush sends) or identity',
  415
)
export const IntakeBodyTooLarge = createError(
  'LPR_ERR_INTAKE_BODY_TOO_LARGE',
  'Request body exceeds %d bytes on the wire (MAX_BODY_BYTES); lower max_upload_bytes on the Logpush job',
  413
)
export const IntakeInflatedTooLarge = createError(
  'LPR_ERR_INTAKE_INFLATED_TOO_LARGE',
  'Decompressed body exceeds %d bytes (MAX_INFLATED_BYTES); lower max_upload_bytes on the Logpush job',
  413
)
export const IntakeBadGzip = createError('LPR_ERR_INTAKE_BAD_GZIP', 'Body is not valid gzip (corrupt or truncated): %s', 400)
export const IntakeNotReady = createError('LPR_ERR_INTAKE_NOT_READY', 'Not accepting batches now: %s', 503)
export const PipelineLineTooLong = createError(
  'LPR_ERR_PIPELINE_LINE_TOO_LONG',
  'A line exceeds %d bytes (MAX_LINE_BYTES); nothing of this batch was stored',
  413
)
export const PipelineNotNdjson = createError(
  'LPR_ERR_PIPELINE_NOT_NDJSON',
  'Body is not NDJSON (%s). Supported output_options: output_type "ndjson" with the default record_prefix/record_suffix/record_delimiter and no batch_prefix, batch_suffix or record_template; any field_names, timestamp_format, sample_rate and CVE-2021-44228 are fine',
  400
)
export const PipelineUnknownDataset = createError(
  'LPR_ERR_PIPELINE_UNKNOWN_DATASET',
  'Cannot tell which dataset the records are: add ?dataset=<name> to the URL (destination_conf)',
  400
)
export const PipelineLinesBusy = createError(
  'LPR_ERR_PIPELINE_LINES_BUSY',
  'Too many unfinished lines are held in memory right now (LINE_BUFFER_BUDGET_BYTES, %d bytes); nothing of this batch was stored, retry later',
  503
)
// A parse worker stopped (crashed, killed, out of memory) while checking this request's lines:
// nothing of the batch is stored, and the sender is asked to send it again.
export const PipelineWorkerGone = createError('LPR_ERR_PIPELINE_WORKER_GONE', 'A parse worker stopped while checking this batch (%s); nothing of it was stored, retry later', 503)
export const IntakeClientGone = createError('LPR_ERR_INTAKE_CLIENT_GONE', 'The client closed the connection or sent a broken body before the batch was complete', 400)
export const ConfigInvalid = createError('LPR_ERR_CONFIG_INVALID', 'Invalid configuration: %s', 500)
export const SpoolStateUnreadable = createError('LPR_ERR_SPOOL_STATE_UNREADABLE', 'Cannot read %s (%s); not starting rather than guessing: %s', 500)
export const DataDirInUse = createError('LPR_ERR_DATA_DIR_IN_USE', 'DATA_DIR %s', 500)
// A call on DATA_DIR's lock file failed (the name of the file only: never a local path).
export const DataDirLockFailed = createError('LPR_ERR_DATA_DIR_LOCK_FAILED', 'Cannot %s the lock file %s of DATA_DIR (%s)', 500)
export const SpoolDiskUnknown = createError('LPR_ERR_SPOOL_DISK_UNKNOWN', 'Cannot read the free space of %s (%s): the disk guard SPOOL_MIN_FREE_BYTES cannot work; fix the volume or set SPOOL_MIN_FREE_BYTES=0 to run without it', 500)
// Bucket sources: not answers (nobody is waiting), but the codes /health, /metrics and the log show.
export const SourceBadGzip = createError('LPR_ERR_SOURCE_BAD_GZIP', 'Object is not valid gzip (corrupt or truncated): %s', 422)
export const SourceInflatedTooLarge = createError('LPR_ERR_SOURCE_INFLATED_TOO_LARGE', 'Object decompresses to more than %d bytes (MAX_INFLATED_BYTES)', 422)
export const SourceAccessDenied = createError('LPR_ERR_SOURCE_ACCESS_DENIED', 'The bucket refused %s: %s. The reader needs s3:ListBucket on the bucket and s3:GetObject on the prefix', 403)
export const SourceThrottled = createError('LPR_ERR_SOURCE_THROTTLED', 'The bucket asked us to slow down (%s); backing off', 503)
export const SourceUnavailable = createError('LPR_ERR_SOURCE_UNAVAILABLE', 'Could not %s: %s', 502)
export const SourceObjectGone = createError('LPR_ERR_SOURCE_OBJECT_GONE', 'Could not %s: the object was deleted after it was listed', 404)
// Local trouble (an errno of our own disk, not the bucket's answer): the source pauses, nothing is charged to the object.
export const SourceLocalTrouble = createError('LPR_ERR_SOURCE_LOCAL', 'Local trouble while reading (%s): %s; the source pauses and reads the object again', 503)
export const SourceStateUnreadable = createError(
  'LPR_ERR_SOURCE_STATE_UNREADABLE',
  'Cannot read the progress record %s (%s); source "%s" stopped rather than guess which days were read. Fix the disk and restart; only if the record is lost for good, move it away: the source then starts again at startLookbackDays (objects of the days between are not read)',
  500
)
// npm run replay: its ledger (DATA_DIR/replay/<dataset>) cannot be read; replaying anyway would send every line again.
export const ReplayLedgerUnreadable = createError('LPR_ERR_REPLAY_LEDGER_UNREADABLE', 'Cannot read the replay ledger %s (%s); not replaying rather than sending every line again. Fix the disk; only if the ledger is lost for good, move the directory away (lines replayed before are then sent again and stored twice outside the dedupe window)', 500)
// Cloudflare's API (collectors, watchdog, CLI): the API's own messages, verbatim.
export const CloudflareApiFailed = createError('LPR_ERR_CLOUDFLARE_API', 'Cloudflare API answered HTTP %d: %s', 502)
// Pull collectors (src/sources/cloudflare): shown in /health, /metrics and the log.
export const CollectorAuthFailed = createError('LPR_ERR_COLLECTOR_AUTH', 'Cloudflare refused the credentials of collector "%s"; it stopped until restarted: %s', 403)
export const CollectorWindowIncomplete = createError('LPR_ERR_COLLECTOR_WINDOW_INCOMPLETE', 'The window %s was not read completely (%s); it is read again later', 502)
export const CollectorCursorUnreadable = createError('LPR_ERR_COLLECTOR_CURSOR_UNREADABLE', 'Cannot read the cursor %s (%s); not starting the collector rather than guessing', 500)
// Logpull (GET /zones/{id}/logs/received): a window that could not be read whole is failed, never half-stored.
export const SourceLogpullStream = createError('LPR_ERR_SOURCE_LOGPULL_STREAM', 'Logpull for zone %s, window %s, did not complete: %s; the window is discarded and read again', 502)
export const SourceLogpullWindow = createError('LPR_ERR_SOURCE_LOGPULL_WINDOW', 'Logpull for zone %s refused window %s: %s', 400)
export const SourceLogpullRetention = createError('LPR_ERR_SOURCE_LOGPULL_RETENTION', 'Logpull for zone %s: log retention is off (%s). Turn it on: POST /zones/%s/logs/control/retention/flag {"flag":true}', 400)

/** Codes of lines that are dead-lettered, not answered: one bad line never fails its batch. */
export const LineRejectCode = {
  notJson: 'LPR_ERR_PIPELINE_LINE_NOT_JSON',
  notObject: 'LPR_ERR_PIPELINE_LINE_NOT_OBJECT',
  schema: 'LPR_ERR_PIPELINE_LINE_SCHEMA',
  notUtf8: 'LPR_ERR_PIPELINE_LINE_ENCODING',
  duplicateKey: 'LPR_ERR_PIPELINE_LINE_DUPLICATE_KEY',
  tooDeep: 'LPR_ERR_PIPELINE_LINE_TOO_DEEP',
  envelope: 'LPR_ERR_PIPELINE_HEC_ENVELOPE',
  mapping: 'LPR_ERR_SINK_ELASTICSEARCH_MAPPING',
  splunk: 'LPR_ERR_SINK_SPLUNK_EVENT',
  elasticsearchTooLarge: 'LPR_ERR_SINK_ELASTICSEARCH_TOO_LARGE',
  elasticsearchUnparsable: 'LPR_ERR_SINK_ELASTICSEARCH_UNPARSABLE',
  splunkTooLarge: 'LPR_ERR_SINK_SPLUNK_TOO_LARGE',
  opensearchMapping: 'LPR_ERR_SINK_OPENSEARCH_MAPPING',
  opensearchTooLarge: 'LPR_ERR_SINK_OPENSEARCH_TOO_LARGE',
  kafkaTooLarge: 'LPR_ERR_SINK_KAFKA_TOO_LARGE',
  shaping: 'LPR_ERR_SHAPING_LINE'
} as const
export type LineRejectCode = (typeof LineRejectCode)[keyof typeof LineRejectCode]

/**
 * Codes of a destination that stopped delivering (DeliveryStopped): shown in /health and the
 * lpr_sink_stopped metric; the lines wait in the spool until an operator fixes the cause.
 */
export const SinkStopCode = {
  elasticsearchCredentials: 'LPR_ERR_SINK_ELASTICSEARCH_CREDENTIALS',
  elasticsearchCluster: 'LPR_ERR_SINK_ELASTICSEARCH_CLUSTER',
  splunkConfig: 'LPR_ERR_SINK_SPLUNK_CONFIG',
  opensearchCredentials: 'LPR_ERR_SINK_OPENSEARCH_CREDENTIALS',
  opensearchCluster: 'LPR_ERR_SINK_OPENSEARCH_CLUSTER',
  kafkaTopic: 'LPR_ERR_SINK_KAFKA_TOPIC',
  kafkaAuth: 'LPR_ERR_SINK_KAFKA_AUTH',
  kafkaTls: 'LPR_ERR_SINK_KAFKA_TLS'
} as const

/** Every code this service can emit, for the docs/errors.md consistency test. */
export const allCodes: readonly string[] = [
  ...[
    IntakeTokenMissing, IntakeTokenMalformed, IntakeTokenInvalid, IntakeUnknownDataset, IntakeUnsupportedEncoding, IntakeBodyTooLarge,
    IntakeInflatedTooLarge, IntakeBadGzip, IntakeNotReady, PipelineLineTooLong, PipelineNotNdjson,
    PipelineUnknownDataset, PipelineLinesBusy, PipelineWorkerGone, IntakeClientGone, ConfigInvalid, SpoolStateUnreadable, DataDirInUse, DataDirLockFailed, SpoolDiskUnknown,
    SourceBadGzip, SourceInflatedTooLarge, SourceAccessDenied, SourceThrottled, SourceUnavailable, SourceObjectGone, SourceLocalTrouble, SourceStateUnreadable, ReplayLedgerUnreadable, CloudflareApiFailed,
    CollectorAuthFailed, CollectorWindowIncomplete, CollectorCursorUnreadable,
    SourceLogpullStream, SourceLogpullWindow, SourceLogpullRetention
  ].map((E) => new E().code),
  ...Object.values(LineRejectCode),
  ...Object.values(SinkStopCode)
]
