/**
 * How test files find the OpenSearch node and Kafka broker that test/support/run-tests.ts starts
 * (TEST_OPENSEARCH_URL, TEST_KAFKA_BROKERS), and stop, kill or restart them through its control
 * server. Without them a test skips loudly; with CI=true it fails.
 */
import type { TestContext } from 'node:test';

type Server = 'opensearch' | 'kafka';

const ENV: Record<Server, { value: string; control: string; how: string }> = {
  opensearch: { value: 'TEST_OPENSEARCH_URL', control: 'TEST_OPENSEARCH_CONTROL_URL', how: 'TEST_OPENSEARCH=managed' },
  kafka: { value: 'TEST_KAFKA_BROKERS', control: 'TEST_KAFKA_CONTROL_URL', how: 'TEST_KAFKA=managed' },
};

function require(server: Server, t: TestContext): string | undefined {
  const value = process.env[ENV[server].value]?.trim().replace(/\/+$/, '');
  if (value) return value;
  const how = `run with ${ENV[server].how} (or CI=true) to start a real ${server} server`;
  if (process.env.CI === 'true') throw new Error(`${server} is required in CI but ${ENV[server].value} is not set (${how})`);
  console.warn(`\n!!!!!!!! ${server.toUpperCase()} INTEGRATION TEST "${t.name}" SKIPPED: ${how} !!!!!!!!\n`);
  t.skip(`no ${server}: ${how}`);
  return undefined;
}

export const requireOpenSearch = (t: TestContext): string | undefined => require('opensearch', t);
export const requireKafka = (t: TestContext): string | undefined => require('kafka', t);

/** stop: SIGTERM; kill: SIGKILL (a crash); start: same data and port, resolves once ready. */
export async function controlServer(server: Server, action: 'stop' | 'kill' | 'start'): Promise<void> {
  const base = process.env[ENV[server].control];
  if (!base) throw new Error(`${server} is not managed by the test runner (${ENV[server].control} unset)`);
  const res = await fetch(`${base}/${action}`, { method: 'POST', signal: AbortSignal.timeout(180_000) });
  if (!res.ok) throw new Error(`${server} control ${action} failed: HTTP ${res.status}: ${await res.text()}`);
}
