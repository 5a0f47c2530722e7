// The page's only two assets, served by the service itself (no CDN): a style sheet and a script.
// Colours meet WCAG AA contrast on white; focus stays visible; nothing depends on the script but
// the refresh and the copy buttons.

export const CSS = `
:root { color-scheme: light; --fg: #1a1a1a; --muted: #555; --bad: #a4001d; --ok: #1b5e20; --line: #d0d0d0; --bg-alt: #f4f4f4; --accent: #0b4f9c; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #fff; }
header { display: flex; justify-content: space-between; align-items: center; padding: .6rem 1.2rem; border-bottom: 1px solid var(--line); }
header h1 { font-size: 1.25rem; margin: 0; }
.actions { display: flex; gap: .5rem; }
.actions form { margin: 0; }
main { padding: .4rem 1.2rem 2rem; max-width: 110rem; }
h2 { font-size: 1.1rem; margin: 1.4rem 0 .4rem; }
a { color: var(--accent); }
button, input { font: inherit; }
button { padding: .25rem .7rem; border: 1px solid #767676; border-radius: 3px; background: #fff; color: var(--fg); cursor: pointer; }
button:hover { background: var(--bg-alt); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -10000px; }
.skip:focus { left: 1rem; top: .5rem; background: #fff; padding: .3rem; }
table.data { border-collapse: collapse; width: 100%; margin: .3rem 0; }
table.data caption { text-align: left; color: var(--muted); padding: .2rem 0; }
table.data th, table.data td { border-bottom: 1px solid var(--line); padding: .3rem .5rem; text-align: left; vertical-align: top; }
table.data thead th { background: var(--bg-alt); font-weight: 600; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
.muted { color: var(--muted); }
.bad { color: var(--bad); }
.ok { color: var(--ok); font-weight: 600; }
tr.failing th { color: var(--bad); }
ul.codes, ul.fields { list-style: none; margin: .2rem 0 0; padding: 0; font-size: .85rem; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85em; overflow-wrap: anywhere; }
code.raw { display: block; max-width: 48rem; white-space: pre-wrap; word-break: break-all; background: var(--bg-alt); padding: .2rem .3rem; }
code.error { white-space: pre-wrap; word-break: break-word; color: var(--bad); }
td.reason { max-width: 28rem; overflow-wrap: anywhere; }
svg.chart { vertical-align: middle; }
svg.chart rect { fill: var(--accent); }
svg.chart line { stroke: var(--line); }
.rate { font-variant-numeric: tabular-nums; white-space: nowrap; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .3rem 1rem; margin: .3rem 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
meter { width: 12rem; vertical-align: middle; }
td.conf { white-space: nowrap; }
code.api, .rate { white-space: nowrap; }
td.conf input { width: min(34rem, 45vw); font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .85rem; padding: .2rem; border: 1px solid #767676; }
details summary { cursor: pointer; }
details { margin: .3rem 0; }
.summary { margin: .6rem 0; }
.login { max-width: 32rem; margin: 3rem auto; }
.login form { display: flex; gap: .5rem; align-items: center; flex-wrap: wrap; }
.login input { padding: .3rem; border: 1px solid #767676; min-width: 16rem; }
`

export const JS = `'use strict'
// Refreshes the status every 10 s by fetching the page again and swapping its <main>; keeps open
// <details>, the focused control and the scroll position. Pause stops it (WCAG 2.2.2).
;(function () {
  var paused = false
  var pause = document.getElementById('pause')
  if (pause) {
    pause.addEventListener('click', function () {
      paused = !paused
      pause.setAttribute('aria-pressed', String(paused))
      pause.textContent = paused ? 'Resume auto-refresh' : 'Pause auto-refresh'
    })
  }
  function openTarget () {
    var id
    // A fragment that is not valid percent-encoding ("#%") made decodeURIComponent throw, which
    // stopped this script before the refresh and the copy buttons were set up.
    try { id = decodeURIComponent(location.hash.slice(1)) } catch (e) { return }
    var el = id && document.getElementById(id)
    if (el && el.tagName === 'DETAILS') el.open = true
  }
  window.addEventListener('hashchange', openTarget)
  openTarget()

  function refresh () {
    var main = document.getElementById('status')
    if (paused || document.hidden || !pause || !main) return
    fetch(location.pathname, { credentials: 'same-origin', headers: { accept: 'text/html' } }).then(function (res) {
      if (res.status === 401) { location.reload(); return null }
      return res.ok ? res.text() : null
    }).then(function (text) {
      if (text === null || text === undefined) return
      // DOMParser documents are inert: no script in them runs, and the server escaped every value.
      var fresh = new DOMParser().parseFromString(text, 'text/html').getElementById('status')
      if (!fresh) return
      var open = Array.prototype.map.call(main.querySelectorAll('details[open]'), function (d) { return d.id })
      var closed = Array.prototype.map.call(main.querySelectorAll('details:not([open])'), function (d) { return d.id })
      var focused = document.activeElement && document.activeElement.id
      var x = window.scrollX, y = window.scrollY
      main.replaceChildren.apply(main, Array.prototype.slice.call(fresh.childNodes).map(function (n) { return document.importNode(n, true) }))
      open.forEach(function (id) { var d = id && document.getElementById(id); if (d) d.open = true })
      closed.forEach(function (id) { var d = id && document.getElementById(id); if (d) d.open = false })
      if (focused) { var f = document.getElementById(focused); if (f) f.focus({ preventScroll: true }) }
      window.scrollTo(x, y)
    }).catch(function () { /* the next tick tries again */ })
  }
  setInterval(refresh, 10000)

  document.addEventListener('click', function (e) {
    var b = e.target && e.target.closest && e.target.closest('button[data-copy]')
    if (!b) return
    var input = document.getElementById(b.getAttribute('data-copy'))
    var status = document.getElementById('copy-status')
    if (!input) return
    input.focus()
    input.select()
    function done (ok) { if (status) status.textContent = ok ? 'Copied: ' + input.getAttribute('aria-label') : 'Selected; press Ctrl+C to copy.' }
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(function () { done(true) }, function () { done(document.execCommand('copy')) })
    } else {
      done(document.execCommand('copy'))
    }
  })
})()
`
