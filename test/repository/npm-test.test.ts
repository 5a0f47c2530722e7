// `npm test` is the full suite on any machine: without CI=true it used to skip every real-server
// test (Elasticsearch, S3Mock) unless asked, so a fresh clone's "all tests pass" meant less than
// CI's. What the runner decides, and the one line it prints for a program it cannot install.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { missing, onPath, PREREQUISITES, serverPlan, skipLine } from '../support/prerequisites.js'

const plan = (wholeSuite: boolean, env: NodeJS.ProcessEnv = {}, ci = false, javaMissing = false): { elasticsearch: boolean, s3: boolean } =>
  serverPlan({ ci, wholeSuite, javaMissing, env })

test('npm test without CI=true starts the real Elasticsearch and S3Mock, as CI does', () => {
  assert.deepEqual(plan(true), { elasticsearch: true, s3: true })
  assert.deepEqual(plan(true, {}, true), { elasticsearch: true, s3: true })
})

test('chosen files start servers only when asked (CI=true, TEST_ELASTICSEARCH / TEST_S3=managed)', () => {
  assert.deepEqual(plan(false), { elasticsearch: false, s3: false })
  assert.deepEqual(plan(false, {}, true), { elasticsearch: true, s3: true })
  assert.deepEqual(plan(false, { TEST_ELASTICSEARCH: 'managed', TEST_S3: 'managed' }), { elasticsearch: true, s3: true })
})

test('a server of your own: ELASTICSEARCH_URL / TEST_S3_URL outside CI; in CI only with TEST_ELASTICSEARCH=external', () => {
  assert.deepEqual(plan(true, { ELASTICSEARCH_URL: 'http://127.0.0.1:9200', TEST_S3_URL: 'http://127.0.0.1:9090' }), { elasticsearch: false, s3: false })
  assert.deepEqual(plan(true, { ELASTICSEARCH_URL: 'http://127.0.0.1:9200' }, true), { elasticsearch: true, s3: true })
  assert.deepEqual(plan(true, { ELASTICSEARCH_URL: 'http://127.0.0.1:9200', TEST_ELASTICSEARCH: 'external' }, true), { elasticsearch: false, s3: true })
})

test('no JDK or Maven (not installable without root): the Java servers are skipped outside CI, never in CI', () => {
  assert.deepEqual(plan(true, {}, false, true), { elasticsearch: false, s3: false })
  assert.deepEqual(plan(true, {}, true, true), { elasticsearch: true, s3: true })
})

test('a missing program is found on PATH, and its skip line says what and how to get it', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'lpr-path-'))
  writeFileSync(join(dir, 'promtool'), '#!/bin/sh\n')
  chmodSync(join(dir, 'promtool'), 0o755)
  writeFileSync(join(dir, 'chromium'), 'not executable')
  assert.equal(onPath('promtool', dir), true)
  assert.equal(onPath('chromium', dir), false, 'a file that cannot be run is not the program')
  const saved = process.env.PATH
  t.after(() => { process.env.PATH = saved })
  process.env.PATH = dir
  const absent = missing().filter((p) => !p.commands.includes('haproxy')) // found in /usr/sbin when installed
  assert.deepEqual(absent.map((p) => p.packages.join(' ')), ['default-jdk-headless maven', 'chromium'])
  const line = skipLine(PREREQUISITES.find((p) => p.commands.includes('chromium'))!)
  assert.equal(line.split('\n').length, 1)
  assert.match(line, /^!!!!!!!! SKIPPING the status page test \(headless Chromium\): no chromium on PATH\. Get it with: sudo apt-get install chromium /)
})
