/**
 * A real, throwaway OpenSearch node for integration tests, without Docker: the `integ-test-zip`
 * distribution from Maven Central (core and transport-netty4 only: no security, no ISM plugin),
 * cached in ~/.cache/logpush-receiver/opensearch and unpacked per node. OpenSearch 2.x runs on
 * Java 17 to 21 (it needs the security manager, which Java 24 removed); it refuses to run as root,
 * so it runs as the Elasticsearch harness's unprivileged user.
 */
import { mkdir, mkdtemp, readdir, rename, rm, appendFile, chmod } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { chownTree, ensureRunAsUser, exists, findCommand, freePorts, javaMajorOf, runChecked, wrapCommand } from './elasticsearch.js';
import { ManagedProcess } from './managed-process.js';

export interface OpenSearchNode {
  readonly url: string;
  readonly version: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
  destroy(): Promise<void>;
}

const DEFAULT_VERSION = '2.19.4';
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';

export async function launchOpenSearch(log: (line: string) => void = () => {}): Promise<OpenSearchNode> {
  const version = process.env.OPENSEARCH_VERSION ?? DEFAULT_VERSION;
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`Invalid OpenSearch version ${JSON.stringify(version)}`);
  const javaHome = await pickJava(version);
  const zip = await ensureZip(version, log);
  const runAs = await ensureRunAsUser();
  const nodeDir = await mkdtemp(path.join(os.tmpdir(), 'lpr-os-node-'));
  await chmod(nodeDir, 0o755);
  if (await findCommand('unzip')) await runChecked('unzip', ['-q', zip, '-d', nodeDir], { what: `unzip ${zip}` });
  // Without unzip, the JDK's jar tool (it drops the executable bits, restored below).
  else await runChecked(path.join(javaHome, 'bin', 'jar'), ['xf', zip], { cwd: nodeDir, what: `jar xf ${zip}` });
  const dist = path.join(nodeDir, `opensearch-${version}`);
  for (const entry of await readdir(path.join(dist, 'bin'))) await chmod(path.join(dist, 'bin', entry), 0o755);
  for (const dir of ['data', 'logs', 'tmp']) await mkdir(path.join(nodeDir, dir));
  const [httpPort, transportPort] = await freePorts(2);
  const settings = [
    'cluster.name: lpr-test',
    'node.name: lpr-test-node',
    'discovery.type: single-node',
    'network.host: 127.0.0.1',
    `http.port: ${httpPort}`,
    `transport.port: ${transportPort}`,
    `path.data: ${path.join(nodeDir, 'data')}`,
    `path.logs: ${path.join(nodeDir, 'logs')}`,
    'cluster.routing.allocation.disk.threshold_enabled: false',
    'action.destructive_requires_name: false',
  ];
  await appendFile(path.join(dist, 'config', 'opensearch.yml'), `\n${settings.join('\n')}\n`);
  await mkdir(path.join(dist, 'config', 'jvm.options.d'), { recursive: true });
  await appendFile(path.join(dist, 'config', 'jvm.options.d', 'lpr.options'), '-Xlog:disable\n-XX:-HeapDumpOnOutOfMemoryError\n');
  if (runAs) await chownTree(nodeDir, runAs.uid, runAs.gid);
  const url = `http://127.0.0.1:${httpPort}`;
  const { command, args } = await wrapCommand(path.join(dist, 'bin', 'opensearch'), runAs);
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OPENSEARCH_JAVA_HOME: javaHome,
    OPENSEARCH_PATH_CONF: path.join(dist, 'config'),
    OPENSEARCH_JAVA_OPTS: `-Xms512m -Xmx512m -Djava.io.tmpdir=${path.join(nodeDir, 'tmp')}`,
    OPENSEARCH_TMPDIR: path.join(nodeDir, 'tmp'),
    HOME: nodeDir,
  };
  delete env.JAVA_HOME;
  const proc = new ManagedProcess({
    name: 'opensearch',
    command,
    args,
    env,
    cwd: path.join(nodeDir, 'logs'),
    startupTimeoutMs: 120_000,
    log,
    ready: async () => {
      const res = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, { signal: AbortSignal.timeout(5_000) });
      return res.ok;
    },
  });
  log(`[opensearch-harness] starting OpenSearch ${version} on ${url} (java ${javaHome})`);
  await proc.start();
  return {
    url,
    version,
    start: () => proc.start(),
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    destroy: async () => {
      await proc.stop();
      await rm(nodeDir, { recursive: true, force: true });
    },
  };
}

/** 2.x: Java 17 to 21 (the security manager); 3.x: Java 21 or later. */
async function pickJava(version: string): Promise<string> {
  const explicit = process.env.OPENSEARCH_JAVA_HOME;
  if (explicit) return explicit;
  const [min, max] = Number(version.split('.')[0]) >= 3 ? [21, 99] : [17, 23];
  const homes = (await readdir('/usr/lib/jvm').catch(() => [] as string[])).sort().map((e) => path.join('/usr/lib/jvm', e));
  for (const home of homes) {
    const major = await javaMajorOf(home);
    if (major !== undefined && major >= min && major <= max) return home;
  }
  throw new Error(`OpenSearch ${version} needs a Java ${min}-${max} under /usr/lib/jvm (apt-get install openjdk-17-jdk-headless), or set OPENSEARCH_JAVA_HOME`);
}

async function ensureZip(version: string, log: (line: string) => void): Promise<string> {
  const base = process.env.OPENSEARCH_CACHE_DIR ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'logpush-receiver', 'opensearch');
  const dir = path.join(path.resolve(base), version);
  const zip = path.join(dir, `opensearch-${version}.zip`);
  if (await exists(zip)) return zip;
  if (!(await findCommand('mvn'))) throw new Error(`OpenSearch ${version} is not cached at ${zip} and Maven (mvn) is not installed to fetch it`);
  await mkdir(dir, { recursive: true });
  const artifact = `org.opensearch.distribution.integ-test-zip:opensearch:${version}:zip`;
  log(`[opensearch-harness] fetching ${artifact} via Maven into ${dir}`);
  const tmp = await mkdtemp(path.join(dir, '.fetch-'));
  try {
    await runChecked('mvn', ['-q', '-B', `${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact}`, `-DoutputDirectory=${tmp}`], { cwd: tmp, what: `mvn fetch of ${artifact}` });
    await rename(path.join(tmp, `opensearch-${version}.zip`), zip);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return zip;
}

