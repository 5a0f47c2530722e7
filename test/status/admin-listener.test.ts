// The operator's endpoints apart from intake: the status page, /metrics and /logpush/challenges on
// an admin listener (ADMIN_HOST defaults to loopback), /health on both; ADMIN_ON_INTAKE keeps the
// old single listener. The page opens with STATUS_TOKEN (or a Logpush token), never METRICS_TOKEN,
// and its cookie's Secure flag is decided by the connection or a setting, never by a header.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { loadConfig } from '../../src/config/index.js'
import { startServer } from '../helpers/server.js'

const METRICS = 'metrics-secret-0123456789'
const STATUS = 'status-secret-0123456789'

test('the status page, /metrics and /logpush/challenges are on the admin listener, not on intake; /health on both', async (t) => {
  // They shared the intake listener: whoever could reach intake (for a receiver Cloudflare pushes
  // to, the whole Internet) reached the page's sign-in form, /metrics and the challenge list.
  const server = await startServer(t, { ADMIN_ON_INTAKE: 'false', METRICS_TOKEN: METRICS })
  assert.notEqual(server.adminUrl, server.url)
  for (const path of ['/', '/metrics', '/logpush/challenges', '/status/app.js']) {
    const res = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${server.token}` } })
    assert.equal(res.status, 404, `intake does not serve ${path}`)
  }
  assert.equal((await fetch(`${server.url}/health`)).status, 200, 'balancers find /health on intake')
  assert.equal((await fetch(`${server.adminUrl}/health`)).status, 200)
  assert.equal((await fetch(`${server.adminUrl}/metrics`)).status, 401, 'METRICS_TOKEN still guards /metrics')
  assert.match(await (await fetch(`${server.adminUrl}/metrics`, { headers: { authorization: `Bearer ${METRICS}` } })).text(), /lpr_spool_bytes/)
  assert.equal((await fetch(`${server.adminUrl}/`)).status, 401)
  assert.equal((await fetch(`${server.adminUrl}/`, { headers: { authorization: `Bearer ${server.token}` } })).status, 200)
  assert.equal((await fetch(`${server.adminUrl}/logpush/challenges`)).status, 401)
  const challenges = await fetch(`${server.adminUrl}/logpush/challenges`, { headers: { authorization: `Bearer ${server.token}` } })
  assert.deepEqual(await challenges.json(), { challenges: [] })
  // The admin listener takes no batches.
  const batch = await fetch(`${server.adminUrl}/logpush/http_requests`, { method: 'POST', headers: { authorization: `Bearer ${server.token}` }, body: '{"RayID":"a"}\n' })
  assert.equal(batch.status, 404)
})

test('the admin listener binds loopback unless told otherwise', () => {
  const config = loadConfig({ LOGPUSH_TOKENS: 'x'.repeat(24) })
  assert.equal(config.adminHost, '127.0.0.1')
  assert.equal(config.adminOnIntake, false)
  assert.notEqual(config.adminPort, config.port)
})

test('ADMIN_ON_INTAKE=true serves everything on the intake listener, as before', async (t) => {
  const server = await startServer(t, { ADMIN_ON_INTAKE: 'true' })
  assert.equal(server.built.adminUrl, null)
  assert.equal((await fetch(`${server.url}/metrics`)).status, 200)
  assert.equal((await fetch(`${server.url}/health`)).status, 200)
  assert.equal((await fetch(`${server.url}/`, { headers: { authorization: `Bearer ${server.token}` } })).status, 200)
  assert.equal((await fetch(`${server.url}/logpush/challenges`, { headers: { authorization: `Bearer ${server.token}` } })).status, 200)
})

test('STATUS_TOKEN opens the status page; METRICS_TOKEN never does', async (t) => {
  // METRICS_TOKEN opened the page: a scraper's token read dead letters full of client IPs.
  const server = await startServer(t, { ADMIN_ON_INTAKE: 'false', METRICS_TOKEN: METRICS, STATUS_TOKEN: STATUS })
  const page = (token: string): Promise<Response> => fetch(`${server.adminUrl}/`, { headers: { authorization: `Bearer ${token}` } })
  assert.equal((await page(STATUS)).status, 200)
  assert.equal((await page(METRICS)).status, 401)
  assert.equal((await page(server.token)).status, 401, 'with STATUS_TOKEN set, a Logpush token does not open it either')
  const signIn = await fetch(`${server.adminUrl}/status/login`, { method: 'POST', body: new URLSearchParams({ token: METRICS }), redirect: 'manual' })
  assert.equal(signIn.status, 401)
  assert.equal(signIn.headers.get('set-cookie'), null)
  assert.match(await signIn.text(), /That token is not STATUS_TOKEN/)
  const ok = await fetch(`${server.adminUrl}/status/login`, { method: 'POST', body: new URLSearchParams({ token: STATUS }), redirect: 'manual' })
  assert.equal(ok.status, 303)
  const cookie = ok.headers.get('set-cookie')!.split(';')[0]!
  assert.equal((await fetch(`${server.adminUrl}/`, { headers: { cookie } })).status, 200)
})

test('the session cookie is Secure by the connection or STATUS_COOKIE_SECURE, never by X-Forwarded-Proto', async (t) => {
  // The cookie got Secure (or not) from any client's X-Forwarded-Proto: the header is the sender's
  // word, and a proxy that does not overwrite it lets a client choose.
  const signIn = async (url: string, token: string, headers: Record<string, string>): Promise<string> => {
    const res = await fetch(`${url}/status/login`, { method: 'POST', body: new URLSearchParams({ token }), headers, redirect: 'manual' })
    assert.equal(res.status, 303)
    return res.headers.get('set-cookie')!
  }
  const auto = await startServer(t, { ADMIN_ON_INTAKE: 'false' })
  assert.doesNotMatch(await signIn(auto.adminUrl, auto.token, { 'x-forwarded-proto': 'https' }), /Secure/, 'plain HTTP: no header makes it Secure')
  const always = await startServer(t, { ADMIN_ON_INTAKE: 'false', STATUS_COOKIE_SECURE: 'always' })
  assert.match(await signIn(always.adminUrl, always.token, { 'x-forwarded-proto': 'http' }), /; Secure/, 'always: Secure whatever the header says')
  assert.match(await signIn(always.adminUrl, always.token, {}), /; Secure/)
})
