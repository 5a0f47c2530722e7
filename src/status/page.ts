// The status page's markup: one server-rendered document, no external asset, no inline script or
// style (the Content-Security-Policy forbids both), every value escaped by html``.
import { html, type Html } from './html.js'
import type { RecentDeadLetter } from './dead-letters.js'
import { SAMPLE_MS, SAMPLES } from './history.js'

export interface DatasetView {
  readonly name: string
  readonly scopes: ReadonlyArray<'zone' | 'account'>
  readonly batches: number
  readonly accepted: number
  readonly rejected: number
  readonly rejectedByCode: ReadonlyArray<readonly [string, number]>
  readonly unknownFields: ReadonlyArray<readonly [string, number]>
  /** Other per-field counters Stats may carry (type drift, ...): name -> field -> count. */
  readonly otherCounters: ReadonlyArray<readonly [string, ReadonlyArray<readonly [string, number]>]>
  readonly lastBatchAt: number | null
  /** Lines (accepted + rejected) per sampling interval, oldest first. */
  readonly series: readonly number[]
  readonly destinationConf: string
  readonly deadLetters: readonly RecentDeadLetter[]
}

export interface SinkView {
  readonly name: string
  readonly failing: boolean
  /** Still setting itself up in the background (Elasticsearch's index templates). */
  readonly settingUp?: boolean
  readonly failingForSeconds: number
  readonly lastError: string | null
  readonly pendingLines: number
  readonly pendingBytes: number
  readonly oldestPendingAgeSeconds: number
  readonly delivered: number
  readonly series: readonly number[]
  /** The destination's shaping in one line (src/shaping), and its lines let through or kept back; absent without any. */
  readonly shaping?: { readonly rules: string, readonly passed: number, readonly filtered: number, readonly sampled: number }
}

export interface StatusView {
  readonly version: string
  readonly now: number
  readonly uptimeSeconds: number
  /** The time the rate series span, ms. */
  readonly windowMs: number
  readonly ready: boolean
  readonly reasons: readonly string[]
  readonly datasets: readonly DatasetView[]
  readonly sinks: readonly SinkView[]
  readonly spool: {
    readonly bytes: number
    readonly highWatermarkBytes: number
    readonly lowWatermarkBytes: number
    readonly minFreeBytes: number
    readonly refusal: string | null
    readonly freeBytes: number | null
    /** Damaged segments found since the start (src/spool/damage.ts): their bytes are in spool/damaged/. */
    readonly damaged: ReadonlyArray<{ readonly segment: string, readonly ranges: ReadonlyArray<{ readonly fromByte: number, readonly toByte: number }>, readonly linesLost: number | null, readonly committedLines: number | null, readonly keptAs: string | null }>
  }
}

const num = (n: number): string => Math.round(n).toLocaleString('en-US')

function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return `${i === 0 ? n : n.toFixed(1)} ${units[i]}`
}

function duration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds))
  if (s < 60) return `${s} s`
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`
  if (s < 86_400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`
  return `${Math.floor(s / 86_400)} d ${Math.floor((s % 86_400) / 3600)} h`
}

function ago(now: number, at: number | null): Html {
  if (at === null) return html`<span class="muted">never</span>`
  const iso = new Date(at).toISOString()
  return html`<time datetime="${iso}" title="${iso}">${duration((now - at) / 1000)} ago</time>`
}

/** What the series adds up to, per minute of the time it spans. */
const perMinute = (series: readonly number[], windowMs: number): number => series.reduce((a, b) => a + b, 0) / (windowMs / 60_000)

/** Bars, newest on the right; the numbers are in the label and the cell's text, the picture is extra. */
function chart(series: readonly number[], what: string): Html {
  const w = 3
  const h = 24
  const max = Math.max(1, ...series)
  const offset = SAMPLES - series.length
  const label = `${what} per ${SAMPLE_MS / 1000} s over the last ${(SAMPLES * SAMPLE_MS) / 60_000} minutes, highest ${num(max)}`
  return html`<svg class="chart" role="img" aria-label="${label}" viewBox="0 0 ${SAMPLES * w} ${h}" width="${SAMPLES * w}" height="${h}"><title>${label}</title>${series.map((v, i) => {
    const bh = v === 0 ? 0 : Math.max(1, Math.round((v / max) * h))
    return html`<rect x="${(offset + i) * w}" y="${h - bh}" width="${w - 1}" height="${bh}"></rect>`
  })}<line x1="0" y1="${h - 0.5}" x2="${SAMPLES * w}" y2="${h - 0.5}"></line></svg>`
}

