/**
 * How test files find the Elasticsearch node that test/support/run-tests.ts provides.
 * The node itself lives in the runner process; tests only see environment variables.
 */
import type { TestContext } from 'node:test';

const HOW_TO_ENABLE =
  '`npm test` (the whole suite) starts a real node; for chosen files run `TEST_ELASTICSEARCH=managed node dist/test/support/run-tests.js <files>`, or set ELASTICSEARCH_URL=http://host:9200';

export function elasticsearchUrl(): string | undefined {
  const url = process.env.ELASTICSEARCH_URL?.trim();
  // Tests build URLs as `${url}/_bulk`; a trailing slash would produce `//_bulk`.
  return url ? url.replace(/\/+$/, '') : undefined;
}

/**
 * Returns the Elasticsearch URL, or skips the test loudly when there is none.
 * In CI a missing server is a failure, never a skip.
 */
export function requireElasticsearch(t: TestContext): string | undefined {
  const url = elasticsearchUrl();
  if (url) return url;
  if (process.env.CI === 'true') {
    throw new Error(`Elasticsearch is required in CI but ELASTICSEARCH_URL is not set (${HOW_TO_ENABLE})`);
  }
  const reason = `SKIPPED: no Elasticsearch (ELASTICSEARCH_URL not set) — ${HOW_TO_ENABLE}`;
  console.warn(`\n!!!!!!!! ELASTICSEARCH INTEGRATION TEST "${t.name}" ${reason} !!!!!!!!\n`);
  t.skip(reason);
  return undefined;
}

export function isManagedElasticsearch(): boolean {
  return process.env.ELASTICSEARCH_MANAGED === '1' && Boolean(process.env.ELASTICSEARCH_CONTROL_URL);
}

/** Stops the managed node (data kept); resolves once it has exited. */
export function stopManagedElasticsearch(): Promise<void> {
  return control('stop');
}

/** Restarts the managed node on the same URL and data; resolves once it is healthy. */
export function startManagedElasticsearch(): Promise<void> {
  return control('start');
}

async function control(action: 'stop' | 'start'): Promise<void> {
  const base = process.env.ELASTICSEARCH_CONTROL_URL;
  if (!isManagedElasticsearch() || !base) {
    throw new Error(
      `Cannot ${action} Elasticsearch: it is not managed by the test runner ` +
        '(ELASTICSEARCH_CONTROL_URL unset; use TEST_ELASTICSEARCH=managed, and guard with isManagedElasticsearch())',
    );
  }
  // Startup may take up to the runner's 120 s timeout; allow a little more before giving up.
  const res = await fetch(`${base.replace(/\/+$/, '')}/${action}`, {
    method: 'POST',
    signal: AbortSignal.timeout(180_000),
  });
  const body = await res.text();
  if (!res.ok) throw new Error(`Elasticsearch control ${action} failed: HTTP ${res.status}: ${body}`);
}
