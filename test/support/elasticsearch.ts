/**
 * Runs a real, throwaway Elasticsearch node for integration tests without Docker.
 *
 * The distribution is the `integ-test-zip` artifact from Maven Central: it is small and
 * has no bundled JDK, so a local JDK is picked by Elasticsearch major version. It is
 * deliberately stripped down (only apm, transport-netty4, x-pack-core and x-pack-security
 * modules), which shapes what tests can rely on — see test/integration/elasticsearch-node.test.ts.
 */
import {
  appendFile,
  chmod,
  cp,
  lchown,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  realpath,
  rename,
  rm,
  writeFile,
} from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { exists, findCommand, isExecutable, javaMajorOf, run, runChecked } from './commands.js';
import { ManagedProcess } from './managed-process.js';
import { cacheDir as cacheDirOf, DEPENDENCY_PLUGIN } from './server-setup.js';

export interface ElasticsearchNode {
  readonly url: string;
  readonly version: string;
  /** (Re)starts the node on the same data dir and ports; resolves once health is yellow or green. */
  start(): Promise<void>;
  /** SIGTERM, wait for exit (SIGKILL after ~20 s); data is kept. */
  stop(): Promise<void>;
  /** Stops the node and removes its data, logs and config. */
  destroy(): Promise<void>;
}

export interface LaunchOptions {
  version?: string;
  heapMb?: number;
  log?: (line: string) => void;
}

const DEFAULT_VERSION = '8.19.7';
const ARTIFACT_GROUP = 'org.elasticsearch.distribution.integ-test-zip';
const DEFAULT_RUN_AS_USER = 'lpr-es';
const STARTUP_TIMEOUT_MS = 120_000;

export async function launchElasticsearch(options: LaunchOptions = {}): Promise<ElasticsearchNode> {
  const version = options.version ?? process.env.ES_VERSION ?? DEFAULT_VERSION;
  const heapMb = options.heapMb ?? 512;
  const log = options.log ?? (() => {});
  if (!/^\d+\.\d+\.\d+(-[A-Za-z0-9.]+)?$/.test(version)) {
    throw new Error(`Invalid Elasticsearch version ${JSON.stringify(version)}`);
  }

  const javaHome = await pickJavaHome(version);
  const runAs = await ensureRunAsUser();
  const cachedDist = await ensureDistribution(version, javaHome, log);
  const dist = await distributionReadableBy(runAs, cachedDist, version, log);

  const [httpPort, transportPort] = await freePorts(2);
  const nodeDir = await createNodeDir(dist, runAs, { httpPort: httpPort!, transportPort: transportPort! });
  const url = `http://127.0.0.1:${httpPort}`;
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    ES_PATH_CONF: path.join(nodeDir, 'config'),
    ES_JAVA_HOME: javaHome,
    // User-supplied ES_JAVA_OPTS come last so they can override the heap.
    ES_JAVA_OPTS: `-Xms${heapMb}m -Xmx${heapMb}m ${process.env.ES_JAVA_OPTS ?? ''}`.trim(),
    ES_TMPDIR: path.join(nodeDir, 'tmp'),
    // The CLI launcher leaves a final-flags* dir in its java.io.tmpdir on every start; keep it in the node dir.
    CLI_JAVA_OPTS: `-Djava.io.tmpdir=${path.join(nodeDir, 'tmp')} ${process.env.CLI_JAVA_OPTS ?? ''}`.trim(),
    HOME: nodeDir,
  };
  // Elasticsearch warns about JAVA_HOME being ignored; we pass ES_JAVA_HOME explicitly.
  delete env.JAVA_HOME;
  const proc = new ManagedProcess({
    name: `Elasticsearch ${version}`,
    tag: 'es',
    ...(await wrapCommand(path.join(dist, 'bin', 'elasticsearch'), runAs)),
    env,
    // Relative paths in jvm.options (gc.log, hs_err) resolve against the working dir.
    cwd: path.join(nodeDir, 'logs'),
    startupTimeoutMs: STARTUP_TIMEOUT_MS,
    log,
    ready: async () => {
      const probe = await probeHealth(url);
      return probe.ready || probe.detail;
    },
    failureHint: `Logs: ${path.join(nodeDir, 'logs')}`,
  });
  log(`[es-harness] starting Elasticsearch ${version} on ${url} (java ${javaHome})`);
  try {
    await proc.start();
  } catch (err) {
    // Keep logs/ (the error message points there, and CI can collect it); drop the bulky rest.
    await proc.stop().catch(() => {});
    for (const dir of ['data', 'config', 'tmp']) {
      await rm(path.join(nodeDir, dir), { recursive: true, force: true }).catch(() => {});
    }
    throw err;
  }
  return {
    url,
    version,
    start: () => proc.start(),
    stop: () => proc.stop(),
    destroy: () => proc.destroy(() => rm(nodeDir, { recursive: true, force: true })),
  };
}

