// Whether the watchdog is asked for, without loading it: the watchdog brings Cloudflare's SDK,
// which app.ts loads only then.
import type { Config } from '../config/index.js'

export const list = (s: string): string[] => s.split(',').map((x) => x.trim()).filter((x) => x !== '')

/** Any of its settings given: the watchdog is wanted, or its configuration is half done (an error at start). */
export function watchdogConfigured(config: Config): boolean {
  return config.watchdogApiToken.trim() !== '' || list(config.watchdogZones).length > 0 || list(config.watchdogAccounts).length > 0
}
