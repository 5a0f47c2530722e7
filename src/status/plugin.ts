// GET /: the operator's status page. It shows what senders sent (dead letters carry client IPs,
// cookies, headers), so every byte of data is behind a token (STATUS_TOKEN, or a Logpush token;
// never METRICS_TOKEN, which a scraper holds), even where /metrics is open; without one the answer
// is a sign-in form and nothing else. It reads the same sources /health does: Stats,
// the readiness check, the spool and the destinations' status.
import { statfs } from 'node:fs/promises'
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import type { Readiness, Stats } from '../observability/index.js'
import { CSS, JS } from './assets.js'
import type { RecentDeadLetters } from './dead-letters.js'
import { RateHistory, SAMPLE_MS } from './history.js'
import { loginPage, statusPage, type DatasetView, type SinkView, type StatusView } from './page.js'
import { COOKIE, SESSION_SECONDS, type StatusAccess } from './session.js'

export interface SinkState {
  readonly name: string
  readonly failing: boolean
  /** The forwarder's status(), as /health shows it. */
  readonly status: Readonly<Record<string, unknown>>
}

export interface StatusOptions {
  readonly version: string
  readonly stats: Stats
  readonly readiness: () => Promise<Readiness>
  readonly access: StatusAccess
  /** Which tokens open the page, as the sign-in form names them (STATUS_TOKEN, one of LOGPUSH_TOKENS). */
  readonly tokenName: string
  /**
   * Whether the session cookie gets Secure: 'auto' when this listener serves TLS itself, 'always'
   * (behind a proxy that ends TLS). Never from X-Forwarded-Proto: any client can send it.
   */
  readonly cookieSecure: 'auto' | 'always'
  /** Every dataset with the API scopes its Logpush jobs are created at. */
  readonly datasets: ReadonlyArray<{ readonly name: string, readonly scopes: ReadonlyArray<'zone' | 'account'> }>
  /** destination_conf for a dataset, with a placeholder where the token goes. */
  readonly destinationConf: (dataset: string) => string
  readonly deadLetters: RecentDeadLetters
  readonly spool: () => Omit<StatusView['spool'], 'freeBytes'>
  readonly sinks: () => readonly SinkState[]
  /** The spool's directory, for the disk's free space. */
  readonly dataDir: string
}

// The page's own sources only: no inline script or style, so an injected tag could not run even
// if escaping ever failed.
const HEADERS = {
  'content-security-policy': 'default-src \'none\'; script-src \'self\'; style-src \'self\'; img-src \'self\'; connect-src \'self\'; form-action \'self\'; frame-ancestors \'none\'; base-uri \'none\'',
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store'
}

const KNOWN_STATS = new Set(['batches', 'accepted', 'rejected', 'pings', 'challenges', 'duplicates', 'rejectedByCode', 'unknownFields'])
const num = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) ? v : 0)
const top = (m: ReadonlyMap<string, number> | Record<string, unknown>, n: number): Array<[string, number]> =>
  (m instanceof Map ? [...m] : Object.entries(m).map(([k, v]): [string, number] => [k, num(v)])).sort((a, b) => b[1] - a[1]).slice(0, n)

