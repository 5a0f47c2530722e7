// The process: configuration, listen, signals. Everything else is built by app.ts.
import { buildApp } from './app.js'
import { describeConfig, loadConfig, startupErrorLine, type Config } from './config/index.js'
import { destinationConfHints } from './intake/index.js'
import { createLogger } from './observability/index.js'
import { shutdown } from './shutdown.js'

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    process.stderr.write(startupErrorLine(err) + '\n')
    process.exit(1)
  }
  const log = createLogger(config.logLevel)
  log.info({ config: describeConfig(config) }, 'Starting.')
  // The listener answers before buildApp resolves (the lock records its URL, other parts may still
  // finish starting): a SIGTERM in that moment must not kill the process with Node's default
  // action. A signal that comes during the start waits for it, then stops as usual.
  let early: string | null = null
  const onSignal = (signal: string) => (): void => { if (ready) ready(signal); else early ??= signal }
  let ready: ((signal: string) => void) | null = null
  process.on('SIGTERM', onSignal('SIGTERM'))
  process.on('SIGINT', onSignal('SIGINT'))
  // Listening (PORT, and ADMIN_PORT unless ADMIN_ON_INTAKE) once this resolves.
  const built = await buildApp(config, log)

  if (built.generatedToken) {
    // Shown once, on the terminal, not through the logger: logs never carry tokens.
    const lines = [
      '',
      `No LOGPUSH_TOKENS set: generated a token and stored it in ${built.tokenPath} (mode 0600).`,
      'Paste one of these as destination_conf of a Logpush job (PUBLIC_URL sets the host):',
      ...destinationConfHints(config.publicUrl, [...built.datasets].map(([d, { schema }]) => [d, schema['x-scope']] as const), built.generatedToken),
      ''
    ]
    process.stderr.write(lines.join('\n') + '\n')
  }

  let stopping = false
  const stop = (signal: string): void => {
    if (stopping) {
      log.warn({ signal }, 'Second signal: exiting now.')
      process.exit(1)
    }
    stopping = true
    log.info({ signal }, 'Stop requested.')
    // SIGTERM comes from an orchestrator or a balancer's host: /health turns 503 first and the
    // listener stays open while the balancer takes this replica out. Ctrl-C (SIGINT) is a person
    // at a terminal, with no balancer to wait for.
    const times = { healthDelayMs: signal === 'SIGTERM' ? config.shutdownHealthDelayMs : 0, graceMs: config.shutdownGraceMs }
    shutdown({
      beginShutdown: () => built.beginShutdown(),
      close: () => built.close(),
      cutConnections: () => built.app.server.closeAllConnections()
    }, times, log).then(
      () => { log.info('Stopped.'); process.exit(0) },
      (err: unknown) => { log.error({ err }, 'Unclean stop.'); process.exit(1) }
    )
  }
  // Certificates renew (certbot, cert-manager): SIGHUP picks up the new files without a restart.
  process.on('SIGHUP', () => {
    built.reloadTls().then(
      (on) => log.info(on ? 'TLS certificate reloaded.' : 'SIGHUP: TLS is off, nothing to reload.'),
      (err: unknown) => log.error({ err }, 'TLS reload failed; the previous certificate stays in use.')
    )
  })
  ready = stop
  if (early !== null) stop(early)
}

main().catch((err: unknown) => {
  process.stderr.write(startupErrorLine(err) + '\n')
  process.exit(1)
})
