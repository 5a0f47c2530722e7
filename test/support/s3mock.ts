/**
 * Runs Adobe S3Mock (a real S3-compatible server) for the bucket-source tests, without Docker:
 * the standalone Spring Boot jar `com.adobe.testing:s3mock:5.2.0:jar:exec` from Maven Central,
 * fetched once with the Maven dependency plugin into ~/.cache/logpush-receiver/s3mock, as
 * elasticsearch.ts fetches Elasticsearch.
 *
 * It serves plain HTTP on `server.port`, bound to 127.0.0.1 (TLS off). S3Mock always adds a second
 * plain-HTTP connector (`http.port`) that Spring binds to every address and that cannot be turned
 * off; it gets a free port (0) and is never used.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { access, mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';

export interface S3MockServer {
  readonly url: string;
  stop(): Promise<void>;
}

const VERSION = '5.2.0';
const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';
const STARTUP_TIMEOUT_MS = 300_000;

function cacheDir(): string {
  return path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'logpush-receiver', 's3mock');
}

async function exists(file: string): Promise<boolean> {
  return await access(file).then(() => true, () => false);
}

async function ensureJar(log: (line: string) => void): Promise<string> {
  const dir = cacheDir();
  const jarName = `s3mock-${VERSION}-exec.jar`;
  const jar = path.join(dir, jarName);
  if (await exists(jar)) return jar;
  await mkdir(dir, { recursive: true });
  const artifact = `com.adobe.testing:s3mock:${VERSION}:jar:exec`;
  log(`[s3mock] fetching ${artifact} via Maven into ${dir}`);
  const tmp = await mkdtemp(path.join(dir, '.fetch-'));
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('mvn', ['-q', '-B', `${DEPENDENCY_PLUGIN}:copy`, `-Dartifact=${artifact}`, `-DoutputDirectory=${tmp}`], { cwd: tmp, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (out += d.toString()));
      child.once('error', (err) => reject(new Error(`cannot run mvn to fetch S3Mock (install Maven, or place ${jar}): ${err.message}`)));
      child.once('close', (code) => (code === 0 ? resolve() : reject(new Error(`mvn fetch of ${artifact} failed (exit ${code}):\n${out.slice(-4000)}`))));
    });
    await rename(path.join(tmp, jarName), jar);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return jar;
}

async function freePort(): Promise<number> {
  return await new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function launchS3Mock(log: (line: string) => void = () => {}): Promise<S3MockServer> {
  const jar = await ensureJar(log);
  const port = await freePort();
  const root = await mkdtemp(path.join(os.tmpdir(), 'lpr-s3mock-'));
  let output = '';
  const child: ChildProcess = spawn(
    process.env.JAVA_HOME ? path.join(process.env.JAVA_HOME, 'bin', 'java') : 'java',
    [
      // Small heap: objects live on disk (the store root), the JVM only moves them.
      '-Xmx512m',
      // Start-up is most of its cost in a test run, on a busy machine: C1 only, one GC thread.
      '-XX:TieredStopAtLevel=1',
      '-XX:+UseSerialGC',
      '-jar', jar,
      '--server.ssl.enabled=false',
      `--server.port=${port}`,
      '--server.address=127.0.0.1',
      '--http.port=0',
      `--com.adobe.testing.s3mock.store.root=${root}`,
      // The default 10 MB cap on one upload is below the 200 MB test object (gzipped: ~20 MB).
      '--com.adobe.testing.s3mock.max-payload-size=512MB',
      '--logging.level.root=WARN',
    ],
    { cwd: root, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  child.stdout!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-20_000); });
  child.stderr!.on('data', (d: Buffer) => { output = (output + d.toString()).slice(-20_000); });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killOnExit = (): void => { child.kill('SIGKILL'); };
  process.once('exit', killOnExit);
  const url = `http://127.0.0.1:${port}`;
  const stop = async (): Promise<void> => {
    process.off('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    await rm(root, { recursive: true, force: true });
  };
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`S3Mock exited during start (code ${child.exitCode}):\n${output}`);
    }
    try {
      const res = await fetch(`${url}/`, { signal: AbortSignal.timeout(30_000) });
      await res.arrayBuffer();
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`S3Mock did not answer on ${url} within ${STARTUP_TIMEOUT_MS} ms:\n${output}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  return { url, stop };
}
