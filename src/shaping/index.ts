// Shaping and routing per destination (docs/shaping.md): the spool keeps every line as received;
// each destination's forwarder hands its sink the lines shaped by the rules in force for it.
import type { DeliveryBatch, Rejection } from '../delivery.js'
import { ShapedBatch } from './batch.js'
import type { Shapers } from './config.js'
import { OUTCOMES } from './shaper.js'

export { buildShapers, schemasForElasticsearch, shapingSchema, ipFields, type ShapingRule, type Shapers } from './config.js'
export { compileFilter, FilterError } from './filter.js'
export { ShapedBatch } from './batch.js'
export { buildRouters, routableSinks, tenantRoutes, RoutingSink, type Routers, type RoutingRule, type TenantConfig } from './route.js'
export { Shaper, Tally } from './shaper.js'

export type CountShaped = (dataset: string, rule: string, outcome: string, n: number) => void

/**
 * What a destination's forwarder calls per batch: the shaped view when the destination has rules
 * for the batch's dataset (null otherwise: the stored bytes go out as they are), and the counts
 * to add once the batch is delivered (a failed attempt counts nothing; its retry counts), and
 * the lines the shaping could not handle, to dead-letter for this destination.
 */
export function shapeFor(sink: string, shapers: Shapers, count: CountShaped): ((batch: DeliveryBatch) => { batch: DeliveryBatch, delivered(): void, failed(upTo: number): Rejection[] } | null) | undefined {
  const bySet = shapers.get(sink)
  if (!bySet) return undefined
  return (stored) => {
    const shaper = bySet.get(stored.dataset)
    if (!shaper) return null
    const batch = new ShapedBatch(stored, shaper, sink)
    return {
      batch,
      failed: (upTo) => batch.takeFailed(upTo),
      delivered() {
        shaper.ruleNames.forEach((rule, i) => {
          for (const outcome of OUTCOMES) {
            const n = batch.tally[outcome][i]!
            if (n > 0) count(stored.dataset, rule, outcome, n)
          }
        })
      }
    }
  }
}

/** A destination's shaping in one line (/health, the status page); undefined without any. */
export function describeShaping(sink: string, shapers: Shapers): string | undefined {
  const bySet = shapers.get(sink)
  if (!bySet) return undefined
  return [...bySet].map(([dataset, s]) => `${dataset} [${s.describe()}]`).join('; ')
}
