// docker-compose.yml and the Dockerfile are for users and cannot be run here (no Docker engine in
// CI): these tests parse them and check that they agree with each other and with the settings the
// service really reads, so a renamed variable or a moved port breaks the build, not a user's start.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { parse } from 'yaml'
import { loadConfig, settings } from '../../src/config/index.js'
import { packageRoot } from '../../src/paths.js'

type Obj = Record<string, unknown>

const RECEIVER = 'logpush-receiver'
const ELASTICSEARCH = 'elasticsearch'
const KIBANA = 'kibana'

const compose = parse(readFileSync(join(packageRoot, 'docker-compose.yml'), 'utf8')) as unknown
const dockerfile = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8')

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function obj(v: unknown, what: string): Obj {
  assert.ok(isObj(v), `${what} is a mapping`)
  return v
}

function services(): Obj {
  return obj(obj(compose, 'docker-compose.yml').services, 'services')
}

function service(name: string): Obj {
  return obj(services()[name], `service ${name}`)
}

/** Compose interpolation, the way `docker compose` does it with nothing set in the shell or .env. */
function interpolate(value: string): string {
  return value.replace(/\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g, (whole, _name, op, arg) => {
    if (whole === '$$') return '$'
    if (op === ':-' || op === '-') return arg as string
    return '' // ${VAR}, $VAR, ${VAR:?err}, ${VAR:+alt}: unset
  })
}

/** A service's environment as name → value; `environment` may be a `K=V` list or a map. Unset (`K` or `K:`) is undefined. */
function environment(svc: Obj): Record<string, string | undefined> {
  const env = svc.environment
  const out: Record<string, string | undefined> = {}
  if (env === undefined || env === null) return out
  if (Array.isArray(env)) {
    for (const item of env) {
      assert.equal(typeof item, 'string', `environment list item ${String(item)} is a string`)
      const s = item as string
      const eq = s.indexOf('=')
      if (eq < 0) out[s] = undefined
      else out[s.slice(0, eq)] = interpolate(s.slice(eq + 1))
    }
    return out
  }
  for (const [k, v] of Object.entries(obj(env, 'environment'))) {
    out[k] = v === null || v === undefined ? undefined : interpolate(String(v))
  }
  return out
}

/** Dockerfile instructions of one kind, continuation lines joined, arguments as text. */
function instructions(kind: string): string[] {
  const joined = dockerfile.replace(/\\\r?\n/g, ' ')
  const out: string[] = []
  for (const line of joined.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line)
    if (m && m[1]!.toUpperCase() === kind) out.push(m[2]!.trim())
  }
  return out
}

