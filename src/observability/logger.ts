import { pino, type Logger } from 'pino'

interface RequestLike {
  id?: unknown
  method?: string
  url?: string
  ip?: string
  headers?: Record<string, unknown>
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      // Tokens may arrive in headers and, through destination_conf's header_* parameters, in the
      // query string: neither is ever written to a log.
      redact: { paths: ['req.headers.authorization', 'headers.authorization', '*.token', 'token'], censor: '[redacted]' },
      serializers: {
        req: (req: RequestLike) => ({
          id: req.id,
          method: req.method,
          path: typeof req.url === 'string' ? req.url.split('?', 1)[0] : undefined,
          remoteAddress: req.ip,
          contentEncoding: req.headers?.['content-encoding'],
          contentLength: req.headers?.['content-length']
        }),
        err: pino.stdSerializers.err
      }
    },
    destination
  )
}

/** Shows enough of a secret-looking body to recognise it, never enough to use it. */
export function redactSecret(value: string): string {
  return value.length <= 12 ? '[redacted]' : `${value.slice(0, 6)}…[${value.length - 6} chars redacted]`
}
