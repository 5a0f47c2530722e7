// deploy/kubernetes/ is for users and no cluster runs here: every manifest is validated against
// the Kubernetes API schemas (kubernetes-models, the OpenAPI schemas of Kubernetes as models;
// the ServiceMonitor against the Prometheus Operator's CRD schema), and the promises README makes
// about them are checked: a pod leaves the Service before it stops (preStop pause, grace period
// above the preStop pause + SHUTDOWN_HEALTH_DELAY_MS + SHUTDOWN_GRACE_MS), one volume claim per
// replica for DATA_DIR, readiness on /health and liveness on /health/live, non-root as the
// Dockerfile. The schemas accept unknown fields (as the API server does with a warning), so
// the fields that matter are each checked by name below: a misspelt one fails there.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseAllDocuments } from 'yaml'
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap'
import { Secret } from 'kubernetes-models/v1/Secret'
import { Service } from 'kubernetes-models/v1/Service'
import { StatefulSet } from 'kubernetes-models/apps/v1/StatefulSet'
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget'
import { ServiceMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor'
import { loadConfig, settings } from '../../src/config/index.js'
import { packageRoot } from '../../src/paths.js'

type Obj = Record<string, any>

const DIR = join(packageRoot, 'deploy', 'kubernetes')

const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/ServiceMonitor': ServiceMonitor
}

