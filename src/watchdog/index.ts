// The job watchdog room: its only door. app.ts builds it from the configuration.
import type { Logger } from 'pino'
import { settings, type Config } from '../config/index.js'
import { ConfigInvalid } from '../errors.js'
import { Watchdog } from './watchdog.js'
import { list, watchdogConfigured } from './configured.js'

export { Watchdog, redactConf, type WatchdogOptions, type WatchdogStatus, type WatchdogGauges, type WatchedJob } from './watchdog.js'
export { pointsAtService } from './destination.js'
export { judge, type JobState, type AlertState, type Judged } from './judge.js'
export { readUploadHealth, healthQuery, summarise, type Scope, type UploadHealth } from './upload-health.js'

/**
 * The watchdog the settings ask for, or null when it is off (no token and no zones/accounts).
 * Half a configuration (a token without anything to watch, or ids without a token) is an error at
 * start, not a watchdog that silently does nothing.
 */
export function createWatchdog(config: Config, log: Logger): Watchdog | null {
  const zones = list(config.watchdogZones)
  const accounts = list(config.watchdogAccounts)
  const token = config.watchdogApiToken.trim()
  if (!watchdogConfigured(config)) return null
  if (token === '') throw new ConfigInvalid('WATCHDOG_ZONES/WATCHDOG_ACCOUNTS are set: the watchdog needs WATCHDOG_API_TOKEN too (Logs Write, which Cloudflare needs to list jobs, and Analytics Read)')
  if (zones.length === 0 && accounts.length === 0) throw new ConfigInvalid('WATCHDOG_API_TOKEN is set: name the zones (WATCHDOG_ZONES) and/or accounts (WATCHDOG_ACCOUNTS) whose Logpush jobs to watch')
  // This service's jobs are found by PUBLIC_URL: with the placeholder none is, and /health would
  // report every job fine while watching nothing.
  if (!config.watchdogAllJobs && config.publicUrl === settings.publicUrl.default) {
    throw new ConfigInvalid(`the watchdog finds the jobs that push here by PUBLIC_URL: set it to the address your jobs push to (the default ${settings.publicUrl.default} is a placeholder), or WATCHDOG_ALL_JOBS=true`)
  }
  return new Watchdog({
    baseUrl: config.cloudflareApiUrl,
    credentials: { kind: 'token', token },
    zones,
    accounts,
    publicUrl: config.publicUrl,
    allJobs: config.watchdogAllJobs,
    pollMs: config.watchdogPollSeconds * 1000,
    windowMs: config.watchdogWindowSeconds * 1000,
    failingMs: config.watchdogFailingSeconds * 1000,
    lagMs: config.watchdogLagSeconds * 1000,
    log: log.child({ room: 'watchdog' })
  })
}
