// The intake room's one door: HTTP in. It knows fastify and the Logpush wire format, and
// nothing of the destinations behind the commit function it is given.
import type { FastifyInstance } from 'fastify'
import { checkToken, type TokenSet } from './auth.js'
import { logpushRoute, type LogpushRouteOptions } from './logpush-route.js'
import type { ChallengeLog } from './small-bodies.js'

export interface IntakeOptions extends LogpushRouteOptions {
  readonly tokens: TokenSet
  readonly authHeader: string
}

export async function intakePlugin(app: FastifyInstance, opts: IntakeOptions): Promise<void> {
  // Logpush's Content-Type is undocumented (text/plain has been seen, Elastic's 415 on it broke
  // setups): take every body, of any or no type, as a stream and read it ourselves.
  app.removeAllContentTypeParsers()
  app.addContentTypeParser('*', function passThrough(_req, payload, done) { done(null, payload) })

  // Before the body is read: an unauthenticated sender costs us no decompression.
  app.addHook('onRequest', async function authenticate(request) {
    checkToken(opts.tokens, request.headers, opts.authHeader)
  })

  logpushRoute(app, opts)
}

export interface ChallengesOptions {
  readonly tokens: TokenSet
  readonly authHeader: string
  readonly challenges: ChallengeLog
}

/**
 * GET /logpush/challenges: the ownership-challenge tokens intake kept, for whoever holds a Logpush
 * token. An operator's endpoint: served on the admin listener, apart from intake (ADMIN_ON_INTAKE).
 */
export async function challengesPlugin(app: FastifyInstance, opts: ChallengesOptions): Promise<void> {
  app.addHook('onRequest', async function authenticate(request) {
    checkToken(opts.tokens, request.headers, opts.authHeader)
  })
  app.get('/logpush/challenges', async function listChallenges() {
    return { challenges: opts.challenges.list() }
  })
}