const anchor = (dataset: string): string => `dl-${dataset}`

function datasetRow(d: DatasetView, now: number, windowMs: number): Html {
  const drift = d.unknownFields.reduce((a, [, n]) => a + n, 0)
  const other = d.otherCounters.filter(([, m]) => m.length > 0)
  return html`<tr>
<th scope="row">${d.name}</th>
<td class="n">${num(d.batches)}</td>
<td class="n">${num(d.accepted)}</td>
<td class="n">${d.rejected > 0 ? html`<a href="#${anchor(d.name)}" class="bad">${num(d.rejected)}</a>` : '0'}${d.rejectedByCode.length > 0 ? html`<ul class="codes">${d.rejectedByCode.map(([code, n]) => html`<li><code>${code}</code> ${num(n)}</li>`)}</ul>` : ''}</td>
<td>${chart(d.series, 'Lines received')} <span class="rate">${num(perMinute(d.series, windowMs))}/min</span></td>
<td>${ago(now, d.lastBatchAt)}</td>
<td>${drift === 0 && other.length === 0
    ? html`<span class="muted">none</span>`
    : html`<details><summary>${num(drift)} lines, ${num(d.unknownFields.length)} fields</summary><ul class="fields">${d.unknownFields.map(([f, n]) => html`<li><code>${f}</code> ${num(n)}</li>`)}</ul>${other.map(([name, m]) => html`<p>${name}</p><ul class="fields">${m.map(([f, n]) => html`<li><code>${f}</code> ${num(n)}</li>`)}</ul>`)}</details>`}</td>
</tr>`
}

function datasetsSection(v: StatusView): Html {
  // Active datasets in a table; the many a deployment never receives wait in one line below it.
  const active = v.datasets.filter((d) => d.batches > 0 || d.rejected > 0 || d.lastBatchAt !== null)
    .sort((a, b) => (b.lastBatchAt ?? 0) - (a.lastBatchAt ?? 0) || a.name.localeCompare(b.name))
  const idle = v.datasets.filter((d) => !active.includes(d))
  return html`<section aria-labelledby="h-datasets">
<h2 id="h-datasets">Datasets</h2>
${active.length === 0
    ? html`<p>No batch received yet. Point a Logpush job at this service (see <a href="#h-connect">Connect a Logpush job</a>).</p>`
    : html`<table class="data" id="datasets">
<caption>Since this process started. Rejected lines went to the dead-letter store.</caption>
<thead><tr><th scope="col">Dataset</th><th scope="col">Batches</th><th scope="col">Lines accepted</th><th scope="col">Lines rejected</th><th scope="col">Lines, last 5 min</th><th scope="col">Last batch</th><th scope="col">Unknown fields (drift)</th></tr></thead>
<tbody>${active.map((d) => datasetRow(d, v.now, v.windowMs))}</tbody>
</table>`}
${idle.length > 0 ? html`<details id="idle-datasets"><summary>${num(idle.length)} datasets without traffic</summary><p>${idle.map((d, i) => html`${i > 0 ? ', ' : ''}<code>${d.name}</code>`)}</p></details>` : ''}
</section>`
}

