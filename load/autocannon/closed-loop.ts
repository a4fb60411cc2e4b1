/**
 * A closed-loop autocannon run of `POST {"quantity":1}`: each connection
 * sends its next request as soon as its last one is answered, so it measures
 * the most the server answers, not latency at a pace (paced.ts does that).
 */
import autocannon from 'autocannon';
import { resultOf, type Phase } from './results.js';

/** Request i's path and buyer token; without one, every request goes to the url as it is. */
export type RequestPicker = (i: number) => { path: string; token: string };

export interface ClosedLoopOptions {
  connections: number;
  /** Seconds to run, unless `amount` is given. */
  durationS?: number;
  /** Requests to send, then stop. */
  amount?: number;
  pick?: RequestPicker;
  onStatus?: (status: number) => void;
}

export async function runClosedLoop(name: string, url: string, opts: ClosedLoopOptions): Promise<Phase> {
  let i = 0;
  const instance = autocannon({
    url,
    connections: opts.connections,
    pipelining: 1,
    ...(opts.amount ? { amount: opts.amount } : { duration: opts.durationS ?? 10 }),
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: '{"quantity":1}',
    requests: [
      {
        setupRequest: (req: autocannon.Request): autocannon.Request => {
          if (!opts.pick) return req;
          const p = opts.pick(i++);
          return { ...req, path: p.path, headers: { ...req.headers, authorization: `Bearer ${p.token}` } };
        },
        onResponse: (status: number) => opts.onStatus?.(status),
      },
    ],
  } as autocannon.Options);
  return { name, ...resultOf(await instance) };
}
