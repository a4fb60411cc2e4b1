/**
 * A process of connected buyers for the live push phase (phases/live-push-phase.ts),
 * forked with an IPC channel: it opens one connection per buyer it is given,
 * either a WebSocket on `ws /v1/live` (the auth frame, then a subscription to
 * the buyer's own `user/<id>` topic) or an SSE stream on
 * `GET /v1/notifications/stream`, says when all are ready, then notes the
 * moment each one receives a frame carrying the marker it is told to watch
 * for, and reports the count and the latest moment when all have it (or
 * when told to give up).
 *
 * Messages from the parent: {buyers: {id, token}[], kind, url} then {marker}.
 * Messages to the parent: {ready, failed} then {received, lastAt, firstAt}.
 */
import http from 'node:http';
import WebSocket from 'ws';

interface Start {
  buyers: { id: string; token: string }[];
  kind: 'ws' | 'sse';
  url: string;
}

/** Connections opened side by side while connecting (the api's accept queue and this process's CPU bound the rest). */
const OPENING_AT_ONCE = 200;

let marker: string | undefined;
let expected = 0;
let received = 0;
let firstAt = 0;
let lastAt = 0;
const seen = new Set<number>();

function onData(client: number, text: string): void {
  if (marker === undefined || seen.has(client) || !text.includes(marker)) return;
  const at = Date.now();
  seen.add(client);
  received++;
  firstAt ||= at;
  lastAt = at;
  if (received === expected) process.send!({ received, firstAt, lastAt });
}

const agent = new http.Agent({ keepAlive: false, maxSockets: Infinity });

function openSse(client: number, url: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}/v1/notifications/stream`, { agent, headers: { authorization: `Bearer ${token}`, accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`SSE answered ${res.statusCode}`));
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => onData(client, chunk));
      resolve();
    });
    req.on('error', reject);
  });
}

function openWs(client: number, url: string, buyer: { id: string; token: string }): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/v1/live`, { perMessageDeflate: false });
    ws.once('error', reject);
    ws.once('open', () => ws.send(JSON.stringify({ op: 'auth', token: buyer.token })));
    ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      if (text.includes('"authenticated"')) ws.send(JSON.stringify({ op: 'subscribe', topic: `user/${buyer.id}` }));
      else if (text.includes('"subscribed"')) resolve();
      else if (text.includes('"error"') && !text.includes('"topic":"user/')) reject(new Error(text));
      else onData(client, text);
    });
  });
}

process.on('message', async (msg: Start | { marker: string } | { report: true }) => {
  if ('marker' in msg) {
    marker = msg.marker;
    return;
  }
  if ('report' in msg) {
    process.send!({ received, firstAt, lastAt });
    return;
  }
  expected = msg.buyers.length;
  let failed = 0;
  for (let i = 0; i < msg.buyers.length; i += OPENING_AT_ONCE) {
    const batch = msg.buyers.slice(i, i + OPENING_AT_ONCE);
    const opened = await Promise.allSettled(batch.map((b, k) => (msg.kind === 'ws' ? openWs(i + k, msg.url, b) : openSse(i + k, msg.url, b.token))));
    failed += opened.filter((o) => o.status === 'rejected').length;
  }
  process.send!({ ready: msg.buyers.length - failed, failed });
});
