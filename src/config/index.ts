export { loadConfig, describeConfig, type Config } from './load.js'
export { settings, type SettingDef } from './settings.js'
