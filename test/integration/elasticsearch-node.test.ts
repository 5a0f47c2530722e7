/**
 * Checks that the Elasticsearch the tests get (usually the stripped-down integ-test-zip node from
 * test/support/elasticsearch.ts) supports what the Elasticsearch sink relies on.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test, type TestContext } from 'node:test';
import { requireElasticsearch } from '../helpers/elasticsearch-env.js';

interface EsResponse {
  status: number;
  // Raw ES JSON; the tests assert on it field by field.
  body: any;
}

async function es(url: string, method: string, path: string, body?: unknown): Promise<EsResponse> {
  const isNdjson = typeof body === 'string';
  const res = await fetch(`${url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': isNdjson ? 'application/x-ndjson' : 'application/json' },
    body: body === undefined ? undefined : isNdjson ? body : JSON.stringify(body),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // Some errors (e.g. 405) may not be JSON; keep the text for the assertion message.
  }
  return { status: res.status, body: parsed };
}

function ndjson(...lines: unknown[]): string {
  return lines.map((line) => JSON.stringify(line)).join('\n') + '\n';
}

test('Elasticsearch answers GET /_cluster/health', async (t) => {
  const url = requireElasticsearch(t);
  if (!url) return;
  const res = await es(url, 'GET', '/_cluster/health');
  assert.equal(res.status, 200, JSON.stringify(res.body));
  assert.ok(['green', 'yellow'].includes(res.body.status), `cluster status ${res.body.status}`);
});

test('data stream via composable index template + _bulk create', async (t) => {
  const url = requireElasticsearch(t);
  if (!url) return;
  // The namespace is unique per run: the integ-test-zip has no DELETE /_data_stream, so a data stream
  // created here outlives the test on a long-lived server and must not collide with the next run.
  // The template name is fixed so re-runs overwrite it (allowed while in use) instead of adding a
  // second template with the same pattern and priority, which Elasticsearch rejects.
  const run = randomBytes(4).toString('hex');
  const templateName = 'lprtest-probe';
  const dataStream = `logs-lprtest.probe-${run}`;

  t.after(() => cleanupDataStream(t, url, dataStream, templateName));

  const template = await es(url, 'PUT', `/_index_template/${templateName}`, {
    index_patterns: ['logs-lprtest.*-*'],
    data_stream: {},
    priority: 200,
  });
  assert.equal(template.status, 200, JSON.stringify(template.body));

  const bulkBody = ndjson(
    { create: { _index: dataStream, _id: 'x1' } },
    { '@timestamp': new Date().toISOString(), message: 'probe' },
  );
  const first = await es(url, 'POST', '/_bulk', bulkBody);
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(first.body.errors, false, JSON.stringify(first.body));
  const created = first.body.items[0].create;
  assert.equal(created.status, 201, JSON.stringify(created));
  assert.match(created._index, new RegExp(`^\\.ds-${dataStream}-`), 'document lands in a data stream backing index');

  const second = await es(url, 'POST', '/_bulk', bulkBody);
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.equal(second.body.errors, true);
  const conflict = second.body.items[0].create;
  assert.equal(conflict.status, 409, JSON.stringify(conflict));
  assert.equal(conflict.error.type, 'version_conflict_engine_exception');

  const refresh = await es(url, 'POST', `/${dataStream}/_refresh`);
  assert.equal(refresh.status, 200, JSON.stringify(refresh.body));
  const count = await es(url, 'GET', `/${dataStream}/_count`);
  assert.equal(count.status, 200, JSON.stringify(count.body));
  assert.equal(count.body.count, 1);

  // GET /_data_stream may be missing (integ-test-zip); _resolve/index is in core and also proves
  // the name resolved to a data stream rather than a plain index.
  const resolved = await es(url, 'GET', `/_resolve/index/${dataStream}`);
  assert.equal(resolved.status, 200, JSON.stringify(resolved.body));
  assert.deepEqual(
    resolved.body.data_streams.map((ds: { name: string }) => ds.name),
    [dataStream],
  );
});

async function cleanupDataStream(t: TestContext, url: string, dataStream: string, templateName: string): Promise<void> {
  const del = await es(url, 'DELETE', `/_data_stream/${dataStream}`);
  if (del.status === 200 || del.status === 404) {
    const tpl = await es(url, 'DELETE', `/_index_template/${templateName}`);
    if (tpl.status !== 200 && tpl.status !== 404) t.diagnostic(`could not delete template ${templateName}: ${tpl.status}`);
    return;
  }
  // Without the data-streams module (integ-test-zip) a data stream cannot be deleted: its write index
  // is protected and its template is "in use". The managed node's data dir is thrown away anyway.
  t.diagnostic(
    `DELETE /_data_stream unsupported here (HTTP ${del.status}); leaving data stream ${dataStream} and template ${templateName}`,
  );
}

test('field types available to index mappings (informational)', async (t) => {
  const url = requireElasticsearch(t);
  if (!url) return;
  const run = randomBytes(4).toString('hex');
  const types: Record<string, Record<string, unknown>> = {
    ip: { type: 'ip' },
    date: { type: 'date' },
    date_nanos: { type: 'date_nanos' },
    long: { type: 'long' },
    double: { type: 'double' },
    keyword: { type: 'keyword' },
    boolean: { type: 'boolean' },
    flattened: { type: 'flattened' },
    wildcard: { type: 'wildcard' },
    match_only_text: { type: 'match_only_text' },
    constant_keyword: { type: 'constant_keyword', value: 'x' },
  };
  const unsupported: string[] = [];
  for (const [name, mapping] of Object.entries(types)) {
    const index = `lprtest-map-${run}-${name.replace(/_/g, '-')}`;
    const res = await es(url, 'PUT', `/${index}`, { mappings: { properties: { f: mapping } } });
    if (res.status === 200) {
      await es(url, 'DELETE', `/${index}`);
    } else {
      unsupported.push(name);
    }
    t.diagnostic(`mapping type ${name}: ${res.status === 200 ? 'supported' : `NOT supported (HTTP ${res.status})`}`);
  }
  // These are in the server module itself, so every distribution must have them.
  for (const core of ['ip', 'date', 'date_nanos', 'long', 'double', 'keyword', 'boolean', 'flattened']) {
    assert.ok(!unsupported.includes(core), `core mapping type ${core} must be available`);
  }
});
