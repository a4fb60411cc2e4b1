/**
 * An open-loop load generator for latency at a given rate. Requests leave on
 * a fixed schedule, spread evenly over each second, across a fixed set of
 * keep-alive connections (one request in flight per connection). Each
 * latency is measured from the moment its request was due, not from when a
 * connection was free to send it, so a server that falls behind shows its
 * whole queue in the figures (no coordinated omission).
 *
 * Why not autocannon's `overallRate`: it lets each connection send its share
 * of a second back to back at the start of that second and then stay silent,
 * so it measures a burst at full speed, not a pace; and it then corrects for
 * coordinated omission with a 1 ms expected interval, which adds one
 * synthetic sample per millisecond of every slow answer.
 */
import { connect, type Socket } from 'node:net';
import { performance } from 'node:perf_hooks';

export interface PacedOptions {
  host: string;
  port: number;
  connections: number;
  /** Requests per second, spread evenly. */
  rate: number;
  durationS: number;
  /** The raw HTTP/1.1 request i (keep-alive). */
  request: (i: number) => string;
  /** Called with each answer: request i's status and body, as it is read (before the next request leaves). */
  onAnswer?: (i: number, status: number, body: Buffer) => void;
  /** Called with each answer's due time (ms since the run began) and latency (ms): the tail as a time series. */
  onLatency?: (dueMs: number, latencyMs: number) => void;
}

export interface PacedResult {
  requests: number;
  durationS: number;
  statuses: Record<string, number>;
  p50: number;
  p99: number;
  max: number;
}

interface Connection {
  socket: Socket;
  due: number;
  /** The request in flight on it. */
  index: number;
  pending: Buffer;
}

const HEAD_END = Buffer.from('\r\n\r\n');

/** Length of the first complete response in buf, where its body starts, and its status; undefined while it is incomplete. */
function completeResponse(buf: Buffer): { length: number; bodyStart: number; status: number } | undefined {
  const headEnd = buf.indexOf(HEAD_END);
  if (headEnd < 0) return undefined;
  const head = buf.toString('latin1', 0, headEnd);
  const status = Number(head.slice(9, 12));
  const m = /\r\ncontent-length: *(\d+)/i.exec(head);
  const length = headEnd + 4 + (m ? Number(m[1]) : 0);
  return buf.length >= length ? { length, bodyStart: headEnd + 4, status } : undefined;
}

function open(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true }, () => resolve(s));
    s.once('error', reject);
  });
}

const hundredths = (ms: number) => Math.round(ms * 100) / 100;
const percentile = (sorted: number[], p: number) => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!);

export async function runPaced(o: PacedOptions): Promise<PacedResult> {
  const sockets = await Promise.all(Array.from({ length: o.connections }, () => open(o.host, o.port)));
  const total = Math.round(o.rate * o.durationS);
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  const idle: Connection[] = [];
  let next = 0;
  let answered = 0;
  const start = performance.now();
  const dueAt = (i: number) => start + (i * 1000) / o.rate;

  return new Promise<PacedResult>((resolve, reject) => {
    const send = () => {
      const now = performance.now();
      while (next < total && idle.length > 0 && dueAt(next) <= now) {
        const c = idle.pop()!;
        c.due = dueAt(next);
        c.index = next;
        c.socket.write(o.request(next++));
      }
    };
    const finish = () => {
      clearInterval(ticker);
      for (const s of sockets) s.destroy();
      latencies.sort((a, b) => a - b);
      resolve({
        requests: answered, durationS: (performance.now() - start) / 1000, statuses,
        // To 0.01 ms: a bare server's paced p99 is under a millisecond, and the open-loop target is a ratio to it.
        p50: hundredths(percentile(latencies, 50)), p99: hundredths(percentile(latencies, 99)), max: hundredths(latencies.at(-1) ?? 0),
      });
    };
    for (const socket of sockets) {
      const c: Connection = { socket, due: 0, index: -1, pending: Buffer.alloc(0) };
      socket.on('data', (chunk: Buffer) => {
        c.pending = c.pending.length === 0 ? chunk : Buffer.concat([c.pending, chunk]);
        const r = completeResponse(c.pending);
        if (!r) return;
        const latency = performance.now() - c.due;
        latencies.push(latency);
        o.onLatency?.(c.due - start, latency);
        o.onAnswer?.(c.index, r.status, c.pending.subarray(r.bodyStart, r.length));
        c.pending = c.pending.subarray(r.length);
        statuses[r.status] = (statuses[r.status] ?? 0) + 1;
        idle.push(c);
        if (++answered === total) finish();
        else send();
      });
      socket.once('error', reject);
      idle.push(c);
    }
    // A 1 ms tick releases what fell due; answers release the next at once.
    const ticker = setInterval(send, 1);
    send();
  });
}
