/**
 * A real local webhook receiver (node:http on 127.0.0.1, a free port) that
 * records every request it gets and answers as a test tells it, per path;
 * and what webhook tests share: sellers with keys, events published on the
 * real broker as a worker or the relay publishes them.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Test } from 'tap';
import { connectAmqp } from '../../src/platform/messaging/amqp.js';
import { publisherOf } from '../../src/platform/messaging/publisher.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';
import type { Config } from '../../src/platform/config.js';
import type { System } from './system.js';

export interface Received {
  path: string;
  headers: Record<string, string>;
  body: string;
}

/** What the receiver answers a request with; `hang`: never (the connection stays open until the receiver closes). */
export type Answer = { status: number; headers?: Record<string, string>; body?: string } | 'hang';

export interface Receiver {
  url: string;
  received: Received[];
  /** Requests to a path still unanswered (hanging). */
  open(path: string): number;
  /** The most requests to a path that were ever open at once (from arrival to answer or hang-up). */
  maxOpen(path: string): number;
  of(path: string): Received[];
  /** How to answer requests to `path` (the n-th to that path, from 1); 200 unless said. */
  answer(path: string, how: (n: number, r: Received) => Answer): void;
  /** Ends every hanging request with this answer. */
  release(path: string, status?: number): void;
}

export async function startReceiver(t: Test): Promise<Receiver> {
  const received: Received[] = [];
  const rules = new Map<string, (n: number, r: Received) => Answer>();
  const hanging = new Map<string, ServerResponse[]>();
  const openNow = new Map<string, number>();
  const openMax = new Map<string, number>();
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const p = req.url ?? '/';
    openNow.set(p, (openNow.get(p) ?? 0) + 1);
    openMax.set(p, Math.max(openMax.get(p) ?? 0, openNow.get(p)!));
    res.on('close', () => openNow.set(p, openNow.get(p)! - 1));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string') headers[k] = v;
      const r: Received = { path, headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(r);
      const n = received.filter((x) => x.path === path).length;
      const a = rules.get(path)?.(n, r) ?? { status: 200 };
      if (a === 'hang') {
        hanging.set(path, [...(hanging.get(path) ?? []), res]);
        return;
      }
      res.writeHead(a.status, a.headers ?? {});
      res.end(a.body ?? '');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => {
    for (const list of hanging.values()) for (const res of list) res.destroy();
    server.closeAllConnections();
    server.close(() => r());
  }));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    open: (path) => (hanging.get(path) ?? []).filter((res) => !res.writableEnded && !res.destroyed).length,
    maxOpen: (path) => openMax.get(path) ?? 0,
    of: (path) => received.filter((r) => r.path === path),
    answer: (path, how) => void rules.set(path, how),
    release(path, status = 200) {
      for (const res of hanging.get(path) ?? []) if (!res.writableEnded && !res.destroyed) res.writeHead(status).end();
      hanging.delete(path);
    },
  };
}

/** A new seller and its API key, made through the operators' API. */
export async function newSeller(sys: System, name = 'a seller'): Promise<{ id: string; key: string }> {
  const r = await sys.operator('/v1/sellers', { method: 'POST', body: JSON.stringify({ name }) });
  if (r.status !== 201) throw new Error(`POST /v1/sellers answered ${r.status}`);
  return { id: r.body.id, key: r.body.apiKey };
}

/** Publishes CloudEvents on the topic exchange, as the relay and the workers do. */
export async function publishEvents(cfg: Config, events: CloudEvent[]): Promise<void> {
  const conn = await connectAmqp(cfg.STAMPEDE_AMQP_URL, 'test webhooks publisher');
  try {
    const ch = await conn.createConfirmChannel();
    await publisherOf(ch).publishEvents(cfg.topology.exchange, events);
  } finally {
    await conn.close();
  }
}

let n = 0;
/** A purchase.confirmed announcement of a sale, as order settlement publishes it. */
export function confirmedEvent(saleId: string, buyerId: string, purchaseId: string): CloudEvent {
  n++;
  return {
    specversion: '1.0', id: `${purchaseId}:confirmed`, source: 'stampede:order-settlement', type: 'stampede.purchase.confirmed.v1',
    time: new Date().toISOString(), subject: saleId, datacontenttype: 'application/json',
    data: { purchaseId, saleId, buyerId, quantity: 1, unitPrice: 1000 + n, currency: 'EUR', amount: 1000 + n, settledAt: Date.now() },
  };
}
