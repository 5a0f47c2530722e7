// Bucket sources in CONFIG_FILE (`sources:`): where Logpush jobs write objects that this service
// should read. A list, because one service may read several buckets, prefixes and datasets at once.
// Secrets never sit in the file: a source names the environment variables that hold its keys, or
// leaves them out and gets the standard AWS chain (AWS_* variables, shared files, instance roles).
import { ConfigInvalid } from '../errors.js'

export interface BucketSourceConfig {
  /** Names the source in logs, /health, /metrics and its progress record (DATA_DIR/sources/<name>). */
  readonly name: string
  readonly bucket: string
  /** Key prefix with {DATE}, which stands for the UTC day as YYYYMMDD (what Logpush writes). */
  readonly prefix: string
  readonly dataset: string
  /** S3-compatible endpoint (R2: https://<account_id>.r2.cloudflarestorage.com); AWS when absent. */
  readonly endpoint?: string
  readonly region: string
  /** Path-style URLs (endpoint/bucket/key) instead of virtual-hosted (bucket.endpoint/key). */
  readonly forcePathStyle: boolean
  readonly accessKeyIdEnv?: string
  readonly secretAccessKeyEnv?: string
  readonly sessionTokenEnv?: string
  /** Seconds between two listings of the open date prefixes. */
  readonly pollSeconds: number
  /** On the very first start (no progress record yet), how many days before today are read too. */
  readonly startLookbackDays: number
  /** A date prefix is listed until this many hours after its UTC day ended; then it is closed and its progress rows pruned. */
  readonly closeAfterHours: number
  /** Objects read at the same time. */
  readonly concurrency: number
  /** Attempts for an object the bucket fails for a passing reason (5xx, network) before it is given up and reported; throttling, permissions and our own trouble pause the source instead and never count. */
  readonly maxAttempts: number
}

const ENV_NAME = { type: 'string', pattern: '^[A-Za-z_][A-Za-z0-9_]*$' }

export const bucketSourceSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['name', 'bucket', 'prefix', 'dataset'],
  properties: {
    name: { type: 'string', pattern: '^[a-z0-9][a-z0-9_-]{0,63}$' },
    bucket: { type: 'string', minLength: 1 },
    prefix: { type: 'string', pattern: '\\{DATE\\}' },
    dataset: { type: 'string', pattern: '^[a-z0-9_]+$' },
    endpoint: { type: 'string', pattern: '^https?://' },
    region: { type: 'string', minLength: 1 },
    forcePathStyle: { type: 'boolean' },
    accessKeyIdEnv: ENV_NAME,
    secretAccessKeyEnv: ENV_NAME,
    sessionTokenEnv: ENV_NAME,
    pollSeconds: { type: 'integer', minimum: 1 },
    startLookbackDays: { type: 'integer', minimum: 0, maximum: 365 },
    closeAfterHours: { type: 'integer', minimum: 1 },
    concurrency: { type: 'integer', minimum: 1, maximum: 64 },
    maxAttempts: { type: 'integer', minimum: 1 }
  }
} as const

export const bucketSourceDefaults = {
  region: 'us-east-1',
  forcePathStyle: false,
  pollSeconds: 60,
  startLookbackDays: 1,
  closeAfterHours: 24,
  concurrency: 4,
  maxAttempts: 5
} as const

/** Applies the defaults and the checks a schema cannot express. */
export function normalizeSources(raw: ReadonlyArray<Partial<BucketSourceConfig>>): BucketSourceConfig[] {
  const seen = new Set<string>()
  return raw.map((r) => {
    const s = { ...bucketSourceDefaults, ...r } as BucketSourceConfig
    if (seen.has(s.name)) throw new ConfigInvalid(`CONFIG_FILE sources: the name "${s.name}" is used twice`)
    seen.add(s.name)
    if (s.prefix.split('{DATE}').length !== 2) throw new ConfigInvalid(`CONFIG_FILE sources.${s.name}.prefix must hold {DATE} exactly once`)
    if ((s.accessKeyIdEnv === undefined) !== (s.secretAccessKeyEnv === undefined)) {
      throw new ConfigInvalid(`CONFIG_FILE sources.${s.name}: accessKeyIdEnv and secretAccessKeyEnv go together (or leave both out for the standard AWS chain)`)
    }
    return s
  })
}
