/**
 * A real, throwaway OpenSearch node for integration tests, without Docker: the `integ-test-zip`
 * distribution from Maven Central (core and transport-netty4 only: no security, no ISM plugin),
 * cached in ~/.cache/logpush-receiver/opensearch and unpacked per node. OpenSearch 2.x runs on
 * Java 17 to 21 (it needs the security manager, which Java 24 removed); it refuses to run as root,
 * so it runs as the Elasticsearch harness's unprivileged user.
 */
import { appendFile, chmod, mkdir, mkdtemp, readdir, rename } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { findCommand, runChecked } from './commands.js';
import { chownTree, ensureRunAsUser, freePorts, wrapCommand } from './elasticsearch.js';
import { ManagedProcess } from './managed-process.js';
import { cacheDir, fetchOnce, mvn, pickJdk, serverControls, serverVersion, type ServerControls } from './server-setup.js';

export interface OpenSearchNode extends ServerControls {
  readonly url: string;
}

const DEFAULT_VERSION = '2.19.4';

export async function launchOpenSearch(log: (line: string) => void = () => {}): Promise<OpenSearchNode> {
  const version = serverVersion('OPENSEARCH_VERSION', DEFAULT_VERSION, 'OpenSearch');
  // 2.x: Java 17 to 23 (it needs the security manager, which Java 24 removed); 3.x: Java 21 or later.
  const javaHome = Number(version.split('.')[0]) >= 3
    ? await pickJdk('OPENSEARCH_JAVA_HOME', 21, 99, `OpenSearch ${version}`)
    : await pickJdk('OPENSEARCH_JAVA_HOME', 17, 23, `OpenSearch ${version}`);
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
    name: `OpenSearch ${version}`,
    tag: 'opensearch',
    command,
    args,
    env,
    cwd: path.join(nodeDir, 'logs'),
    startupTimeoutMs: 120_000,
    log,
    ready: async () => {
      const res = await fetch(`${url}/_cluster/health?wait_for_status=yellow&timeout=1s`, { signal: AbortSignal.timeout(5_000) });
      return res.ok || `HTTP ${res.status}`;
    },
    failureHint: `Logs: ${path.join(nodeDir, 'logs')}`,
  });
  log(`[opensearch-harness] starting OpenSearch ${version} on ${url} (java ${javaHome})`);
  await proc.start();
  return { ...serverControls(proc, version, nodeDir), url };
}

async function ensureZip(version: string, log: (line: string) => void): Promise<string> {
  const dir = cacheDir('opensearch', 'OPENSEARCH_CACHE_DIR', version);
  const zip = path.join(dir, `opensearch-${version}.zip`);
  const artifact = `org.opensearch.distribution.integ-test-zip:opensearch:${version}:zip`;
  await fetchOnce({
    dir,
    target: zip,
    what: artifact,
    tag: 'opensearch',
    log,
    fetch: (tmp) => mvn(tmp, 'copy', [`-Dartifact=${artifact}`, `-DoutputDirectory=${tmp}`], artifact),
    place: (tmp) => rename(path.join(tmp, `opensearch-${version}.zip`), zip),
  });
  return zip;
}