/** ENV of the last stage (the image that runs). */
function dockerfileEnv(): Record<string, string> {
  const joined = dockerfile.replace(/\\\r?\n/g, ' ')
  const stages = joined.split(/^\s*FROM\s/im)
  const last = stages[stages.length - 1] ?? ''
  const out: Record<string, string> = {}
  for (const line of last.split(/\r?\n/)) {
    const m = /^\s*ENV\s+(.*)$/i.exec(line)
    if (!m) continue
    const args = m[1]!.trim()
    if (!args.includes('=')) {
      const [k, ...rest] = args.split(/\s+/)
      out[k!] = rest.join(' ')
      continue
    }
    for (const t of args.matchAll(/([A-Za-z_][A-Za-z0-9_]*)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g)) {
      out[t[1]!] = t[2]!.replace(/^(["'])(.*)\1$/, '$2')
    }
  }
  return out
}

/** What the receiver's container sees: Dockerfile ENV overridden by compose environment. */
function receiverEffectiveEnv(): Record<string, string> {
  // A compose variable without a value (`NAME` / `NAME:`) passes the shell's through: unset here.
  const set = Object.entries(environment(service(RECEIVER))).filter((e): e is [string, string] => e[1] !== undefined)
  return { ...dockerfileEnv(), ...Object.fromEntries(set) }
}

interface PortMapping { host?: string, published?: string, target: number }

function ports(svc: Obj): PortMapping[] {
  const list = svc.ports
  if (list === undefined) return []
  assert.ok(Array.isArray(list), 'ports is a list')
  return list.map((p: unknown): PortMapping => {
    if (isObj(p)) {
      return { host: p.host_ip as string | undefined, published: p.published === undefined ? undefined : String(p.published), target: Number(p.target) }
    }
    const parts = interpolate(String(p)).replace(/\/(tcp|udp)$/, '').split(':')
    const target = Number(parts.pop())
    const published = parts.pop()
    const host = parts.length > 0 ? parts.join(':') : undefined
    return { host, published, target }
  })
}

/** Compose durations: 40s, 1m30s, 1500ms. */
function durationMs(v: unknown): number {
  const s = String(v)
  const units: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 }
  let total = 0
  let rest = s
  for (const m of s.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)) {
    total += Number(m[1]) * units[m[2]!]!
    rest = rest.replace(m[0], '')
  }
  assert.equal(rest, '', `duration ${s} parses`)
  return total
}

function healthcheckText(svc: Obj, name: string): string {
  const hc = obj(svc.healthcheck, `healthcheck of ${name}`)
  assert.notEqual(hc.disable, true, `healthcheck of ${name} is not disabled`)
  const t = hc.test
  assert.ok(t !== undefined, `healthcheck of ${name} has a test`)
  const text = Array.isArray(t) ? t.map(String).join(' ') : String(t)
  assert.ok(!/^NONE\b/.test(text), `healthcheck of ${name} is not NONE`)
  return text
}

test('compose defines the receiver, elasticsearch and kibana', () => {
  for (const name of [RECEIVER, ELASTICSEARCH, KIBANA]) service(name)
})

test('the receiver is built from this repository and publishes its PORT', () => {
  const svc = service(RECEIVER)
  const build = svc.build
  const context = isObj(build) ? build.context : build
  assert.equal(context, '.', 'build context is the repository root')
  const port = loadConfig(receiverEffectiveEnv()).port
  const mapped = ports(svc).filter((p) => p.target === port)
  assert.equal(mapped.length, 1, `one ports entry targets the container PORT ${port}: ${JSON.stringify(ports(svc))}`)
  assert.ok(mapped[0]!.published, 'the container PORT is published on the host')
})

test('every variable set for the receiver is a setting the service reads, and its value is valid', () => {
  const known = new Set<string>(Object.values(settings).map((s) => s.env))
  const env = environment(service(RECEIVER))
  assert.ok(Object.keys(env).length > 0, 'the receiver has an environment')
  for (const name of Object.keys(env)) assert.ok(known.has(name), `${name} is not a setting of the service (src/config/settings.ts)`)
  // Throws LPR_ERR_CONFIG_INVALID naming the variable, as the service would at start.
  loadConfig(receiverEffectiveEnv())
})

test('DATA_DIR is a named volume', () => {
  const env = receiverEffectiveEnv()
  const dataDir = env.DATA_DIR
  assert.ok(dataDir, 'DATA_DIR is set in compose or in the Dockerfile (the default ./data would be inside the image)')
  const declared = obj(obj(compose, 'docker-compose.yml').volumes, 'top-level volumes')
  const mounts = (service(RECEIVER).volumes ?? []) as unknown[]
  assert.ok(Array.isArray(mounts), 'volumes of the receiver is a list')
  const sources = mounts.flatMap((m): string[] => {
    if (isObj(m)) return m.target === dataDir && (m.type === undefined || m.type === 'volume') ? [String(m.source)] : []
    const [source, target] = String(m).split(':')
    return target === dataDir ? [source!] : []
  })
  assert.equal(sources.length, 1, `one mount targets DATA_DIR ${dataDir}`)
  assert.ok(Object.hasOwn(declared, sources[0]!), `${sources[0]} is a named volume declared under top-level volumes`)
  // The image declares the same directory a volume, so an anonymous one is never silently used instead.
  assert.ok(instructions('VOLUME').some((v) => v.includes(dataDir)), `Dockerfile VOLUME includes ${dataDir}`)
})

test('every service has a healthcheck; the receiver\'s (and the image\'s) is liveness, /health/live', () => {
  // Docker's health check was readiness (/health): Swarm or ECS would restart a replica whose spool
  // is above its watermark only because its destination is down, which churns and helps nothing.
  for (const name of [RECEIVER, ELASTICSEARCH, KIBANA]) healthcheckText(service(name), name)
  assert.match(healthcheckText(service(RECEIVER), RECEIVER), /\/health\/live\b/)
  assert.ok(instructions('HEALTHCHECK').some((h) => /\/health\/live\b/.test(h)), 'the Dockerfile HEALTHCHECK probes /health/live')
  assert.match(healthcheckText(service(ELASTICSEARCH), ELASTICSEARCH), /_cluster\/health/)
})

test('the receiver waits for a healthy elasticsearch, and may finish its requests on stop', () => {
  const svc = service(RECEIVER)
  const dependsOn = obj(svc.depends_on, 'depends_on of the receiver (long form, with conditions)')
  assert.equal(obj(dependsOn[ELASTICSEARCH], 'depends_on.elasticsearch').condition, 'service_healthy')
  const config = loadConfig(receiverEffectiveEnv())
  // On SIGTERM /health answers 503 for SHUTDOWN_HEALTH_DELAY_MS first, then requests get SHUTDOWN_GRACE_MS.
  const stop = config.shutdownHealthDelayMs + config.shutdownGraceMs
  assert.ok(svc.stop_grace_period !== undefined, 'stop_grace_period is set (compose default is 10 s)')
  assert.ok(durationMs(svc.stop_grace_period) > stop, `stop_grace_period ${String(svc.stop_grace_period)} exceeds SHUTDOWN_HEALTH_DELAY_MS + SHUTDOWN_GRACE_MS ${stop}`)
})

test('ELASTICSEARCH_URL points at the elasticsearch service on its container port', () => {
  const config = loadConfig(receiverEffectiveEnv())
  const url = new URL(config.elasticsearchUrl)
  assert.equal(url.hostname, ELASTICSEARCH)
  const esEnv = environment(service(ELASTICSEARCH))
  const esPort = esEnv['http.port'] ?? '9200'
  assert.equal(url.port || (url.protocol === 'https:' ? '443' : '80'), esPort)
})

test('elasticsearch and kibana are published on loopback only', () => {
  for (const name of [ELASTICSEARCH, KIBANA]) {
    for (const p of ports(service(name))) assert.equal(p.host, '127.0.0.1', `${name} port ${p.target} is bound to 127.0.0.1`)
  }
})

test('the Dockerfile is multi-stage, runs as non-root, checks /health and exposes PORT', () => {
  assert.ok(instructions('FROM').length >= 2, 'at least two FROM stages')
  const users = instructions('USER')
  assert.ok(users.length > 0, 'a USER instruction')
  const user = users[users.length - 1]!.split(':')[0]!
  assert.ok(!['root', '0'].includes(user), `runs as ${user}, not root`)
  const hc = instructions('HEALTHCHECK')
  assert.equal(hc.length, 1, 'one HEALTHCHECK')
  assert.match(hc[0]!, /\bCMD\b.*\/health/)
  const port = loadConfig(dockerfileEnv()).port
  const exposed = instructions('EXPOSE').flatMap((e) => e.split(/\s+/)).map((p) => Number(p.replace(/\/(tcp|udp)$/, '')))
  assert.ok(exposed.includes(port), `EXPOSE ${port}`)
  assert.equal(loadConfig(receiverEffectiveEnv()).port, port, 'compose does not move PORT away from what the image exposes')
})

// The override files users add for OpenSearch and Kafka (deploy/compose/, shown in
// docs/opensearch.md and docs/kafka.md): `docker compose -f docker-compose.yml -f <override>`.
const OVERRIDES = [
  { name: 'opensearch', file: 'deploy/compose/docker-compose.opensearch.yml', doc: 'docs/opensearch.md', prefix: 'OPENSEARCH_' },
  { name: 'kafka', file: 'deploy/compose/docker-compose.kafka.yml', doc: 'docs/kafka.md', prefix: 'KAFKA_' }
] as const

function overrideServices(file: string): Obj {
  return obj(obj(parse(readFileSync(join(packageRoot, file), 'utf8')) as unknown, file).services, `services of ${file}`)
}

/** The receiver's environment with the override on top, as compose merges a map: the override's keys win. */
function mergedReceiverEnv(file: string): Record<string, string> {
  const set = Object.entries(environment(obj(overrideServices(file)[RECEIVER], `${RECEIVER} in ${file}`))).filter((e): e is [string, string] => e[1] !== undefined)
  return { ...receiverEffectiveEnv(), ...Object.fromEntries(set) }
}

test('each override file adds its server and sets on the receiver only settings the service reads, valid, with the destination in SINKS', () => {
  const known = new Set<string>(Object.values(settings).map((s) => s.env))
  for (const o of OVERRIDES) {
    const svcs = overrideServices(o.file)
    assert.deepEqual(Object.keys(svcs).sort(), [RECEIVER, o.name].sort(), `${o.file}: the ${o.name} service and the receiver`)
    const receiver = obj(svcs[RECEIVER], `${RECEIVER} in ${o.file}`)
    // An override that named build or image would replace the base file's, not add to it.
    assert.equal(receiver.build, undefined, `${o.file} leaves the receiver's build to docker-compose.yml`)
    assert.equal(receiver.image, undefined, `${o.file} leaves the receiver's image to docker-compose.yml`)
    const env = environment(receiver)
    for (const name of Object.keys(env)) assert.ok(known.has(name), `${o.file}: ${name} is not a setting of the service (src/config/settings.ts)`)
    assert.ok(Object.keys(env).some((k) => k.startsWith(o.prefix)), `${o.file} sets ${o.prefix}* for the receiver`)
    // Throws LPR_ERR_CONFIG_INVALID naming the variable, as the service would at start.
    const config = loadConfig(mergedReceiverEnv(o.file))
    assert.ok(config.sinks.split(',').includes(o.name), `${o.file}: SINKS ${config.sinks} includes ${o.name}`)
  }
})

test('OPENSEARCH_URL points at the opensearch service\'s container port; KAFKA_BROKERS at the kafka service\'s advertised listener', () => {
  const os = loadConfig(mergedReceiverEnv(OVERRIDES[0].file))
  const url = new URL(os.opensearchUrl)
  assert.equal(url.hostname, 'opensearch')
  const osEnv = environment(obj(overrideServices(OVERRIDES[0].file).opensearch, 'opensearch'))
  assert.equal(url.port || (url.protocol === 'https:' ? '443' : '80'), osEnv['http.port'] ?? '9200')
  const kafka = loadConfig(mergedReceiverEnv(OVERRIDES[1].file))
  const kEnv = environment(obj(overrideServices(OVERRIDES[1].file).kafka, 'kafka'))
  const advertised = (kEnv.KAFKA_ADVERTISED_LISTENERS ?? '').split(',').map((l) => l.replace(/^[A-Z_]+:\/\//, ''))
  for (const broker of kafka.kafkaBrokers.split(',')) assert.ok(advertised.includes(broker), `${broker} is an advertised listener (${advertised.join(',')})`)
  // The producer never creates a topic; the broker is set the same way, as docs/kafka.md says.
  assert.equal(kEnv.KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false')
})

test('override servers have a healthcheck, the receiver waits for them healthy, their ports are on loopback only and their volumes declared', () => {
  for (const o of OVERRIDES) {
    const doc = obj(parse(readFileSync(join(packageRoot, o.file), 'utf8')) as unknown, o.file)
    const svc = obj(overrideServices(o.file)[o.name], o.name)
    healthcheckText(svc, o.name)
    const dependsOn = obj(obj(overrideServices(o.file)[RECEIVER], RECEIVER).depends_on, `depends_on of the receiver in ${o.file} (long form, as in docker-compose.yml)`)
    assert.equal(obj(dependsOn[o.name], `depends_on.${o.name}`).condition, 'service_healthy')
    for (const p of ports(svc)) assert.equal(p.host, '127.0.0.1', `${o.name} port ${p.target} is bound to 127.0.0.1`)
    const declared = obj(doc.volumes, `top-level volumes of ${o.file}`)
    for (const m of (svc.volumes ?? []) as unknown[]) {
      const source = isObj(m) ? String(m.source) : String(m).split(':')[0]!
      assert.ok(Object.hasOwn(declared, source), `${o.file}: ${source} is declared under top-level volumes`)
    }
  }
})

test('docs/opensearch.md and docs/kafka.md point at the override files', () => {
  for (const o of OVERRIDES) {
    const page = readFileSync(join(packageRoot, o.doc), 'utf8')
    assert.ok(page.includes(`-f docker-compose.yml -f ${o.file}`), `${o.doc} shows how to start ${o.file}`)
  }
})
