// The names and types /metrics exposes are an interface: dashboards and alert rules are built on
// them. These tests fail when a family appears, disappears or changes type without this list (and
// docs/operations.md's metrics table) changing with it.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { typeLines } from '../helpers/metric-names.js'
import { packageRoot } from '../../src/paths.js'

/** Every `# TYPE` line, in the order /metrics writes them: prom-client's defaults, then ours. */
const GOLDEN = `
# TYPE process_cpu_user_seconds_total counter
# TYPE process_cpu_system_seconds_total counter
# TYPE process_cpu_seconds_total counter
# TYPE process_start_time_seconds gauge
# TYPE process_resident_memory_bytes gauge
# TYPE process_virtual_memory_bytes gauge
# TYPE process_heap_bytes gauge
# TYPE process_open_fds gauge
# TYPE process_max_fds gauge
# TYPE nodejs_eventloop_lag_seconds gauge
# TYPE nodejs_eventloop_lag_min_seconds gauge
# TYPE nodejs_eventloop_lag_max_seconds gauge
# TYPE nodejs_eventloop_lag_mean_seconds gauge
# TYPE nodejs_eventloop_lag_stddev_seconds gauge
# TYPE nodejs_eventloop_lag_p50_seconds gauge
# TYPE nodejs_eventloop_lag_p90_seconds gauge
# TYPE nodejs_eventloop_lag_p99_seconds gauge
# TYPE nodejs_active_resources gauge
# TYPE nodejs_active_resources_total gauge
# TYPE nodejs_active_handles gauge
# TYPE nodejs_active_handles_total gauge
# TYPE nodejs_active_requests gauge
# TYPE nodejs_active_requests_total gauge
# TYPE nodejs_heap_size_total_bytes gauge
# TYPE nodejs_heap_size_used_bytes gauge
# TYPE nodejs_external_memory_bytes gauge
# TYPE nodejs_heap_space_size_total_bytes gauge
# TYPE nodejs_heap_space_size_used_bytes gauge
# TYPE nodejs_heap_space_size_available_bytes gauge
# TYPE nodejs_version_info gauge
# TYPE nodejs_gc_duration_seconds histogram
# TYPE lpr_build_info gauge
# TYPE lpr_batches_accepted_total counter
# TYPE lpr_lines_accepted_total counter
# TYPE lpr_batches_deduplicated_total counter
# TYPE lpr_validation_uploads_total counter
# TYPE lpr_challenges_total counter
# TYPE lpr_lines_rejected_total counter
# TYPE lpr_unknown_field_lines_total counter
# TYPE lpr_type_mismatch_lines_total counter
# TYPE lpr_lines_delivered_total counter
# TYPE lpr_lines_duplicate_total counter
# TYPE lpr_lines_dead_lettered_total counter
# TYPE lpr_delivery_duration_seconds histogram
# TYPE lpr_shaped_lines_total counter
# TYPE lpr_http_requests_total counter
# TYPE lpr_http_request_duration_seconds histogram
# TYPE lpr_spool_bytes gauge
# TYPE lpr_spool_high_watermark_bytes gauge
# TYPE lpr_spool_accepting gauge
# TYPE lpr_spool_fsyncs_total counter
# TYPE lpr_spool_damaged_segments gauge
# TYPE lpr_sink_pending_lines gauge
# TYPE lpr_sink_pending_bytes gauge
# TYPE lpr_sink_oldest_pending_age_seconds gauge
# TYPE lpr_sink_up gauge
# TYPE lpr_sink_set_up gauge
# TYPE lpr_sink_stopped gauge
# TYPE lpr_source_objects_seen_total counter
# TYPE lpr_source_objects_done_total counter
# TYPE lpr_source_objects_failed_total counter
# TYPE lpr_source_newest_done_lag_seconds gauge
# TYPE lpr_source_up gauge
# TYPE lpr_logpush_job_enabled gauge
# TYPE lpr_logpush_job_failing gauge
# TYPE lpr_logpush_job_lagging gauge
# TYPE lpr_logpush_job_uploads gauge
# TYPE lpr_logpush_job_last_complete_timestamp_seconds gauge
# TYPE lpr_logpush_job_lag_seconds gauge
# TYPE lpr_watchdog_poll_errors_total counter
# TYPE lpr_watchdog_last_poll_timestamp_seconds gauge
# TYPE lpr_collector_records_total counter
# TYPE lpr_collector_lag_seconds gauge
# TYPE lpr_collector_up gauge
# TYPE lpr_collector_errors_total counter
# TYPE nodejs_heap_used_bytes gauge
`.trim().split('\n')

test('every # TYPE line of /metrics is pinned', async () => {
  assert.deepEqual(await typeLines(), GOLDEN)
})

test('every metric docs/operations.md documents is exported', async () => {
  const readme = readFileSync(join(packageRoot, 'docs', 'operations.md'), 'utf8')
  const section = readme.slice(readme.indexOf('| metric | labels | meaning |'))
  const table = section.slice(0, section.indexOf('\n\n'))
  const documented = [...table.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!).filter((n) => /^(lpr|process|nodejs)_/.test(n))
  assert.ok(documented.length >= 20, `docs/operations.md's metrics table found (${documented.length} names)`)
  const exported = new Set((await typeLines()).map((l) => l.split(' ')[2]))
  for (const name of documented) assert.ok(exported.has(name), `${name} is documented but not exported`)
})
