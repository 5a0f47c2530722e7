export { loadConfig, describeConfig, startupErrorLine, type Config } from './load.js'
export { settings, type SettingDef } from './settings.js'
export type { DatasetRoute, ConfigFile } from './file.js'
export type { BucketSourceConfig } from './sources.js'