function manifests(): Array<{ file: string, doc: Obj }> {
  const out: Array<{ file: string, doc: Obj }> = []
  for (const file of readdirSync(DIR).filter((f) => /\.ya?ml$/.test(f)).sort()) {
    for (const d of parseAllDocuments(readFileSync(join(DIR, file), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${file} is YAML`)
      const doc = d.toJS() as Obj | null
      if (doc) out.push({ file, doc })
    }
  }
  return out
}

function validate(doc: Obj): void {
  const Model = MODELS[`${doc.apiVersion}/${doc.kind}`]
  assert.ok(Model, `a schema for ${doc.apiVersion} ${doc.kind}`)
  new Model(doc).validate()
}

function only(kind: string, name?: string): Obj {
  const found = manifests().filter(({ doc }) => doc.kind === kind && (name === undefined || doc.metadata?.name === name))
  assert.equal(found.length, 1, `one ${kind}${name ? ` ${name}` : ''}`)
  return found[0]!.doc
}

function matches(selector: Obj, labels: Obj): boolean {
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v) &&
    (selector.matchExpressions ?? []).every((e: Obj) => e.operator === 'DoesNotExist' ? !(e.key in labels) : e.operator === 'Exists' ? e.key in labels : true)
}

const statefulSet = (): Obj => only('StatefulSet')
const container = (): Obj => statefulSet().spec.template.spec.containers[0]
/** The service's settings as the pod sees them: the ConfigMap and the Secret, then the container's own env. */
function podEnv(): Record<string, string> {
  const c = container()
  const env: Record<string, string> = {}
  for (const from of c.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, only('ConfigMap', from.configMapRef.name).data)
    if (from.secretRef) Object.assign(env, only('Secret', from.secretRef.name).stringData)
  }
  for (const e of c.env ?? []) env[e.name] = e.value
  return env
}

test('every manifest is valid against the Kubernetes API schemas (and the Prometheus Operator CRD)', () => {
  const all = manifests()
  assert.deepEqual([...new Set(all.map(({ doc }) => doc.kind))].sort(), ['ConfigMap', 'PodDisruptionBudget', 'Secret', 'Service', 'ServiceMonitor', 'StatefulSet'])
  for (const { file, doc } of all) {
    assert.doesNotThrow(() => validate(doc), `${file}: ${doc.kind} ${doc.metadata?.name}`)
  }
})

test('the schema check can fail: a wrong type or a missing required field is refused', () => {
  const broken = structuredClone(statefulSet())
  broken.spec.template.spec.containers[0].ports[0].containerPort = 'http'
  assert.throws(() => validate(broken), /containerPort must be integer/)
  const noSelector = structuredClone(statefulSet())
  delete noSelector.spec.selector
  assert.throws(() => validate(noSelector), /selector/)
  const monitor = structuredClone(only('ServiceMonitor'))
  monitor.spec.endpoints[0].port = 8080
  assert.throws(() => validate(monitor), /port must be string/)
})

test('every setting the pod gets is one the service reads, and the service starts with them', () => {
  const env = podEnv()
  const known = new Set<string>(Object.values(settings).map((s) => s.env))
  for (const name of Object.keys(env)) assert.ok(known.has(name), `${name} is a setting`)
  const config = loadConfig(env)
  assert.equal(config.port, container().ports[0].containerPort, 'PORT is the container port')
})

test('a pod leaves the Service before it stops: preStop pause, then the health delay and the grace period, all within terminationGracePeriodSeconds', () => {
  const config = loadConfig(podEnv())
  const command = container().lifecycle?.preStop?.exec?.command as string[] | undefined
  assert.ok(command && command[0] === 'sleep', 'a preStop pause')
  const preStopMs = Number(command[1]) * 1000
  assert.ok(preStopMs >= 5000, 'long enough for the endpoint removal to reach the nodes and balancers')
  assert.ok(config.shutdownHealthDelayMs > 0, 'SHUTDOWN_HEALTH_DELAY_MS is on')
  const needed = preStopMs + config.shutdownHealthDelayMs + config.shutdownGraceMs
  const grace = statefulSet().spec.template.spec.terminationGracePeriodSeconds * 1000
  assert.ok(grace > needed, `terminationGracePeriodSeconds ${grace / 1000} s > preStop ${preStopMs} + SHUTDOWN_HEALTH_DELAY_MS ${config.shutdownHealthDelayMs} + SHUTDOWN_GRACE_MS ${config.shutdownGraceMs} ms`)
})

test('readiness on /health, liveness on /health/live, on the container port', () => {
  const c = container()
  const portName = c.ports[0].name
  assert.equal(c.readinessProbe?.httpGet?.path, '/health')
  assert.equal(c.readinessProbe?.httpGet?.port, portName)
  assert.equal(c.livenessProbe?.httpGet?.path, '/health/live', 'never /health: a full spool or a stop must not restart the pod')
  assert.equal(c.livenessProbe?.httpGet?.port, portName)
  // The kubelet kills a pod after failureThreshold x periodSeconds without an answer: well above a busy moment.
  assert.ok(c.livenessProbe.failureThreshold * c.livenessProbe.periodSeconds >= 30)
})

test('one volume claim per replica, mounted at DATA_DIR; several replicas', () => {
  const s = statefulSet()
  assert.ok(s.spec.replicas >= 2)
  const claims = s.spec.volumeClaimTemplates as Obj[]
  assert.equal(claims.length, 1)
  assert.deepEqual(claims[0]!.spec.accessModes, ['ReadWriteOnce'], 'one node, one pod: never shared')
  const mount = (container().volumeMounts as Obj[]).find((m) => m.name === claims[0]!.metadata.name)
  assert.ok(mount, 'the claim is mounted')
  assert.equal(mount.mountPath, podEnv().DATA_DIR)
  assert.ok(!(s.spec.template.spec.volumes ?? []).some((v: Obj) => v.name === claims[0]!.metadata.name), 'not a shared pod volume')
})

test('non-root, as the Dockerfile: the image\'s node user (uid 1000), DATA_DIR as the image sets it', () => {
  const dockerfile = readFileSync(join(packageRoot, 'Dockerfile'), 'utf8')
  assert.match(dockerfile, /^USER node$/m)
  assert.match(dockerfile, /^FROM node:\S+ AS runtime$/m, 'the official node image, whose node user is uid/gid 1000')
  const pod = statefulSet().spec.template.spec.securityContext
  assert.equal(pod.runAsNonRoot, true)
  assert.equal(pod.runAsUser, 1000)
  assert.equal(pod.runAsGroup, 1000)
  assert.equal(pod.fsGroup, 1000, 'the volume is writable by the node user')
  assert.equal(container().securityContext.allowPrivilegeEscalation, false)
  const imageDataDir = /ENV DATA_DIR=(\S+)/.exec(dockerfile)?.[1]
  assert.equal(podEnv().DATA_DIR, imageDataDir)
})

test('the Services, the disruption budget and the ServiceMonitor select the pods, by names that exist', () => {
  const s = statefulSet()
  const podLabels = s.spec.template.metadata.labels
  assert.ok(matches(s.spec.selector, podLabels))
  const services = manifests().filter(({ doc }) => doc.kind === 'Service').map(({ doc }) => doc)
  assert.ok(services.some((svc) => svc.metadata.name === s.spec.serviceName && svc.spec.clusterIP === 'None'), 'the headless Service the StatefulSet names')
  for (const svc of services) {
    assert.ok(Object.entries(svc.spec.selector).every(([k, v]) => podLabels[k] === v), `${svc.metadata.name} selects the pods`)
    assert.ok(svc.spec.ports.every((p: Obj) => (container().ports as Obj[]).some((c) => c.name === p.targetPort)), `${svc.metadata.name} targets a container port`)
  }
  // The status page and /metrics are on the admin listener: the Service uploads go to never exposes it.
  const admin = (container().ports as Obj[]).find((c) => c.containerPort === loadConfig(podEnv()).adminPort)
  assert.ok(admin, 'ADMIN_PORT is a container port')
  assert.ok(!services.find((svc) => svc.metadata.name === 'logpush-receiver')!.spec.ports.some((p: Obj) => p.targetPort === admin.name), 'the upload Service does not reach the admin listener')
  const pdb = only('PodDisruptionBudget')
  assert.ok(matches(pdb.spec.selector, podLabels))
  assert.equal(pdb.spec.maxUnavailable, 1)
  const monitor = only('ServiceMonitor')
  const scraped = services.filter((svc) => matches(monitor.spec.selector, svc.metadata.labels))
  assert.deepEqual(scraped.map((svc) => svc.metadata.name), ['logpush-receiver-admin'], 'each pod scraped once, through one Service')
  const endpoint = monitor.spec.endpoints[0]
  assert.ok(scraped[0]!.spec.ports.some((p: Obj) => p.name === endpoint.port && p.targetPort === admin.name), 'scraped on the admin listener')
  assert.equal(endpoint.path, '/metrics')
  assert.equal(endpoint.authorization?.type, 'Bearer', 'the service asks for Authorization: Bearer <METRICS_TOKEN>')
  const secret = only('Secret', endpoint.authorization.credentials.name)
  assert.ok(endpoint.authorization.credentials.key in secret.stringData)
  assert.equal(endpoint.authorization.credentials.key, 'METRICS_TOKEN', 'the token the service asks of the scraper')
})
