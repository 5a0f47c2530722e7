// The status room's one door: the operator's HTML page at GET /.
export { statusPlugin, type StatusOptions, type SinkState } from './plugin.js'
export { RecentDeadLetters, type RecentDeadLetter } from './dead-letters.js'
export { StatusAccess } from './session.js'
export { escapeHtml, html } from './html.js'
