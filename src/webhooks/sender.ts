/**
 * One HTTP attempt of a webhook delivery: the URL's host is resolved and
 * checked again (ssrf.ts) and the request goes to the address checked; it
 * follows no redirect (3xx is a failure like any other non-2xx), gives up
 * after the timeout, and keeps the first 1 KB of the answer for the
 * delivery's record.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { LookupFunction } from 'node:net';
import { RefusedTargetError, resolveTarget } from './ssrf.js';

export const RESPONSE_KEPT_BYTES = 1024;
/** Past this much of an answer the connection is dropped (the rest is not needed). */
const RESPONSE_READ_BYTES = 64 * 1024;

export interface AttemptResult {
  /** The answer's status, or null when none came (refused, unreachable, timed out). */
  statusCode: number | null;
  latencyMs: number;
  /** The first 1 KB of the answer's body. */
  response: string;
  error: string | null;
  /** Retry-After in ms, on a 429 or 503 that carried one. */
  retryAfterMs?: number;
  /** The target was refused before anything was sent (SSRF). */
  refused?: boolean;
}

export interface SendSettings {
  timeoutMs: number;
  allowPrivate: boolean;
  userAgent?: string;
}

/** Retry-After as seconds or an HTTP date, in ms from `now`; undefined when absent or unreadable. */
export function retryAfterMsOf(value: string | undefined, now = Date.now()): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  if (/^\d{1,10}$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export async function sendAttempt(url: string, headers: Record<string, string>, body: string, s: SendSettings): Promise<AttemptResult> {
  const started = performance.now();
  const latency = () => Math.round(performance.now() - started);
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { statusCode: null, latencyMs: 0, response: '', error: 'the URL is not valid', refused: true };
  }
  let address: { address: string; family: 4 | 6 };
  try {
    address = await resolveTarget(target.hostname, s.allowPrivate);
  } catch (err) {
    return { statusCode: null, latencyMs: latency(), response: '', error: `refused: ${(err as Error).message}`, refused: err instanceof RefusedTargetError };
  }
  // Connect to the address just checked, whatever a second lookup would say.
  const pinned: LookupFunction = (_host, options, callback) => {
    const cb = callback as (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void;
    if ((options as { all?: boolean }).all) cb(null, [{ address: address.address, family: address.family }]);
    else cb(null, address.address, address.family);
  };
  const payload = Buffer.from(body);
  return new Promise<AttemptResult>((resolve) => {
    let done = false;
    const finish = (r: AttemptResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const req = (target.protocol === 'https:' ? httpsRequest : httpRequest)(target, {
      method: 'POST',
      lookup: pinned,
      headers: {
        ...headers, 'content-type': 'application/json', 'content-length': String(payload.length), 'user-agent': s.userAgent ?? 'Stampede-Webhooks/1',
      },
    }, (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let read = 0;
      const settle = () => {
        const status = res.statusCode ?? 0;
        const retryAfterMs = status === 429 || status === 503 ? retryAfterMsOf(res.headers['retry-after']) : undefined;
        finish({
          statusCode: status, latencyMs: latency(), response: Buffer.concat(chunks).subarray(0, RESPONSE_KEPT_BYTES).toString('utf8'),
          error: status >= 200 && status < 300 ? null : `answered ${status}`, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
        });
      };
      res.on('data', (c: Buffer) => {
        if (read < RESPONSE_KEPT_BYTES) chunks.push(c);
        read += c.length;
        if (read > RESPONSE_READ_BYTES) {
          settle();
          res.destroy();
        }
      });
      res.on('end', settle);
      res.on('error', settle);
    });
    const timer = setTimeout(() => {
      finish({ statusCode: null, latencyMs: latency(), response: '', error: `timed out after ${s.timeoutMs} ms` });
      req.destroy();
    }, s.timeoutMs);
    req.on('error', (err) => finish({ statusCode: null, latencyMs: latency(), response: '', error: err.message }));
    req.end(payload);
  });
}