export async function statusPlugin(app: FastifyInstance, opts: StatusOptions): Promise<void> {
  const history = new RateHistory()
  const totals = (): Map<string, number> => {
    const out = new Map<string, number>()
    for (const [name, d] of opts.stats.datasets()) out.set(`dataset:${name}`, d.accepted + d.rejected)
    for (const [sink, bySet] of opts.stats.sinks) out.set(`sink:${sink}`, [...bySet.values()].reduce((a, c) => a + c.delivered, 0))
    return out
  }
  const timer = setInterval(() => history.sample(totals()), SAMPLE_MS)
  timer.unref()
  app.addHook('onClose', async function stopSampling() { clearInterval(timer) })

  async function view(): Promise<StatusView> {
    const now = Date.now()
    const t = totals()
    const r = await opts.readiness()
    let freeBytes: number | null = null
    try {
      const s = await statfs(opts.dataDir)
      freeBytes = s.bavail * s.bsize
    } catch { /* shown as unknown */ }
    const datasets = opts.datasets.map(({ name, scopes }): DatasetView => {
      const d = opts.stats.dataset(name)
      // Counters other rooms add to DatasetStats (type drift, ...) show up without a change here.
      const json = d.toJSON()
      const otherCounters = Object.entries(json)
        .filter(([k, v]) => !KNOWN_STATS.has(k) && v !== null && typeof v === 'object' && !Array.isArray(v))
        .map(([k, v]): [string, Array<[string, number]>] => [k, top(v as Record<string, unknown>, 20)])
      return {
        name,
        scopes,
        batches: d.batches,
        accepted: d.accepted,
        rejected: d.rejected,
        rejectedByCode: top(d.rejectedByCode, 10),
        unknownFields: top(d.unknownFields, 20),
        otherCounters,
        lastBatchAt: d.lastBatchAt,
        series: history.series(`dataset:${name}`, t.get(`dataset:${name}`) ?? 0),
        destinationConf: opts.destinationConf(name),
        deadLetters: opts.deadLetters.latest(name)
      }
    })
    const sinks = opts.sinks().map(({ name, failing, status }): SinkView => ({
      name,
      failing,
      settingUp: status.setUp === false,
      failingForSeconds: num(status.failingForSeconds),
      lastError: typeof status.lastError === 'string' ? status.lastError : null,
      pendingLines: num(status.pendingLines),
      pendingBytes: num(status.pendingBytes),
      oldestPendingAgeSeconds: num(status.oldestPendingAgeSeconds),
      delivered: t.get(`sink:${name}`) ?? 0,
      series: history.series(`sink:${name}`, t.get(`sink:${name}`) ?? 0),
      ...(typeof status.shaping === 'string' ? { shaping: shapingView(status.shaping, opts.stats.shapedTotals(name)) } : {})
    }))
    return {
      version: opts.version,
      now,
      uptimeSeconds: (now - opts.stats.startedAt) / 1000,
      windowMs: history.windowMs(now),
      ready: r.ready,
      reasons: r.reasons,
      datasets,
      sinks,
      spool: { ...opts.spool(), freeBytes }
    }
  }

  app.addHook('onSend', async function statusHeaders(_request, reply) { reply.headers(HEADERS) })
  // The sign-in form's body: small, and parsed here only (this plugin's scope).
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, function form(_req, body, done) {
    done(null, Object.fromEntries(new URLSearchParams(body as string)))
  })

  // request.protocol is the connection's own (fastify's trustProxy is off): no header changes it.
  const secure = (request: FastifyRequest): boolean => opts.cookieSecure === 'always' || request.protocol === 'https'
  const cookie = (request: FastifyRequest, value: string, maxAge: number): string =>
    `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${maxAge}${secure(request) ? '; Secure' : ''}`
  const signIn = (reply: FastifyReply, status: number, message: string | null): FastifyReply =>
    reply.code(status).type('text/html; charset=utf-8').send(loginPage(message, opts.tokenName))

  app.get('/', async function statusRoot(request, reply) {
    if (!opts.access.allows(request.headers)) return signIn(reply, 401, null)
    return reply.type('text/html; charset=utf-8').send(statusPage(await view()))
  })

  app.post('/status/login', async function statusLogin(request, reply) {
    const token = (request.body as Record<string, unknown> | undefined)?.token
    if (typeof token !== 'string' || !opts.access.tokenValid(token.trim())) {
      request.log.info('Status page sign-in with a token that is not configured.')
      return signIn(reply, 401, `That token is not ${opts.tokenName}.`)
    }
    return reply.code(303).header('set-cookie', cookie(request, opts.access.issue(token.trim()), SESSION_SECONDS)).header('location', '/').send()
  })

  app.post('/status/logout', async function statusLogout(request, reply) {
    return reply.code(303).header('set-cookie', cookie(request, '', 0)).header('location', '/').send()
  })

  app.get('/status/app.css', async function statusCss(_request, reply) {
    return reply.type('text/css; charset=utf-8').send(CSS)
  })
  app.get('/status/app.js', async function statusJs(_request, reply) {
    return reply.type('text/javascript; charset=utf-8').send(JS)
  })
}

/** A shaped destination's rules and counts, per outcome over its datasets and rules. */
function shapingView(rules: string, totals: Record<string, number>): NonNullable<SinkView['shaping']> {
  return { rules, passed: totals.passed ?? 0, filtered: totals.filtered ?? 0, sampled: totals.sampled ?? 0 }
}
