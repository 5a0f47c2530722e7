/**
 * Entry point of `npm test`: provides Elasticsearch and S3Mock to the test files, then runs `node --test`.
 *
 * `npm test` (no file arguments) is the whole suite, the same tests CI runs: it fetches and starts a
 * real Elasticsearch and S3Mock itself (Maven Central, cached under ~/.cache/logpush-receiver),
 * and a server that cannot start fails the run. Programs only a Debian package gives (a JDK and
 * Maven, chromium, promtool) are installed with apt-get when running as root; otherwise the tests
 * that need them skip, one loud line each (prerequisites.ts). CI=true skips nothing.
 *
 * OpenSearch and Kafka (extra-servers.ts) start with them, and with file arguments when asked
 * (TEST_OPENSEARCH=managed, TEST_KAFKA=managed); TEST_OPENSEARCH_URL / TEST_KAFKA_BROKERS with
 * TEST_OPENSEARCH=external / TEST_KAFKA=external use servers of your own.
 *
 * With file arguments (a few chosen files), the servers start only when asked:
 *   CI=true, TEST_ELASTICSEARCH=managed, TEST_S3=managed → launch them (failure fails the run)
 *   ELASTICSEARCH_URL=http://…                        → use that server
 *   neither                                           → those tests are skipped, loudly
 *
 * ELASTICSEARCH_URL with TEST_ELASTICSEARCH=external (or without CI) uses that server instead of a
 * managed node; TEST_S3_URL likewise for S3.
 *
 * Arguments are passed to `node --test`; without a file/dir argument all test files under
 * dist/test are run. Use `--flag=value` forms so values are not mistaken for paths.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchElasticsearch, type ElasticsearchNode } from './elasticsearch.js';
import { launchS3Mock, type S3MockServer } from './s3mock.js';
import { installMissing, serverPlan, skipLine } from './prerequisites.js';
import { EXTRA_SERVER_ENV, launchExtraServers, type ExtraServers } from './extra-servers.js';

// `node --test dist/test/` (Node 20) treats every .js below a `test` directory as a test file,
// including this one; running the runner from inside the runner would recurse.
if (!process.env.NODE_TEST_CONTEXT) {
  await main();
}

async function main(): Promise<void> {
  const ci = process.env.CI === 'true';
  const args = process.argv.slice(2);
  const hasPaths = args.some((arg) => !arg.startsWith('-'));
  // The whole suite is the full suite everywhere; chosen files get servers when asked (see above).
  const wholeSuite = !hasPaths;
  let javaMissing = false;
  if (wholeSuite && !ci) {
    for (const p of installMissing((line) => console.error(line))) {
      console.error(skipLine(p));
      if (p.commands.includes('java') || p.commands.includes('mvn')) javaMissing = true;
    }
  }
  const plan = serverPlan({ ci, wholeSuite, javaMissing, env: process.env });
  const managed = plan.elasticsearch;
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  // Never let a stale control URL from the outer environment point tests at someone else's node.
  delete childEnv.ELASTICSEARCH_MANAGED;
  delete childEnv.ELASTICSEARCH_CONTROL_URL;

  let node: ElasticsearchNode | undefined;
  let s3: S3MockServer | undefined;
  let extra: ExtraServers | undefined;
  let control: Server | undefined;
  let child: ChildProcess | undefined;

  let cleanupPromise: Promise<void> | undefined;
  const cleanup = (): Promise<void> =>
    (cleanupPromise ??= (async () => {
      control?.close();
      control?.closeAllConnections();
      await s3?.stop().catch(() => {});
      await extra?.destroy().catch(() => {});
      if (node) {
        await node.destroy().catch((err: unknown) => {
          console.error(`[run-tests] failed to clean up Elasticsearch: ${String(err)}`);
        });
      }
    })());

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (signalled) {
      // Second Ctrl-C: give up waiting; the 'exit' safety net SIGKILLs Elasticsearch.
      process.exit(128 + signalNumber(signal));
    }
    signalled = true;
    console.error(`\n[run-tests] ${signal}: stopping tests and Elasticsearch…`);
    child?.kill(signal);
    void cleanup().then(() => process.exit(128 + signalNumber(signal)));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // S3Mock (bucket-source tests) starts beside Elasticsearch, in parallel: both take a while.
  delete childEnv.TEST_S3_URL;
  const s3Wanted = plan.s3;
  const s3Start = s3Wanted ? launchS3Mock((line) => console.error(line)).then((server) => (s3 = server)) : null;
  s3Start?.catch(() => {});
  // OpenSearch and Kafka (their destinations' tests) start beside them, in parallel too, when
  // Elasticsearch would by default (CI, or the whole suite with Java) or when asked.
  for (const name of EXTRA_SERVER_ENV) delete childEnv[name];
  const extraByDefault = ci || (wholeSuite && !javaMissing);
  const extraStart = launchExtraServers({
    opensearch: process.env.TEST_OPENSEARCH === 'managed' || (extraByDefault && process.env.TEST_OPENSEARCH !== 'external'),
    kafka: process.env.TEST_KAFKA === 'managed' || (extraByDefault && process.env.TEST_KAFKA !== 'external'),
    log: (line) => console.error(line),
  }).then((servers) => (extra = servers));
  extraStart.catch(() => {});
  if (managed) {
    const verbose = process.env.ES_VERBOSE === '1' || process.env.ES_VERBOSE === 'true';
    const started = Date.now();
    console.error('[run-tests] launching a managed Elasticsearch node…');
    try {
      node = await launchElasticsearch({
        log: (line) => {
          if (verbose || line.startsWith('[es-harness]')) console.error(verbose ? `[es] ${line}` : line);
        },
      });
    } catch (err) {
      // A real server was asked for (explicitly or by CI); pretending otherwise would hide a broken setup.
      console.error(
        `\n[run-tests] FAILED to start Elasticsearch${ci ? ' (CI=true: a missing server is a failure)' : ' (npm test runs the real-server tests; ELASTICSEARCH_URL=http://… uses a server of yours)'}:\n` +
          (err instanceof Error ? err.message : String(err)),
      );
      process.exit(1);
    }
    if (signalled) return;
    console.error(`[run-tests] Elasticsearch ${node.version} at ${node.url} (ready in ${Date.now() - started} ms)`);
    control = await startControlServer(node);
    const address = control.address();
    if (!address || typeof address === 'string') throw new Error('control server has no port');
    childEnv.ELASTICSEARCH_URL = node.url;
    childEnv.ELASTICSEARCH_MANAGED = '1';
    childEnv.ELASTICSEARCH_CONTROL_URL = `http://127.0.0.1:${address.port}`;
    childEnv.ELASTICSEARCH_VERSION = node.version;
  } else if (process.env.ELASTICSEARCH_URL) {
    console.error(`[run-tests] using Elasticsearch at ${process.env.ELASTICSEARCH_URL} (ELASTICSEARCH_URL)`);
  } else if (!javaMissing) {
    printSkipBanner();
  }

  if (s3Start) {
    try {
      await s3Start;
    } catch (err) {
      console.error(`\n[run-tests] FAILED to start S3Mock${ci ? ' (CI=true: a missing server is a failure)' : ''}:\n${err instanceof Error ? err.message : String(err)}`);
      await cleanup();
      process.exit(1);
    }
    console.error(`[run-tests] S3Mock at ${s3!.url}`);
    childEnv.TEST_S3_URL = s3!.url;
  } else if (process.env.TEST_S3_URL) {
    childEnv.TEST_S3_URL = process.env.TEST_S3_URL;
  }

  try {
    await extraStart;
  } catch (err) {
    console.error(`\n[run-tests] FAILED to start OpenSearch or Kafka${ci ? ' (CI=true: a missing server is a failure)' : ''}:\n${err instanceof Error ? err.message : String(err)}`);
    await cleanup();
    process.exit(1);
  }
  Object.assign(childEnv, extra!.env);
  for (const name of ['TEST_OPENSEARCH_URL', 'TEST_KAFKA_BROKERS']) {
    if (!childEnv[name] && process.env[name]) childEnv[name] = process.env[name];
  }

  const testFiles = hasPaths ? [] : await findTestFiles(path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..'));
  if (!hasPaths && testFiles.length === 0) {
    console.error('[run-tests] no test files found under dist/test');
    await cleanup();
    process.exit(1);
  }

  // One file at a time: the integration files share one Elasticsearch node, and one of them stops it.
  child = spawn(process.execPath, ['--test', '--test-concurrency=1', ...args, ...testFiles], { stdio: 'inherit', env: childEnv });
  const exitCode = await new Promise<number>((resolve) => {
    child!.once('error', (err) => {
      console.error(`[run-tests] could not start node --test: ${err.message}`);
      resolve(1);
    });
    child!.once('exit', (code, signal) => resolve(code ?? (signal ? 128 + signalNumber(signal) : 1)));
  });
  await cleanup();
  process.exit(exitCode);
}

function startControlServer(node: ElasticsearchNode): Promise<Server> {
  // One action at a time, in request order, so a test's stop→start sequence is never reordered.
  let queue: Promise<unknown> = Promise.resolve();
  const server = createServer((req, res) => {
    const action = req.method === 'POST' ? req.url : undefined;
    if (action !== '/stop' && action !== '/start') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('POST /stop or POST /start\n');
      return;
    }
    req.resume();
    const run = () => (action === '/stop' ? node.stop() : node.start());
    const done = queue.then(run, run);
    queue = done.catch(() => {});
    done.then(
      () => res.writeHead(200, { 'content-type': 'text/plain' }).end(action === '/stop' ? 'stopped\n' : 'started\n'),
      (err: unknown) => {
        console.error(`[run-tests] control ${action} failed: ${err instanceof Error ? err.message : String(err)}`);
        res.writeHead(500, { 'content-type': 'text/plain' }).end(err instanceof Error ? err.message : String(err));
      },
    );
  });
  // Long restarts must not be cut off by the default request timeouts.
  server.requestTimeout = 0;
  server.headersTimeout = 0;
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

/**
 * Node's own naming conventions, minus its "anything inside a test/ directory" rule: everything
 * under dist/test is inside test/, and support/, helpers/ and bench/ modules are not tests.
 */
