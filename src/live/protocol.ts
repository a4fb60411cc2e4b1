/**
 * The live protocol of `ws /v1/live` (JSON text frames; docs/live.md):
 *   client: {"op":"auth","token":"<buyer token>"}
 *           {"op":"subscribe","topic":"sale/sal_…"} | {"op":"unsubscribe","topic":…}
 *   server: {"op":"authenticated"}
 *           {"op":"subscribed","topic":…,"snapshot":{…}|null}
 *           {"op":"unsubscribed","topic":…}
 *           {"topic":…,"data":{…}}
 *           {"op":"error","code":…,"detail":…[,"topic":…]}
 * Error codes are the API's own (src/platform/errors.ts). Auction and sale
 * topics are public; a `user/<buyer id>` topic (the buyer's notifications)
 * is only for a connection authenticated as that buyer.
 */
import { AppError, type ErrorCode } from '../platform/errors.js';
import { AUCTION_ID, SALE_ID, USER_ID } from '../platform/ids.js';

/** Limits of one connection. Each is explicit so an operator can reason about memory per socket. */
export const LIVE_LIMITS = {
  /** Largest client frame answered; larger ones get PAYLOAD_TOO_LARGE (operations are ~60 bytes). */
  maxFrameBytes: 4 * 1024,
  /**
   * Hard cap: uWS drops the connection (1006, no close frame) past it, before
   * the frame is buffered whole. Between the two limits the client gets an
   * error frame and keeps its connection.
   */
  maxPayloadLength: 64 * 1024,
  /** Topics one connection may hold. */
  maxTopics: 100,
  /** Operations of one connection queued for an answer (a client may subscribe to all its topics at once). */
  maxPendingOps: 128,
  /** Bytes queued for a slow reader before it is disconnected (closeOnBackpressureLimit). */
  maxBackpressure: 128 * 1024,
  /** Seconds without traffic before uWS closes a connection; it pings automatically before that. */
  idleTimeoutSeconds: 60,
  /** Longest token an `auth` frame may carry (buyer tokens are a few hundred characters; the frame limit stays the larger). */
  maxTokenLength: 2048,
};

export type LiveLimits = typeof LIVE_LIMITS;

/** A topic a message on LIVE_CHANNEL may name (ids per AUCTION_ID and SALE_ID). */
export const TOPIC = /^(?:auction\/auc_[0-9a-z]{12}|sale\/sal_[0-9a-z]{12})$/;

export type TopicOperation = { op: 'subscribe' | 'unsubscribe'; topic: string; kind: 'sale' | 'auction' | 'user'; id: string };
export type AuthOperation = { op: 'auth'; token: string };
export type Operation = TopicOperation | AuthOperation;

export function parseOperation(text: string, limits: Pick<LiveLimits, 'maxTokenLength'> = LIVE_LIMITS): Operation | AppError {
  let msg: unknown;
  try {
    msg = JSON.parse(text);
  } catch {
    return new AppError('MALFORMED_JSON', 'the frame is not valid JSON');
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return new AppError('VALIDATION_FAILED', 'the frame must be a JSON object');
  const { op, topic, token } = msg as { op?: unknown; topic?: unknown; token?: unknown };
  if (op === 'auth') {
    if (typeof token !== 'string' || token.length === 0 || token.length > limits.maxTokenLength) {
      return new AppError('VALIDATION_FAILED', `token must be a string of 1 to ${limits.maxTokenLength} characters`);
    }
    return { op, token };
  }
  if (op !== 'subscribe' && op !== 'unsubscribe') return new AppError('VALIDATION_FAILED', 'op must be "auth", "subscribe" or "unsubscribe"');
  if (typeof topic !== 'string') return new AppError('VALIDATION_FAILED', 'topic must be a string');
  const m = /^(sale|auction|user)\/(.*)$/s.exec(topic);
  if (m?.[1] === 'sale' && SALE_ID.test(m[2]!)) return { op, topic, kind: 'sale', id: m[2]! };
  if (m?.[1] === 'auction' && AUCTION_ID.test(m[2]!)) return { op, topic, kind: 'auction', id: m[2]! };
  if (m?.[1] === 'user' && USER_ID.test(m[2]!)) return { op, topic, kind: 'user', id: m[2]! };
  return new AppError('VALIDATION_FAILED', 'topic must be auction/auc_<12 of [0-9a-z]>, sale/sal_<12 of [0-9a-z]> or user/usr_<12 of [0-9a-z]>');
}

/** An error frame, naming the topic it is about when there is one. */
export function errorFrame(code: ErrorCode, detail: string, topic?: string): string {
  return JSON.stringify(topic === undefined ? { op: 'error', code, detail } : { op: 'error', code, detail, topic });
}
