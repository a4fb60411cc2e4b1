/**
 * The one handler wrapper around uWebSockets.js. It copies what a route needs
 * out of `req` synchronously, registers onAborted before anything
 * asynchronous, reads the body in chunks with a byte limit (413 as soon as it
 * is passed), parses JSON, turns thrown errors into problem+json, and writes
 * the answer corked and only if the client is still there. A route is a
 * plain function `(ctx, body) => Reply` that throws AppError.
 */
import type { HttpRequest, HttpResponse, TemplatedApp } from 'uWebSockets.js';
import { AppError, problemOf } from '../errors.js';
import type { Logger } from '../log.js';
import type { RequestCounters, StatusCounter } from '../metrics/http.js';
import type { RouteDoc } from './doc.js';
import { duplicateKey } from './json.js';
import type { AuthThrottle } from './auth-throttle.js';

export interface RequestContext {
  method: string;
  url: string;
  params: string[];
  query: string;
  authorization: string;
  apiKey: string;
  idempotencyKey: string;
}

export interface Reply {
  status: number;
  /** Sent as JSON. */
  body?: unknown;
  /** Sent as it is, with `contentType` (instead of a JSON body). */
  text?: string;
  contentType?: string;
  headers?: Record<string, string>;
}

/** One request's answer state: aborted (or answered) once, and the route's status counter. */
export interface AnswerState {
  aborted: boolean;
  count?: StatusCounter;
}

/**
 * A route answers with a Reply, or refuses by throwing an AppError. A refusal
 * answered many times a second may be returned instead of thrown: V8 walks
 * the stack for every throw, a cost a sold-out storm pays per request.
 */
export type Handler = (ctx: RequestContext, body: unknown) => Reply | AppError | Promise<Reply>;

const STATUS_LINES: Record<number, string> = {
  200: '200 OK', 201: '201 Created', 202: '202 Accepted', 204: '204 No Content',
  400: '400 Bad Request', 401: '401 Unauthorized', 403: '403 Forbidden', 404: '404 Not Found',
  405: '405 Method Not Allowed', 409: '409 Conflict', 413: '413 Payload Too Large',
  415: '415 Unsupported Media Type', 422: '422 Unprocessable Content', 429: '429 Too Many Requests',
  500: '500 Internal Server Error', 503: '503 Service Unavailable',
};

export interface ServerOptions {
  log: Logger;
  maxBodyBytes: number;
  /** Counts each route's answers by status (metrics); none when unset. */
  requests?: RequestCounters;
  /** Throttles addresses that fail authentication; none when unset. */
  authThrottle?: AuthThrottle;
}

export type Method = 'get' | 'post' | 'del' | 'put' | 'patch';

/** A route as registered: what the OpenAPI document is built from. */
export interface RegisteredRoute {
  /** The HTTP method, lower-case (`delete`, not uWS's `del`). */
  method: string;
  /** The uWS pattern (`/v1/sales/:id`). */
  pattern: string;
  /** Whether a body is read (and so can be refused as too large, not JSON, malformed). */
  readsBody: boolean;
  doc?: RouteDoc;
}

export interface RouteOptions {
  /** Whether the body is read; POST, PUT and PATCH read it unless false. */
  body?: boolean;
  /** The route's contract, for the OpenAPI document. */
  doc?: RouteDoc;
  /** This route's body limit, where it must differ from the server's (a list of thousands of ids). */
  maxBodyBytes?: number;
}

export class HttpServer {
  /** Every route registered, in order (answered here, or described: event streams, the WebSocket). */
  readonly routes: RegisteredRoute[] = [];

  constructor(
    readonly app: TemplatedApp,
    private readonly options: ServerOptions,
  ) {}

  /** Records a route that another part of the server answers (an event stream, a WebSocket upgrade), for the document. */
  describe(method: Method, pattern: string, doc: RouteDoc | undefined, readsBody = false): void {
    this.routes.push({ method: method === 'del' ? 'delete' : method, pattern, readsBody, doc });
  }

