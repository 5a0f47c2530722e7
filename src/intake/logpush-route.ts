// POST /logpush/:dataset — what a Logpush https:// job calls. The path names the dataset,
// because nothing in a Logpush request does.
import type { FastifyInstance } from 'fastify'
import { IntakeUnknownDataset } from '../errors.js'
import { clip, type Dataset } from '../pipeline/index.js'
import { receive, type ReceiveOptions } from './receive.js'

export interface LogpushRouteOptions extends ReceiveOptions {
  readonly datasets: ReadonlyMap<string, Dataset>
}

export function logpushRoute(app: FastifyInstance, opts: LogpushRouteOptions): void {
  const known = [...opts.datasets.keys()].join(', ')

  app.post<{ Params: { dataset: string } }>('/logpush/:dataset', async function receiveBatch(request, reply) {
    const dataset = opts.datasets.get(request.params.dataset)
    // The path segment is the sender's: echoed (answer and log) only cut short.
    if (!dataset) throw new IntakeUnknownDataset(clip(request.params.dataset, 64), known)
    const r = await receive(request, reply, opts, dataset)
    switch (r.kind) {
      case 'stored': return { dataset: r.dataset, accepted: r.accepted, rejected: r.rejected }
      case 'duplicate': return { dataset: r.dataset, accepted: r.accepted, rejected: r.rejected, duplicate: true }
      case 'validation': return { dataset: dataset.name, accepted: 0, rejected: 0, validation: true }
      case 'challenge': return { dataset: dataset.name, accepted: 0, rejected: 0, challenge: true }
      case 'empty': return { dataset: dataset.name, accepted: 0, rejected: 0 }
    }
  })
}