function sinksSection(v: StatusView): Html {
  return html`<section aria-labelledby="h-sinks">
<h2 id="h-sinks">Destinations</h2>
<table class="data" id="destinations">
<caption>Backlog: what the spool holds that the destination has not taken yet.</caption>
<thead><tr><th scope="col">Destination</th><th scope="col">State</th><th scope="col">Backlog lines</th><th scope="col">Backlog bytes</th><th scope="col">Oldest waiting</th><th scope="col">Delivered, last 5 min</th><th scope="col">Last error</th></tr></thead>
<tbody>${v.sinks.map((s) => html`<tr class="${s.failing ? 'failing' : ''}">
<th scope="row">${s.name}</th>
<td>${s.failing ? html`<strong class="bad">failing</strong> for ${duration(s.failingForSeconds)}` : s.settingUp === true ? html`<span class="muted">setting up</span>` : html`<span class="ok">up</span>`}</td>
<td class="n">${num(s.pendingLines)}</td>
<td class="n">${bytes(s.pendingBytes)}</td>
<td>${s.oldestPendingAgeSeconds > 0 ? duration(s.oldestPendingAgeSeconds) : html`<span class="muted">–</span>`}</td>
<td>${chart(s.series, 'Lines delivered')} <span class="rate">${num(perMinute(s.series, v.windowMs))}/min</span><br><span class="muted">${num(s.delivered)} since start</span></td>
<td>${s.lastError === null ? html`<span class="muted">none</span>` : html`<code class="error">${s.lastError}</code>`}</td>
</tr>${s.shaping ? html`<tr class="shaping"><td></td><td colspan="6">Shaping: <code>${s.shaping.rules}</code><br><span class="muted">since start: ${num(s.shaping.filtered)} kept back by filters, ${num(s.shaping.sampled)} by sampling (not lost: the spool keeps every line)</span></td></tr>` : ''}`)}</tbody>
</table>
</section>`
}

function spoolSection(v: StatusView): Html {
  const s = v.spool
  return html`<section aria-labelledby="h-spool">
<h2 id="h-spool">Spool</h2>
<dl class="facts">
<dt>State</dt><dd>${s.refusal === null ? html`<span class="ok">accepting batches</span>` : html`<strong class="bad">refusing batches (503)</strong>: ${s.refusal}`}</dd>
<dt>Undelivered</dt><dd><meter min="0" max="${s.highWatermarkBytes}" low="${s.lowWatermarkBytes}" high="${s.lowWatermarkBytes}" optimum="0" value="${Math.min(s.bytes, s.highWatermarkBytes)}">${bytes(s.bytes)}</meter> ${bytes(s.bytes)} of ${bytes(s.highWatermarkBytes)} (high watermark; accepts again below ${bytes(s.lowWatermarkBytes)})</dd>
<dt>Disk free</dt><dd>${s.freeBytes === null ? html`<span class="muted">unknown</span>` : bytes(s.freeBytes)} (refuses below ${bytes(s.minFreeBytes)})</dd>
<dt>Damaged segments</dt><dd>${s.damaged.length === 0 ? html`<span class="ok">none found since the start</span>` : html`<strong class="bad">${num(s.damaged.length)}</strong>: every intact block was delivered; each file is kept whole in <code>spool/damaged/</code>`}</dd>
</dl>
${s.damaged.length === 0
  ? ''
  : html`<table class="data damaged">
<caption>Damaged segments: the byte ranges that could not be read.</caption>
<thead><tr><th scope="col">Segment</th><th scope="col">Bytes not readable</th><th scope="col">Lines lost</th><th scope="col">Kept as</th></tr></thead>
<tbody>${s.damaged.map((d) => html`<tr>
<th scope="row"><code>${d.segment}</code></th>
<td>${d.keptAs === null ? html`the whole file is missing` : d.ranges.map((r, i) => html`${i > 0 ? ', ' : ''}${num(r.fromByte)}–${num(r.toByte)}`)}</td>
<td>${d.linesLost === null || d.committedLines === null ? html`<span class="muted">unknown</span>` : html`${num(d.linesLost)} of ${num(d.committedLines)}`}</td>
<td>${d.keptAs === null ? html`<span class="muted">nothing to keep</span>` : html`<code>${d.keptAs}</code>`}</td>
</tr>`)}</tbody>
</table>`}
</section>`
}

