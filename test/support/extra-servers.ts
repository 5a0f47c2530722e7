/**
 * OpenSearch and Kafka for the test run: started in parallel (with Elasticsearch and S3Mock, by
 * run-tests.ts), each with a control server tests use to stop, kill -9 and restart it.
 */
import { createServer, type Server } from 'node:http';
import { launchKafka, type KafkaBroker } from './kafka.js';
import { launchOpenSearch, type OpenSearchNode } from './opensearch.js';

/** Every variable launchExtraServers may set: the runner clears them from its own environment first. */
export const EXTRA_SERVER_ENV = [
  'TEST_OPENSEARCH_URL', 'TEST_OPENSEARCH_CONTROL_URL',
  'TEST_KAFKA_BROKERS', 'TEST_KAFKA_SASL_BROKERS', 'TEST_KAFKA_TLS_BROKERS', 'TEST_KAFKA_SASL_TLS_BROKERS', 'TEST_KAFKA_CA_FILE', 'TEST_KAFKA_CONTROL_URL',
] as const;

export interface ExtraServers {
  /** TEST_OPENSEARCH_URL, TEST_KAFKA_BROKERS and their control URLs, for the test processes. */
  readonly env: Partial<Record<(typeof EXTRA_SERVER_ENV)[number], string>>;
  destroy(): Promise<void>;
}

interface Controlled {
  start(): Promise<void>;
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export async function launchExtraServers(opts: { opensearch: boolean; kafka: boolean; log: (line: string) => void }): Promise<ExtraServers> {
  const env: ExtraServers['env'] = {};
  const controls: Server[] = [];
  const harnessOnly = (line: string): void => {
    if (line.includes('-harness]')) opts.log(line);
  };
  const started = Date.now();
  const results = await Promise.allSettled([
    opts.opensearch ? launchOpenSearch(harnessOnly) : Promise.resolve(undefined),
    opts.kafka ? launchKafka(harnessOnly) : Promise.resolve(undefined),
  ]);
  const os = results[0].status === 'fulfilled' ? (results[0].value as OpenSearchNode | undefined) : undefined;
  const kafka = results[1].status === 'fulfilled' ? (results[1].value as KafkaBroker | undefined) : undefined;
  const destroy = async (): Promise<void> => {
    for (const c of controls) {
      c.close();
      c.closeAllConnections();
    }
    await Promise.all([os?.destroy().catch(() => {}), kafka?.destroy().catch(() => {})]);
  };
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed.length > 0) {
    await destroy();
    throw new Error(failed.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join('\n'));
  }
  if (os) {
    env.TEST_OPENSEARCH_URL = os.url;
    env.TEST_OPENSEARCH_CONTROL_URL = await control(os, controls);
    opts.log(`[run-tests] OpenSearch ${os.version} at ${os.url} (ready in ${Date.now() - started} ms)`);
  }
  if (kafka) {
    env.TEST_KAFKA_BROKERS = kafka.bootstrap;
    env.TEST_KAFKA_SASL_BROKERS = kafka.saslBootstrap;
    env.TEST_KAFKA_TLS_BROKERS = kafka.tlsBootstrap;
    env.TEST_KAFKA_SASL_TLS_BROKERS = kafka.saslTlsBootstrap;
    env.TEST_KAFKA_CA_FILE = kafka.caFile;
    env.TEST_KAFKA_CONTROL_URL = await control(kafka, controls);
    opts.log(`[run-tests] Kafka ${kafka.version} at ${kafka.bootstrap} (ready in ${Date.now() - started} ms)`);
  }
  return { env, destroy };
}

function control(server: Controlled, all: Server[]): Promise<string> {
  let queue: Promise<unknown> = Promise.resolve();
  const http = createServer((req, res) => {
    req.resume();
    const action = req.method === 'POST' ? req.url?.slice(1) : undefined;
    if (action !== 'stop' && action !== 'start' && action !== 'kill') {
      res.writeHead(404).end('POST /stop, /kill or /start\n');
      return;
    }
    const run = (): Promise<void> => server[action]();
    const done = queue.then(run, run);
    queue = done.catch(() => {});
    done.then(
      () => res.writeHead(200).end(`${action}\n`),
      (err: unknown) => res.writeHead(500).end(err instanceof Error ? err.message : String(err)),
    );
  });
  http.requestTimeout = 0;
  http.headersTimeout = 0;
  all.push(http);
  return new Promise((resolve, reject) => {
    http.once('error', reject);
    http.listen(0, '127.0.0.1', () => {
      const address = http.address();
      resolve(typeof address === 'object' && address ? `http://127.0.0.1:${address.port}` : '');
    });
  });
}
