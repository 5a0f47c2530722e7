import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

// Compiled code runs from dist/src/, so the package root is two levels up.
export const packageRoot = fileURLToPath(new URL('../../', import.meta.url))
export const schemasDir = fileURLToPath(new URL('../../schemas/', import.meta.url))
export const version: string = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version
