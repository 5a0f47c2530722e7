/**
 * What the harnesses of the servers fetched from Maven Central share (OpenSearch, Kafka; the
 * Elasticsearch one keeps its own version check, JDK pick and fetch, and shares the cache folder and
 * the Maven plugin): the version asked for, a JDK in a version range, a cache folder filled by one
 * Maven fetch, and the controls tests get of a started server.
 */
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { exists, findCommand, javaMajorOf, runChecked } from './commands.js';
import type { ManagedProcess } from './managed-process.js';

export const DEPENDENCY_PLUGIN = 'org.apache.maven.plugins:maven-dependency-plugin:3.6.1';

/** What tests hold of a managed server. */
export interface ServerControls {
  readonly version: string;
  /** Starts it again on the same data and ports; resolves once ready. */
  start(): Promise<void>;
  /** SIGTERM; data is kept. */
  stop(): Promise<void>;
  /** SIGKILL: the server loses what it had not flushed, as in a crash. */
  kill(): Promise<void>;
  /** Stops it and removes its folder. */
  destroy(): Promise<void>;
}

export function serverControls(proc: ManagedProcess, version: string, dir: string): ServerControls {
  return {
    version,
    start: () => proc.start(),
    stop: () => proc.stop(),
    kill: () => proc.kill(),
    destroy: () => proc.destroy(() => rm(dir, { recursive: true, force: true })),
  };
}

/** $<envVar>, or the default; only plain x.y.z versions (they go into paths and Maven coordinates). */
export function serverVersion(envVar: string, fallback: string, name: string): string {
  const version = process.env[envVar] ?? fallback;
  if (!/^\d+\.\d+\.\d+$/.test(version)) throw new Error(`Invalid ${name} version ${JSON.stringify(version)} (${envVar})`);
  return version;
}

/** $<envVar>, or the first JDK under /usr/lib/jvm whose major version is within [min, max]. */
export async function pickJdk(envVar: string, min: number, max: number, why: string): Promise<string> {
  const explicit = process.env[envVar];
  if (explicit) return explicit;
  const homes = (await readdir('/usr/lib/jvm').catch(() => [] as string[])).sort().map((e) => path.join('/usr/lib/jvm', e));
  for (const home of homes) {
    const major = await javaMajorOf(home);
    if (major !== undefined && major >= min && major <= max) return home;
  }
  throw new Error(`${why} needs a Java ${min}${max >= 99 ? ' or later' : `-${max}`} under /usr/lib/jvm (apt-get install openjdk-17-jdk-headless), or set ${envVar}`);
}

/** $<envVar>, or ~/.cache/logpush-receiver/<name>, with the version's folder below it. */
export function cacheDir(name: string, envVar: string, version: string): string {
  const base = process.env[envVar] ?? path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'logpush-receiver', name);
  return path.join(path.resolve(base), version);
}

/**
 * `target` in `dir`, fetched with Maven when it is not there yet: `mvn` runs in an empty temporary
 * folder below `dir` (so no unrelated pom.xml is read), then `place` moves what it fetched to
 * `target` with a rename, so that `target` existing means a complete fetch.
 */
export async function fetchOnce(opts: {
  dir: string;
  target: string;
  what: string;
  /** Log lines are "[<tag>-harness] …". */
  tag: string;
  log: (line: string) => void;
  fetch: (tmp: string) => Promise<void>;
  place: (tmp: string) => Promise<void>;
}): Promise<void> {
  if (await exists(opts.target)) return;
  if (!(await findCommand('mvn'))) throw new Error(`${opts.what} is not cached at ${opts.target} and Maven (mvn) is not installed to fetch it`);
  await mkdir(opts.dir, { recursive: true });
  opts.log(`[${opts.tag}-harness] fetching ${opts.what} via Maven into ${opts.dir}`);
  const tmp = await mkdtemp(path.join(opts.dir, '.fetch-'));
  try {
    await opts.fetch(tmp);
    await opts.place(tmp);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** mvn -q -B with the dependency plugin's `goal`, in `cwd`. */
export function mvn(cwd: string, goal: 'copy' | 'copy-dependencies', args: string[], what: string): Promise<void> {
  return runChecked('mvn', ['-q', '-B', `${DEPENDENCY_PLUGIN}:${goal}`, ...args], { cwd, what: `mvn fetch of ${what}` });
}
