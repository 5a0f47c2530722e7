// A stand-in for Elasticsearch's _bulk endpoint, for the answers the test node cannot give: it
// runs without security (a missing privilege cannot happen there), and its answers cannot be
// scripted per item. It follows the real answer format (research/sinks.md A1, C): every 2xx
// carries x-elastic-product, _bulk answers {took, errors, items} in request order with one
// {create: {_index, _id, status[, error{type, reason}]}} per action, and an error answer is
// {error: {type, reason}, status}. Index templates and HEAD / are answered 200.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'

export interface ItemAnswer {
  readonly status: number
  readonly type?: string
  readonly reason?: string
}

export interface BulkCall {
  /** The _id and source text of every create action, in order. */
  readonly docs: Array<{ id: string, source: string, index: string }>
  readonly bytes: number
  /** Delete actions (no source): the sink's probe. */
  readonly deletes: number
}

export class EsDouble {
  readonly bulks: BulkCall[] = []
  /** Answers each document; 201 when unset. */
  onItem: (doc: { id: string, source: string }, call: number) => ItemAnswer = () => ({ status: 201 })
  /** Answers the whole _bulk request instead of its items (e.g. 401 security_exception); unset = items. */
  onRequest: ((call: BulkCall) => { status: number, body: unknown } | undefined) | undefined

  private constructor (private readonly server: Server, readonly url: string) {}

  static async start(): Promise<EsDouble> {
    let double: EsDouble | undefined
    const server = createServer((req, res) => { void double!.handle(req, res) })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    double = new EsDouble(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`)
    return double
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = []
    for await (const c of req) chunks.push(c as Buffer)
    const body = Buffer.concat(chunks)
    const path = (req.url ?? '/').split('?')[0]!
    if (req.method === 'POST' && path.endsWith('/_bulk')) {
      const lines = body.toString('utf8').split('\n')
      const docs: Array<{ id: string, source: string, index: string }> = []
      // A delete (the sink's probe) has no source line; it meets no document here.
      const deletes: number[] = []
      for (let i = 0; i + 1 < lines.length;) {
        const parsed = JSON.parse(lines[i]!) as { create?: { _index: string, _id: string }, delete?: unknown }
        if (parsed.delete) { deletes.push(docs.length); i += 1; continue }
        const action = parsed.create!
        docs.push({ id: action._id, index: action._index, source: lines[i + 1]! })
        i += 2
      }
      const call = { docs, bytes: body.length, deletes: deletes.length }
      this.bulks.push(call)
      const whole = this.onRequest?.(call)
      if (whole) return this.json(res, whole.status, whole.body)
      const items: unknown[] = docs.map((d) => {
        const a = this.onItem({ id: d.id, source: d.source }, this.bulks.length - 1)
        return { create: { _index: `.ds-${d.index}-2026.11.28-000001`, _id: d.id, status: a.status, ...(a.status >= 300 ? { error: { type: a.type ?? 'exception', reason: a.reason ?? 'refused' } } : {}) } }
      })
      for (const at of deletes.reverse()) items.splice(at, 0, { delete: { status: 404, error: { type: 'index_not_found_exception', reason: 'no such index' } } })
      return this.json(res, 200, { took: 1, errors: items.some((i) => ((i as { create?: { status: number } }).create?.status ?? 404) >= 300), items })
    }
    this.json(res, 200, req.method === 'PUT' ? { acknowledged: true } : {})
  }

  private json(res: ServerResponse, status: number, body: unknown): void {
    const text = JSON.stringify(body)
    res.writeHead(status, { 'content-type': 'application/json', 'x-elastic-product': 'Elasticsearch', 'content-length': Buffer.byteLength(text) })
    res.end(text)
  }

  async close(): Promise<void> {
    this.server.closeAllConnections()
    await new Promise<void>((resolve) => this.server.close(() => resolve()))
  }
}