export interface RunAsUser {
  name: string;
  uid: number;
  gid: number;
}

async function probeHealth(url: string): Promise<{ ready: boolean; detail: string }> {
  try {
    const res = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, {
      signal: AbortSignal.timeout(5_000),
    });
    const body = await res.text();
    if (res.ok) {
      const status = (JSON.parse(body) as { status?: unknown }).status;
      if (status === 'yellow' || status === 'green') return { ready: true, detail: `status ${status}` };
    }
    return { ready: false, detail: `HTTP ${res.status} ${body.slice(0, 200)}` };
  } catch (err) {
    return { ready: false, detail: errorMessage(err) };
  }
}

/** setpriv execs in place (unlike runuser/su, which fork and SIGKILL the child 2 s after SIGTERM). */
export async function wrapCommand(
  script: string,
  runAs: RunAsUser | undefined,
): Promise<{ command: string; args: string[] }> {
  const setpriv = await findCommand('setpriv');
  if (setpriv) {
    const userArgs = runAs
      ? ['--reuid', String(runAs.uid), '--regid', String(runAs.gid), '--clear-groups']
      : [];
    // If this Node process dies without running exit handlers (SIGKILL, crash), the kernel kills the
    // launcher; the server JVM then sees its stdin pipe close and shuts itself down.
    const deathSig = (await setprivSupportsPdeathsig(setpriv)) ? ['--pdeathsig', 'KILL'] : [];
    return { command: setpriv, args: [...userArgs, ...deathSig, '--', script] };
  }
  if (!runAs) return { command: script, args: [] };
  const runuser = await findCommand('runuser');
  if (!runuser) {
    throw new Error('Running as root: need setpriv or runuser (util-linux) to start Elasticsearch as an unprivileged user');
  }
  return { command: runuser, args: ['-u', runAs.name, '--', script] };
}

let pdeathsigSupport: Promise<boolean> | undefined;
function setprivSupportsPdeathsig(setpriv: string): Promise<boolean> {
  pdeathsigSupport ??= run(setpriv, ['--help']).then(
    (r) => r.stdout.includes('--pdeathsig'),
    () => false,
  );
  return pdeathsigSupport;
}

// ---------------------------------------------------------------------------------------------
// JDK selection

function minimumJavaMajor(esVersion: string): number {
  const major = Number(esVersion.split('.')[0]);
  if (major >= 9) return 21;
  if (major === 8) return 17;
  return 11;
}

async function pickJavaHome(esVersion: string): Promise<string> {
  const explicit = process.env.ES_JAVA_HOME;
  if (explicit) {
    if (!(await isExecutable(path.join(explicit, 'bin', 'java')))) {
      throw new Error(`ES_JAVA_HOME=${explicit} has no executable bin/java`);
    }
    return explicit;
  }
  const min = minimumJavaMajor(esVersion);
  const candidates: string[] = [];
  if (process.env.JAVA_HOME) candidates.push(process.env.JAVA_HOME);
  const javaOnPath = await findCommand('java');
  if (javaOnPath) {
    const resolved = await realpath(javaOnPath).catch(() => undefined);
    if (resolved) candidates.push(path.dirname(path.dirname(resolved)));
  }
  for (const root of ['/usr/lib/jvm', '/usr/local/lib/jvm', '/opt/java']) {
    const entries = await readdir(root).catch(() => [] as string[]);
    for (const entry of entries.sort()) candidates.push(path.join(root, entry));
  }
  const seen: string[] = [];
  for (const home of candidates) {
    const major = await javaMajorOf(home);
    if (major === undefined) continue;
    seen.push(`${home} (${major})`);
    if (major >= min) return home;
  }
  throw new Error(
    `Elasticsearch ${esVersion} needs Java ${min}+, but none was found` +
      (seen.length ? ` (found: ${seen.join(', ')})` : '') +
      '. Install one or set ES_JAVA_HOME.',
  );
}

// ---------------------------------------------------------------------------------------------
// Distribution cache

