import { test } from 'node:test'
import assert from 'node:assert/strict'
import { describeConfig, loadConfig, settings } from '../../src/config/index.js'

test('defaults apply when nothing is set, and empty strings count as unset', () => {
  const c = loadConfig({ PORT: '', MAX_LINE_BYTES: '' })
  assert.equal(c.port, 8080)
  assert.equal(c.maxLineBytes, 1024 * 1024)
  assert.equal(c.eventsGzipRotated, true)
  assert.equal(c.dataDir, './data')
  assert.ok(Object.isFrozen(c))
})

test('values are coerced from strings', () => {
  const c = loadConfig({ PORT: '9560', EVENTS_GZIP_ROTATED: 'false', LOGPUSH_TOKENS: 'a,b' })
  assert.equal(c.port, 9560)
  assert.equal(c.eventsGzipRotated, false)
  assert.equal(c.tokens, 'a,b')
})

test('invalid values stop the start with a message naming every bad variable', () => {
  assert.throws(() => loadConfig({ PORT: 'eighty', MAX_LINE_BYTES: '10', LOG_LEVEL: 'loud', SINKS: 'file,elastic', ELASTICSEARCH_NAMESPACE: 'my-ns' }), (err: Error & { code?: string }) => {
    assert.match(err.message, /SINKS must match pattern/)
    assert.match(err.message, /ELASTICSEARCH_NAMESPACE must match pattern/)
    assert.equal(err.code, 'LPR_ERR_CONFIG_INVALID')
    assert.match(err.message, /PORT must be integer/)
    assert.match(err.message, /MAX_LINE_BYTES must be >= 1024/)
    assert.match(err.message, /LOG_LEVEL must be equal to one of the allowed values/)
    return true
  })
})

test('the printable configuration masks secrets', () => {
  const shown = describeConfig(loadConfig({ LOGPUSH_TOKENS: 'super-secret-value' }))
  assert.equal(shown.LOGPUSH_TOKENS, '(set)')
  assert.ok(!JSON.stringify(shown).includes('super-secret-value'))
  for (const s of Object.values(settings)) assert.ok(s.env in shown, s.env)
})

test('the low watermark must be below the high one', () => {
  assert.throws(() => loadConfig({ SPOOL_HIGH_WATERMARK_BYTES: '1000', SPOOL_LOW_WATERMARK_BYTES: '1000' }), /SPOOL_LOW_WATERMARK_BYTES \(1000\) must be below/)
})

test('a low watermark of 0 stops the start', () => {
  // The bug this pins: SPOOL_LOW_WATERMARK_BYTES=0 was taken, and a spool that once passed its
  // high watermark refused every batch for ever, even empty (it is never below 0 bytes).
  assert.throws(() => loadConfig({ SPOOL_LOW_WATERMARK_BYTES: '0' }), { code: 'LPR_ERR_CONFIG_INVALID', message: /SPOOL_LOW_WATERMARK_BYTES must be above 0/ })
})

test('the Splunk destination needs its token', () => {
  assert.throws(() => loadConfig({ SINKS: 'file,splunk' }), /SINKS names splunk: set SPLUNK_HEC_TOKEN/)
  assert.equal(loadConfig({ SINKS: 'splunk', SPLUNK_HEC_TOKEN: 'x' }).sinks, 'splunk')
})

test('a shutdown delay past what a timer can hold is refused at start', () => {
  // SHUTDOWN_GRACE_MS or SHUTDOWN_HEALTH_DELAY_MS above 2^31-1 ms made Node's setTimeout fire after
  // 1 ms: a stop meant to wait cut connections (or closed the listener) at once, silently.
  for (const env of ['SHUTDOWN_GRACE_MS', 'SHUTDOWN_HEALTH_DELAY_MS']) {
    assert.throws(() => loadConfig({ [env]: '3000000000' }), (err: Error & { code?: string }) => err.code === 'LPR_ERR_CONFIG_INVALID' && err.message.includes(env))
    assert.equal(loadConfig({ [env]: '3600000' })[env === 'SHUTDOWN_GRACE_MS' ? 'shutdownGraceMs' : 'shutdownHealthDelayMs'], 3_600_000)
  }
})
