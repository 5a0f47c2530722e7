/**
 * The system programs some tests need and `npm test` cannot fetch itself (the npm registry and
 * Maven Central give it everything else): each comes from a Debian package. Running as root, the
 * runner installs what is missing with apt-get; otherwise the tests that need it skip, each with one
 * loud line saying what and how to get it. With CI=true nothing is skipped: a missing program
 * fails those tests (and a missing JDK or Maven fails the run).
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';

export interface Prerequisite {
  /** Programs that must all be on PATH. */
  readonly commands: readonly string[];
  /** The Debian packages that provide them. */
  readonly packages: readonly string[];
  /** The tests that need them, as the skip line names them. */
  readonly tests: string;
}

export const PREREQUISITES: readonly Prerequisite[] = [
  { commands: ['java', 'mvn'], packages: ['default-jdk-headless', 'maven'], tests: 'the Elasticsearch and S3 (bucket source) tests: Elasticsearch and S3Mock, fetched from Maven Central, run on Java' },
  { commands: ['chromium'], packages: ['chromium'], tests: 'the status page test (headless Chromium)' },
  { commands: ['promtool'], packages: ['prometheus'], tests: 'the alert rules test (promtool)' },
  { commands: ['haproxy'], packages: ['haproxy'], tests: 'the fleet test (HAProxy in front of two replicas)' },
];

// Debian puts haproxy in /usr/sbin, which a user's PATH often lacks; the fleet test looks there too.
const SBIN = ['/usr/sbin', '/usr/local/sbin'];

export function onPath(command: string, envPath = process.env.PATH ?? ''): boolean {
  return envPath.split(path.delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(path.join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

function found(command: string): boolean {
  return onPath(command, [process.env.PATH ?? '', ...(command === 'haproxy' ? SBIN : [])].join(path.delimiter));
}

export function missing(list: readonly Prerequisite[] = PREREQUISITES): Prerequisite[] {
  return list.filter((p) => p.commands.some((c) => !found(c)));
}

/** One line per missing prerequisite, loud enough to see in a scroll of test output. */
export function skipLine(p: Prerequisite): string {
  return `!!!!!!!! SKIPPING ${p.tests}: no ${p.commands.filter((c) => !found(c)).join(', ')} on PATH. Get it with: sudo apt-get install ${p.packages.join(' ')} (or run npm test as root once) !!!!!!!!`;
}

/**
 * Installs what is missing when running as root (apt-get, non-interactive). Returns what is still
 * missing afterwards. `log` gets the runner's progress lines.
 */
export function installMissing(log: (line: string) => void): Prerequisite[] {
  const absent = missing();
  if (absent.length === 0) return [];
  if (process.getuid?.() !== 0 || !onPath('apt-get')) return absent;
  const packages = [...new Set(absent.flatMap((p) => p.packages))];
  log(`[run-tests] running as root: apt-get install ${packages.join(' ')} (needed by ${absent.map((p) => p.tests.split(':')[0]).join('; ')})`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const update = spawnSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'], env });
  const install = update.status === 0
    ? spawnSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env })
    : update;
  if (install.status !== 0) log(`[run-tests] apt-get failed (exit ${install.status ?? install.signal})`);
  return missing(absent);
}

export interface ServerPlanInput {
  readonly ci: boolean;
  /** No file arguments: `npm test`, the whole suite. */
  readonly wholeSuite: boolean;
  /** A JDK or Maven is missing (and could not be installed). */
  readonly javaMissing: boolean;
  readonly env: NodeJS.ProcessEnv;
}

/** Which servers the runner starts itself: Elasticsearch and S3Mock. */
export function serverPlan({ ci, wholeSuite, javaMissing, env }: ServerPlanInput): { elasticsearch: boolean, s3: boolean } {
  const external = Boolean(env.ELASTICSEARCH_URL) && (env.TEST_ELASTICSEARCH === 'external' || !ci);
  const s3External = Boolean(env.TEST_S3_URL) && !ci;
  const byDefault = ci || (wholeSuite && !javaMissing);
  return {
    elasticsearch: env.TEST_ELASTICSEARCH === 'managed' || (!external && byDefault),
    s3: env.TEST_S3 === 'managed' || (!s3External && byDefault),
  };
}