async function ensureDistribution(version: string, javaHome: string, log: (line: string) => void): Promise<string> {
  const cacheDir = cacheDirOf('elasticsearch', 'ES_CACHE_DIR', version);
  // Only ever created by an atomic rename, so its presence means a complete unpack.
  const dist = path.join(cacheDir, `elasticsearch-${version}`);
  if (await exists(path.join(dist, 'bin', 'elasticsearch'))) return dist;

  await mkdir(cacheDir, { recursive: true });
  const zip = await ensureZip(version, cacheDir, log);
  log(`[es-harness] unpacking ${zip}`);
  const tmp = await mkdtemp(path.join(cacheDir, '.unpack-'));
  try {
    if (await findCommand('unzip')) {
      await runChecked('unzip', ['-q', zip, '-d', tmp], { what: `unzip ${zip}` });
    } else {
      const jar = path.join(javaHome, 'bin', 'jar');
      if (!(await isExecutable(jar))) {
        throw new Error(`Cannot unpack ${zip}: neither 'unzip' nor ${jar} is available (apt-get install unzip)`);
      }
      await runChecked(jar, ['xf', zip], { cwd: tmp, what: `jar xf ${zip}` });
    }
    const unpacked = path.join(tmp, `elasticsearch-${version}`);
    if (!(await exists(path.join(unpacked, 'bin', 'elasticsearch')))) {
      throw new Error(`${zip} does not contain elasticsearch-${version}/bin/elasticsearch; delete it to refetch`);
    }
    // jar xf drops the executable bits; also make the tree usable by the unprivileged user.
    for (const entry of await readdir(path.join(unpacked, 'bin'))) {
      await chmod(path.join(unpacked, 'bin', entry), 0o755);
    }
    await makeWorldReadable(unpacked);
    try {
      await rename(unpacked, dist);
    } catch (err) {
      // A concurrent launch finished first; its copy is just as good.
      if (!(await exists(path.join(dist, 'bin', 'elasticsearch')))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return dist;
}

async function ensureZip(version: string, cacheDir: string, log: (line: string) => void): Promise<string> {
  const zipName = `elasticsearch-${version}.zip`;
  const zip = path.join(cacheDir, zipName);
  if (await exists(zip)) return zip;
  if (!(await findCommand('mvn'))) {
    throw new Error(
      `Elasticsearch ${version} is not cached at ${zip} and Maven (mvn) is not installed to fetch it. ` +
        `Install Maven, or place ${ARTIFACT_GROUP}:elasticsearch:${version}:zip there.`,
    );
  }
  const artifact = `${ARTIFACT_GROUP}:elasticsearch:${version}:zip`;
  log(`[es-harness] fetching ${artifact} via Maven into ${cacheDir}`);
  const tmp = await mkdtemp(path.join(cacheDir, '.fetch-'));
  try {
    await runChecked(
      'mvn',
      ['-q', '-B', `${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact}`, `-DoutputDirectory=${tmp}`],
      // An empty cwd keeps mvn from picking up some unrelated pom.xml.
      { cwd: tmp, what: `mvn fetch of ${artifact}` },
    );
    await rename(path.join(tmp, zipName), zip);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return zip;
}

/**
 * The cache normally lives under root's home (mode 0700) when running as root, which the
 * unprivileged user cannot traverse; fall back to a root-owned, world-readable mirror in tmpdir.
 */
async function distributionReadableBy(
  runAs: RunAsUser | undefined,
  dist: string,
  version: string,
  log: (line: string) => void,
): Promise<string> {
  if (!runAs || (await canUserRead(runAs, dist))) return dist;
  let mirror = path.join(os.tmpdir(), `logpush-receiver-elasticsearch-${version}`);
  const existing = await lstat(mirror).catch(() => undefined);
  if (existing) {
    const trusted = existing.isDirectory() && existing.uid === process.getuid?.() && (existing.mode & 0o022) === 0;
    if (trusted && (await canUserRead(runAs, mirror))) return mirror;
    if (!trusted) mirror = await mkdtemp(path.join(os.tmpdir(), `logpush-receiver-elasticsearch-${version}-`));
  }
  log(`[es-harness] ${dist} is not readable by ${runAs.name}; mirroring it to ${mirror}`);
  const tmp = await mkdtemp(path.join(os.tmpdir(), '.logpush-receiver-es-mirror-'));
  try {
    await cp(dist, path.join(tmp, 'dist'), { recursive: true, verbatimSymlinks: true });
    await makeWorldReadable(path.join(tmp, 'dist'));
    await rm(mirror, { recursive: true, force: true });
    await rename(path.join(tmp, 'dist'), mirror);
  } catch (err) {
    if (!(await exists(path.join(mirror, 'bin', 'elasticsearch')))) throw err;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  if (!(await canUserRead(runAs, mirror))) {
    throw new Error(`${mirror} is not readable by ${runAs.name}; is ${os.tmpdir()} traversable by other users?`);
  }
  return mirror;
}

async function canUserRead(runAs: RunAsUser, dist: string): Promise<boolean> {
  const script = path.join(dist, 'bin', 'elasticsearch');
  const { command, args } = await wrapCommand('/bin/sh', runAs);
  const probe = ['-c', 'test -r "$1" && test -x "$1" && test -r "$2"', 'sh', script, path.join(dist, 'lib')];
  const r = await run(command, [...args, ...probe]).catch(() => undefined);
  return r?.code === 0;
}

// ---------------------------------------------------------------------------------------------
// Unprivileged user

export async function ensureRunAsUser(): Promise<RunAsUser | undefined> {
  if (process.getuid?.() !== 0) return undefined;
  const name = process.env.ES_RUN_AS_USER ?? DEFAULT_RUN_AS_USER;
  let user = await lookupUser(name);
  if (!user) {
    if (!(await findCommand('useradd'))) {
      throw new Error(`Elasticsearch refuses to run as root and 'useradd' is missing to create user ${name}`);
    }
    const shell = (await exists('/usr/sbin/nologin')) ? '/usr/sbin/nologin' : '/bin/false';
    const r = await run('useradd', ['--system', '--no-create-home', '--shell', shell, name]);
    user = await lookupUser(name);
    // Exit code 9 means another launch created it concurrently.
    if (!user) throw new Error(`useradd ${name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  }
  return user;
}

async function lookupUser(name: string): Promise<RunAsUser | undefined> {
  const [uid, gid] = await Promise.all([run('id', ['-u', name]), run('id', ['-g', name])]);
  if (uid.code !== 0 || gid.code !== 0) return undefined;
  return { name, uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

// ---------------------------------------------------------------------------------------------
// Per-node directories and settings

async function createNodeDir(
  dist: string,
  runAs: RunAsUser | undefined,
  ports: { httpPort: number; transportPort: number },
): Promise<string> {
  const nodeDir = await mkdtemp(path.join(os.tmpdir(), 'lpr-es-node-'));
  try {
    const configDir = path.join(nodeDir, 'config');
    // ES writes the keystore into its config dir, so each node gets its own writable copy.
    await cp(path.join(dist, 'config'), configDir, { recursive: true });
    for (const dir of ['data', 'logs', 'tmp']) await mkdir(path.join(nodeDir, dir));

    const settings: Record<string, string | number | boolean> = {
      'cluster.name': 'lpr-test',
      'node.name': 'lpr-test-node',
      'discovery.type': 'single-node',
      'network.host': '127.0.0.1',
      'http.port': ports.httpPort,
      'transport.port': ports.transportPort,
      'path.data': path.join(nodeDir, 'data'),
      'path.logs': path.join(nodeDir, 'logs'),
      'xpack.security.enabled': false,
      'cluster.routing.allocation.disk.threshold_enabled': false,
      'action.destructive_requires_name': false,
    };
    const yaml = Object.entries(settings)
      .map(([key, value]) => `${key}: ${typeof value === 'string' ? JSON.stringify(value) : String(value)}`)
      .join('\n');
    await appendFile(path.join(configDir, 'elasticsearch.yml'), `\n# logpush-receiver test harness\n${yaml}\n`);

    // Append-only overrides (jvm.options.d is read after jvm.options): no gc.log files, and no
    // heap dumps the size of the heap left behind by a test that exhausts memory.
    await mkdir(path.join(configDir, 'jvm.options.d'), { recursive: true });
    await writeFile(
      path.join(configDir, 'jvm.options.d', 'logpush-receiver-test.options'),
      ['-Xlog:disable', '-Xlog:all=warning:stderr:uptime,level,tags', '-XX:-HeapDumpOnOutOfMemoryError', ''].join('\n'),
    );

    if (runAs) await chownTree(nodeDir, runAs.uid, runAs.gid);
    return nodeDir;
  } catch (err) {
    await rm(nodeDir, { recursive: true, force: true });
    throw err;
  }
}

export async function freePorts(count: number): Promise<number[]> {
  // Hold all listeners open at once so the kernel hands out distinct ports.
  const servers: Server[] = [];
  try {
    const ports: number[] = [];
    for (let i = 0; i < count; i++) {
      const server = createServer();
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolve());
      });
      const address = server.address();
      if (!address || typeof address === 'string') throw new Error('could not determine a free port');
      ports.push(address.port);
    }
    return ports;
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
  }
}

// ---------------------------------------------------------------------------------------------
// Small utilities

async function makeWorldReadable(root: string): Promise<void> {
  const st = await lstat(root);
  if (st.isSymbolicLink()) return;
  if (st.isDirectory()) {
    await chmod(root, (st.mode & 0o7777) | 0o555);
    for (const entry of await readdir(root)) await makeWorldReadable(path.join(root, entry));
  } else {
    const exec = st.mode & 0o100 ? 0o111 : 0;
    await chmod(root, (st.mode & 0o7777) | 0o444 | exec);
  }
}

export async function chownTree(root: string, uid: number, gid: number): Promise<void> {
  await lchown(root, uid, gid);
  const st = await lstat(root);
  if (!st.isDirectory()) return;
  for (const entry of await readdir(root)) await chownTree(path.join(root, entry), uid, gid);
}

function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const cause = (err as { cause?: unknown }).cause;
    return cause instanceof Error ? `${err.message} (${cause.message})` : err.message;
  }
  return String(err);
}
