export { intakePlugin, type IntakeOptions } from './plugin.js'
export { TokenSet, ensureTokens, destinationConf, parseTokens } from './auth.js'
export { ChallengeLog } from './small-bodies.js'
export type { CommitResult } from './logpush-route.js'