function deadLettersSection(v: StatusView): Html {
  const withLetters = v.datasets.filter((d) => d.deadLetters.length > 0)
  return html`<section aria-labelledby="h-dead">
<h2 id="h-dead">Latest dead letters</h2>
${withLetters.length === 0 ? html`<p>None since this process started.</p>` : ''}
${withLetters.map((d) => {
    const recent = v.now - Date.parse(d.deadLetters[0]!.time) < 15 * 60_000
    return html`<details id="${anchor(d.name)}"${recent ? html` open` : ''}>
<summary><code>${d.name}</code>: the latest ${num(d.deadLetters.length)} of ${num(d.rejected)}</summary>
<table class="data dead">
<thead><tr><th scope="col">Time</th><th scope="col">Line</th><th scope="col">Code</th><th scope="col">Reason</th><th scope="col">Raw line</th></tr></thead>
<tbody>${d.deadLetters.map((l) => html`<tr>
<td><time datetime="${l.time}">${l.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time></td>
<td class="n">${l.line ?? html`<span class="muted">–</span>`}</td>
<td><code>${l.code}</code>${l.sink ? html`<br><span class="muted">from ${l.sink}</span>` : ''}</td>
<td class="reason">${l.reason}</td>
<td><code class="raw">${l.raw}</code>${l.truncated ? html`<span class="muted"> … (cut)</span>` : ''}</td>
</tr>`)}</tbody>
</table>
</details>`
  })}
</section>`
}

function connectSection(v: StatusView): Html {
  return html`<section aria-labelledby="h-connect">
<h2 id="h-connect">Connect a Logpush job</h2>
<p>Create the job in Cloudflare with this <code>destination_conf</code>, putting one of <code>LOGPUSH_TOKENS</code> in place of <code>YOUR_TOKEN</code> (the page never shows a token). The API path is the one to create the job at.</p>
<p id="copy-status" class="muted" role="status" aria-live="polite"></p>
<table class="data" id="connect">
<thead><tr><th scope="col">Dataset</th><th scope="col"><code>destination_conf</code></th><th scope="col">API path</th></tr></thead>
<tbody>${v.datasets.filter((d) => d.scopes.length > 0).map((d) => html`<tr>
<th scope="row">${d.name}</th>
<td class="conf"><input id="conf-${d.name}" type="text" readonly value="${d.destinationConf}" aria-label="destination_conf for ${d.name}"> <button type="button" data-copy="conf-${d.name}">Copy</button></td>
<td>${d.scopes.map((scope, i) => html`${i > 0 ? html`<br>or ` : ''}<code class="api">POST /client/v4/${scope === 'account' ? 'accounts/{account_id}' : 'zones/{zone_id}'}/logpush/jobs</code>`)}</td>
</tr>`)}</tbody>
</table>
</section>`
}

/** The part of the page the script refreshes. */
export function statusMain(v: StatusView): Html {
  return html`<main id="status">
<p class="summary">${v.ready ? html`<strong class="ok">Accepting batches.</strong>` : html`<strong class="bad">Not accepting batches:</strong> ${v.reasons.join('; ')}`}
 Version ${v.version}, up ${duration(v.uptimeSeconds)}. <span id="updated">Updated <time datetime="${new Date(v.now).toISOString()}">${new Date(v.now).toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z')}</time>.</span></p>
${datasetsSection(v)}
${sinksSection(v)}
${spoolSection(v)}
${deadLettersSection(v)}
${connectSection(v)}
</main>`
}

function layout(title: string, body: Html): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${title}</title>
<link rel="stylesheet" href="/status/app.css">
<script src="/status/app.js" defer></script>
</head>
<body>
<a class="skip" href="#status">Skip to the status</a>
${body}
</body>
</html>
`.value
}

export function statusPage(v: StatusView): string {
  return layout('logpush-receiver status', html`<header>
<h1>logpush-receiver</h1>
<div class="actions">
<button type="button" id="pause" aria-pressed="false">Pause auto-refresh</button>
<form method="post" action="/status/logout"><button type="submit">Sign out</button></form>
</div>
</header>
${statusMain(v)}`)
}

export function loginPage(message: string | null, tokenName: string): string {
  return layout('logpush-receiver: sign in', html`<main id="status" class="login">
<h1>logpush-receiver</h1>
<p>The status page shows what senders sent, so it needs a token: ${tokenName}.</p>
${message ? html`<p class="bad" role="alert">${message}</p>` : ''}
<form method="post" action="/status/login">
<label for="token">Token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
<button type="submit">Sign in</button>
</form>
</main>`)
}
