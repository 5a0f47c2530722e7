// `schemas check`: our field reference (schemas/reference/datasets.json, which generates schemas/)
// against Cloudflare's live field list of every dataset of a zone or an account, and with --write
// the reference updated and the changed datasets' schemas regenerated. Cloudflare adds fields
// often; a field it sends before we know it is kept but only counted (/health unknownFields).
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { schemasDir } from '../paths.js'
import { applyAll, compareDataset, hasNews, liveFields, type DatasetDrift } from '../datasets/check.js'
import { generateSchemas, schemaText } from '../datasets/generate.js'
import { defaultReferencePath, loadReference, referenceText, scopesOf } from '../datasets/reference.js'
import { Quiet, scopeFor, UsageError } from './job-request.js'
import type { Command } from './run.js'

interface Row {
  readonly dataset: string
  readonly drift?: DatasetDrift
  readonly live?: ReadonlyMap<string, string>
  readonly error?: string
}

function names(list: readonly string[]): string {
  return list.join(', ')
}

function rowText(r: Row): string[] {
  if (r.error !== undefined) return [`${r.dataset}: could not read Cloudflare's field list: ${r.error}`]
  const d = r.drift!
  const lines: string[] = []
  if (d.added.length > 0) lines.push(`${r.dataset}: ${d.added.length} field(s) Cloudflare has that our schema lacks: ${names(d.added)}`)
  if (d.dropped.length > 0) lines.push(`${r.dataset}: ${d.dropped.length} field(s) we have that Cloudflare dropped: ${names(d.dropped)}`)
  if (d.back.length > 0) lines.push(`${r.dataset}: ${d.back.length} field(s) recorded as dropped that Cloudflare lists again: ${names(d.back)}`)
  if (lines.length === 0) lines.push(`${r.dataset}: same fields (${r.live!.size})${d.knownDropped.length > 0 ? `; ${d.knownDropped.length} recorded as dropped earlier: ${names(d.knownDropped)}` : ''}`)
  return lines
}

export const schemasCheck: Command = {
  summary: 'compare our dataset schemas with Cloudflare\'s live field lists (--write updates them)',
  usage: 'schemas check (--zone Z | --account A) [--dataset D]... [--write]',
  help: `Reads Cloudflare's field list of every dataset of the scope given (GET /zones/{id} or
/accounts/{id}/logpush/datasets/{dataset}/fields; datasets in both scopes are checked in both)
and prints, per dataset, the fields Cloudflare has that our schemas lack and the fields we have
that Cloudflare dropped. Exit code 0 when they agree, 1 when they differ or a list could not be
read (so a scheduled run can alert).

--write adds the new fields to the field reference (schemas/reference/datasets.json) with
Cloudflare's description and an unverified type (the list gives no types: their schema accepts
any value), marks dropped fields deprecated with the date (old jobs may still send them), and
regenerates the changed datasets' schemas/<dataset>.json. Restart the service to use them.

Options:
  --zone Z | --account A  the zone or account whose field lists to read (an API token with Logs Write)
  --dataset D             only this dataset (repeatable; default every dataset of the scope)
  --write                 update the reference and regenerate the schemas
  --reference FILE        the reference to compare and update (default schemas/reference/datasets.json)
  --schemas-dir DIR       where --write regenerates schemas (default this package's schemas/)`,
  options: {
    zone: { type: 'string' },
    account: { type: 'string' },
    dataset: { type: 'string', multiple: true },
    write: { type: 'boolean' },
    reference: { type: 'string' },
    'schemas-dir': { type: 'string' }
  },
  positionals: 0,
  async run(ctx) {
    const scope = scopeFor(null, null, ctx.values.zone as string | undefined, ctx.values.account as string | undefined)
    const referencePath = typeof ctx.values.reference === 'string' ? resolve(ctx.values.reference) : defaultReferencePath
    const outDir = typeof ctx.values['schemas-dir'] === 'string' ? resolve(ctx.values['schemas-dir']) : schemasDir
    const reference = loadReference(referencePath)
    const kind = scope.kind === 'zones' ? 'zone' : 'account'
    const inScope = Object.keys(reference).filter((id) => scopesOf(reference[id]!).includes(kind)).sort()
    const asked = (ctx.values.dataset as string[] | undefined) ?? []
    for (const id of asked) {
      if (!(id in reference)) throw new UsageError(`unknown dataset "${id}"; known: ${Object.keys(reference).sort().join(', ')}`)
      if (!inScope.includes(id)) throw new UsageError(`${id} is not ${kind === 'zone' ? 'a zone' : 'an account'} dataset (scopes: ${scopesOf(reference[id]!).join(', ')})`)
    }
    const datasets = asked.length > 0 ? [...new Set(asked)].sort() : inScope
    const client = await ctx.client()
    const { apiStatus, describeApiError, isAuthFailure } = await import('../cloudflare-api/client.js')
    const rows: Row[] = []
    for (const dataset of datasets) {
      try {
        const result: unknown = await client.logpush.datasets.fields.get(dataset as never, scope.kind === 'zones' ? { zone_id: scope.id } : { account_id: scope.id })
        const live = liveFields(result)
        rows.push({ dataset, live, drift: compareDataset(dataset, reference[dataset]!, live) })
      } catch (err) {
        // A credential that cannot read one list can read none: stop at the first.
        if (isAuthFailure(err)) throw err
        rows.push({ dataset, error: apiStatus(err) !== undefined ? describeApiError(err) : (err as Error).message })
      }
    }
    const changed = rows.filter((r) => r.drift !== undefined && hasNews(r.drift))
    const failed = rows.filter((r) => r.error !== undefined)
    const lines = rows.flatMap(rowText)
    const label = `${kind} ${scope.id}`
    let written: string[] = []
    if (ctx.values.write === true && changed.length > 0) {
      const today = new Date().toISOString().slice(0, 10)
      const updated = applyAll(reference, changed.map((r) => ({ drift: r.drift!, live: r.live! })), today)
      // Generated before anything is written: a reference the generator refuses (a curated
      // event-time field gone) leaves both files as they were.
      const schemas = generateSchemas(updated)
      writeFileSync(referencePath, referenceText(updated))
      written = changed.map((r) => r.dataset)
      for (const id of written) writeFileSync(join(outDir, `${id}.json`), schemaText(schemas.get(id)!))
      lines.push('', `Wrote ${referencePath} and regenerated ${written.map((id) => `${id}.json`).join(', ')} in ${outDir}. Restart the service to use them.`)
    } else if (changed.length > 0) {
      lines.push('', `Run again with --write to update ${referencePath} and regenerate those schemas.`)
    }
    lines.unshift(`${rows.length} dataset(s) of ${label} against Cloudflare's field lists: ${changed.length} differ, ${failed.length} could not be read.`)
    ctx.out({
      scope: label,
      datasets: rows.map((r) => r.error !== undefined
        ? { dataset: r.dataset, error: r.error }
        : { dataset: r.dataset, fields: r.live!.size, added: r.drift!.added, dropped: r.drift!.dropped, knownDropped: r.drift!.knownDropped, back: r.drift!.back }),
      written
    }, lines.join('\n'))
    if (failed.length > 0 || (changed.length > 0 && ctx.values.write !== true)) throw new Quiet()
  }
}