  route(method: Method, pattern: string, handler: Handler, opts: RouteOptions = {}): void {
    const paramCount = (pattern.match(/:\w+/g) ?? []).length;
    const wantsBody = opts.body ?? (method === 'post' || method === 'put' || method === 'patch');
    const maxBodyBytes = opts.maxBodyBytes ?? this.options.maxBodyBytes;
    this.describe(method, pattern, opts.doc, wantsBody);
    const register = this.app[method].bind(this.app) as (p: string, h: (res: HttpResponse, req: HttpRequest) => void) => TemplatedApp;
    const count = this.options.requests?.(method === 'del' ? 'DELETE' : method.toUpperCase(), pattern);
    // Only routes that look at credentials are throttled for failing them.
    const throttle = opts.doc?.caller === undefined ? undefined : this.options.authThrottle;
    register(pattern, (res: HttpResponse, req: HttpRequest) => {
      const params: string[] = [];
      for (let i = 0; i < paramCount; i++) params.push(req.getParameter(i) ?? '');
      const ctx: RequestContext = {
        method: method === 'del' ? 'delete' : method,
        url: req.getUrl(),
        params,
        query: req.getQuery() ?? '',
        authorization: req.getHeader('authorization'),
        apiKey: req.getHeader('x-api-key'),
        idempotencyKey: req.getHeader('idempotency-key'),
      };
      const contentType = req.getHeader('content-type');
      const contentLength = req.getHeader('content-length');
      const state: AnswerState = { aborted: false, count };
      res.onAborted(() => {
        state.aborted = true;
      });
      if (throttle?.watching && (ctx.authorization !== '' || ctx.apiKey !== '')) {
        const wait = throttle.retryAfter(addressOf(res));
        if (wait > 0) {
          this.fail(res, state, new AppError('RATE_LIMITED', 'too many failed authentications from this address', undefined, { 'Retry-After': String(wait) }), wantsBody);
          return;
        }
      }
      if (!wantsBody) {
        this.run(res, state, handler, ctx, undefined);
        return;
      }
      if (contentLength !== '' && Number(contentLength) > maxBodyBytes) {
        this.fail(res, state, new AppError('PAYLOAD_TOO_LARGE', `body is limited to ${maxBodyBytes} bytes`), true);
        return;
      }
      this.readBody(res, state, maxBodyBytes, (raw) => {
        let body: unknown;
        if (raw.length > 0) {
          // A body says what it is: one without a content-type is not taken for JSON.
          if (contentType === '') return this.fail(res, state, new AppError('UNSUPPORTED_MEDIA_TYPE', 'a body needs content-type: application/json'));
          if (!/^application\/([\w.+-]+\+)?json\b/i.test(contentType)) {
            return this.fail(res, state, new AppError('UNSUPPORTED_MEDIA_TYPE', `content-type ${contentType} is not JSON`));
          }
          const text = raw.toString('utf8');
          try {
            body = JSON.parse(text);
          } catch {
            return this.fail(res, state, new AppError('MALFORMED_JSON'));
          }
          const twice = duplicateKey(text);
          if (twice !== undefined) return this.fail(res, state, new AppError('MALFORMED_JSON', `the name ${JSON.stringify(twice)} appears twice in one object`));
        }
        this.run(res, state, handler, ctx, body);
      });
    });
  }

  /** Answers every request no route matched. */
  fallback(): void {
    const count = this.options.requests?.('ANY', 'unmatched');
    this.app.any('/*', (res) => {
      const state: AnswerState = { aborted: false, count };
      res.onAborted(() => (state.aborted = true));
      this.fail(res, state, new AppError('NOT_FOUND', 'no such route'));
    });
  }

  private readBody(res: HttpResponse, state: AnswerState, maxBodyBytes: number, done: (raw: Buffer) => void): void {
    const chunks: Buffer[] = [];
    let size = 0;
    let tooLarge = false;
    res.onData((ab, isLast) => {
      if (tooLarge) return;
      size += ab.byteLength;
      if (size > maxBodyBytes) {
        tooLarge = true;
        this.fail(res, state, new AppError('PAYLOAD_TOO_LARGE', `body is limited to ${maxBodyBytes} bytes`), true);
        return;
      }
      // The ArrayBuffer is only valid during this callback: copy it.
      if (ab.byteLength > 0) chunks.push(Buffer.copyBytesFrom(new Uint8Array(ab)));
      if (isLast) done(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
  }

  private run(res: HttpResponse, state: AnswerState, handler: Handler, ctx: RequestContext, body: unknown): void {
    let out: Reply | AppError | Promise<Reply>;
    try {
      out = handler(ctx, body);
    } catch (err) {
      this.fail(res, state, err);
      return;
    }
    if (out instanceof AppError) {
      this.fail(res, state, out);
    } else if (out instanceof Promise) {
      out.then(
        (reply) => this.send(res, state, reply),
        (err) => this.fail(res, state, err),
      );
    } else {
      this.send(res, state, out);
    }
  }

  fail(res: HttpResponse, state: AnswerState, err: unknown, close = false): void {
    let appErr: AppError;
    if (err instanceof AppError) {
      appErr = err;
    } else if (isUnavailable(err)) {
      this.options.log.error({ err }, 'dependency unavailable');
      appErr = new AppError('UNAVAILABLE', 'a backing service is unavailable; retry shortly', undefined, { 'Retry-After': '1' });
    } else {
      this.options.log.error({ err }, 'unhandled error in route');
      appErr = new AppError('INTERNAL');
    }
    if (appErr.code === 'UNAUTHORIZED' && !state.aborted) this.options.authThrottle?.failed(addressOf(res));
    let headers = appErr.headers;
    if (close) headers = { ...headers, connection: 'close' };
    appErr.serialized ??= JSON.stringify(problemOf(appErr));
    this.send(res, state, { status: appErr.status, headers }, 'application/problem+json', appErr.serialized);
  }

  private send(res: HttpResponse, state: AnswerState, reply: Reply, contentType = 'application/json', serialized?: string): void {
    if (state.aborted) return;
    state.aborted = true; // one answer per request
    state.count?.(reply.status);
    const payload = serialized ?? reply.text ?? (reply.body === undefined ? '' : JSON.stringify(reply.body));
    res.cork(() => {
      res.writeStatus(STATUS_LINES[reply.status] ?? String(reply.status));
      if (payload !== '') res.writeHeader('content-type', reply.contentType ?? contentType);
      if (reply.headers) for (const k in reply.headers) res.writeHeader(k, reply.headers[k]!);
      res.end(payload, reply.headers?.connection === 'close');
    });
  }
}

/** The peer's address as text (an IPv4 one as `127.0.0.1`, IPv6 in full). */
function addressOf(res: HttpResponse): string {
  return Buffer.from(res.getRemoteAddressAsText()).toString();
}

function isUnavailable(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  return (
    err.name === 'MaxRetriesPerRequestError' ||
    /ECONNREFUSED|ECONNRESET|Connection is closed|connect ETIMEDOUT|Connection terminated|timeout exceeded when trying to connect/i.test(err.message)
  );
}