async function findTestFiles(dir: string): Promise<string[]> {
  const found: string[] = [];
  const walk = async (current: string): Promise<void> => {
    const entries = await readdir(current, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const full = path.join(current, entry.name);
      if (entry.isDirectory()) {
        if (entry.name !== 'node_modules') await walk(full);
      } else if (entry.isFile()) {
        const match = /^(.*)\.[cm]?js$/.exec(entry.name);
        const stem = match?.[1];
        if (stem && (stem === 'test' || /^test-.+/.test(stem) || /.+[.\-_]test$/.test(stem))) found.push(full);
      }
    }
  };
  await walk(dir);
  return found.sort().map((file) => path.relative(process.cwd(), file) || file);
}

function printSkipBanner(): void {
  const lines = [
    'ELASTICSEARCH INTEGRATION TESTS WILL BE SKIPPED',
    '',
    'Chosen files, no ELASTICSEARCH_URL, TEST_ELASTICSEARCH not "managed".',
    'To run them against a real node started by this runner:',
    '    TEST_ELASTICSEARCH=managed TEST_S3=managed node dist/test/support/run-tests.js <files>',
    'or run the whole suite (npm test), which always starts one;',
    'or point them at an existing server:',
    '    ELASTICSEARCH_URL=http://127.0.0.1:9200 npm test',
  ];
  const width = Math.max(...lines.map((l) => l.length)) + 4;
  const bar = '!'.repeat(width + 4);
  console.error(['', bar, ...lines.map((l) => `!! ${l.padEnd(width - 2)} !!`), bar, ''].join('\n'));
}

function signalNumber(signal: NodeJS.Signals): number {
  return os.constants.signals[signal] ?? 1;
}
