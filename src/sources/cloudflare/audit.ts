// Audit log fetchers (v1 and v2) on the official SDK: it knows the paths, the auth headers and the
// error shapes, and retries 429 (honouring Retry-After) and 5xx itself before giving up to the runner.
//
// Both ask for a little more than the window (SINCE_SLACK_MS each side) and keep exactly the
// records of [start, end) themselves: whether since/before are inclusive, and whether they are cut
// to the second, is not documented precisely enough to bet on. A record is written once per window
// even if pagination shows it twice (a page boundary that moved), by its id.
//
// Sources: cloudflare/api-schemas openapi.json operations audit-logs-get-account-audit-logs (v1:
// since, before, direction, per_page max 1000, page) and audit-logs-v2-get-account-audit-logs (v2:
// since and before required, cursor, limit, direction); cloudflare/cloudflare-typescript
// src/resources/audit-logs.ts and src/resources/accounts/logs/audit.ts.
import type { Writable } from 'node:stream'
import type Cloudflare from 'cloudflare'
import type { RecordMapper } from './mapping.js'
import { inWindow, writeLine, type Window, type WindowFetcher } from './window.js'

const SINCE_SLACK_MS = 1000

/** Told of a record the API returned whose time cannot be read: it belongs to no window, so it is not stored. */
export type UnreadableTime = (id: string | undefined) => void

/** Writes the page's records that belong to the window and were not written before. */
async function writePage(items: readonly unknown[], w: Window, mapper: RecordMapper, seen: Set<string>, out: Writable, signal: AbortSignal, unreadable?: UnreadableTime): Promise<number> {
  let n = 0
  for (const r of items) {
    const at = mapper.time(r)
    if (Number.isNaN(at)) { unreadable?.(mapper.id(r)); continue }
    if (!inWindow(w, at)) continue
    const id = mapper.id(r)
    if (id !== undefined) {
      if (seen.has(id)) continue
      seen.add(id)
    }
    // The line is born here: one JSON text per record, never re-serialised downstream.
    await writeLine(out, JSON.stringify(mapper.map(r)) + '\n', signal)
    n++
  }
  return n
}

const iso = (ms: number): string => new Date(ms).toISOString()

/** Account Audit Logs v1: page pagination, ascending, until a short or empty page (total_count is not trusted). */
export class AuditLogsV1Fetcher implements WindowFetcher {
  constructor (private readonly client: Cloudflare, private readonly account: string, private readonly perPage: number, private readonly mapper: RecordMapper, private readonly unreadable?: UnreadableTime) {}

  async fetch(w: Window, out: Writable, signal: AbortSignal): Promise<{ records: number }> {
    const seen = new Set<string>()
    let records = 0
    for (let page = 1; ; page++) {
      const res = await this.client.auditLogs.list({
        account_id: this.account,
        since: iso(w.start - SINCE_SLACK_MS),
        before: iso(w.end + SINCE_SLACK_MS),
        direction: 'asc',
        per_page: this.perPage,
        page
      }, { signal })
      const items = res.getPaginatedItems()
      records += await writePage(items, w, this.mapper, seen, out, signal, this.unreadable)
      if (items.length < this.perPage) return { records }
    }
  }
}

/** Audit Logs v2: cursor pagination, ascending, until no cursor. */
export class AuditLogsV2Fetcher implements WindowFetcher {
  constructor (private readonly client: Cloudflare, private readonly account: string, private readonly perPage: number, private readonly mapper: RecordMapper, private readonly unreadable?: UnreadableTime) {}

  async fetch(w: Window, out: Writable, signal: AbortSignal): Promise<{ records: number }> {
    const seen = new Set<string>()
    let records = 0
    let cursor: string | undefined
    do {
      const res = await this.client.accounts.logs.audit.list({
        account_id: this.account,
        since: iso(w.start - SINCE_SLACK_MS),
        before: iso(w.end + SINCE_SLACK_MS),
        direction: 'asc',
        limit: this.perPage,
        ...(cursor !== undefined ? { cursor } : {})
      }, { signal })
      const items = res.getPaginatedItems()
      records += await writePage(items, w, this.mapper, seen, out, signal, this.unreadable)
      // The SDK's page type reads result_info.cursors.after; the published schema (aaa_result_info)
      // says result_info.cursor. Either one continues the listing.
      const info = res.result_info as { cursors?: { after?: unknown }, cursor?: unknown } | undefined
      const next = info?.cursors?.after ?? info?.cursor
      // An empty page with a cursor would loop for ever: the end, whatever the cursor says.
      cursor = items.length > 0 && typeof next === 'string' && next !== '' ? next : undefined
    } while (cursor !== undefined)
    return { records }
  }
}
