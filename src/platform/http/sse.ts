/**
 * Server-Sent Events over uWebSockets.js. A stream route is registered in
 * two steps: `accept(ctx)` runs while the request is being read and may
 * refuse it (throw an AppError, or reject when it is async: answered
 * problem+json, as any route); what it returns is called with the open
 * stream once the headers are written.
 * Everything written after an await is corked and only if the client is
 * still there; onAborted is registered before anything else.
 *
 * Limits are explicit: at most `maxStreams` streams per node (503 with
 * Retry-After past it), `maxBufferedBytes` queued for a slow reader (the
 * stream is closed past it: an event stream's client reconnects and
 * resumes with Last-Event-ID), and a comment line every `keepAliveMs` on
 * each open stream (one timer for all of them) so that idle proxies and
 * clients keep it open.
 */
import type { HttpResponse, HttpRequest } from 'uWebSockets.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import type { AnswerState, HttpServer, RequestContext } from './server.js';
import type { RouteDoc } from './doc.js';

export interface EventStreamsOptions {
  log: Logger;
  keepAliveMs: number;
  maxStreams: number;
  /** Bytes queued for a slow reader before its stream is closed. */
  maxBufferedBytes?: number;
}

/** The default `maxBufferedBytes`: events are a few hundred bytes, so this is hundreds of events behind. */
export const SSE_MAX_BUFFERED_BYTES = 256 * 1024;

export interface StreamContext extends RequestContext {
  /** The Last-Event-ID header ('' when absent). */
  lastEventId: string;
}

export interface EventStream {
  /** Writes one event; nothing once the stream is closed. */
  send(id: string, data: string): void;
  /** Ends the stream (the client reconnects as event-stream clients do). */
  close(): void;
  readonly closed: boolean;
  /** Called once, when the stream ends for whatever reason. */
  onClose(fn: () => void): void;
}

type StreamOpener = (stream: EventStream) => void | Promise<void>;
/** Decides whether to open a stream (an API key looked up in Postgres is async) and what to do with it once open. */
export type StreamAcceptor = (ctx: StreamContext) => StreamOpener | Promise<StreamOpener>;

class UwsEventStream implements EventStream {
  closed = false;
  private readonly closers: (() => void)[] = [];
  /** Bytes written while uWS reported backpressure, since it last drained. */
  private queued = 0;

  constructor(private readonly res: HttpResponse, private readonly maxBufferedBytes: number, private readonly log: Logger, private readonly onSlowReader: () => void = () => {}) {}

  send(id: string, data: string): void {
    const lines = data.includes('\n') ? data.split('\n').map((l) => `data: ${l}`).join('\n') : `data: ${data}`;
    this.write(`id: ${id}\n${lines}\n\n`);
  }

  comment(text: string): void {
    this.write(`: ${text}\n\n`);
  }

  write(chunk: string): void {
    if (this.closed) return;
    let ok = true;
    this.res.cork(() => {
      ok = this.res.write(chunk);
    });
    if (ok) return;
    if (this.queued === 0) {
      this.res.onWritable(() => {
        this.queued = 0;
        return true;
      });
    }
    this.queued += Buffer.byteLength(chunk);
    if (this.queued > this.maxBufferedBytes) {
      this.log.warn({ limitBytes: this.maxBufferedBytes }, 'sse: slow reader disconnected');
      this.onSlowReader();
      this.close();
    }
  }

  close(): void {
    if (this.closed) return;
    this.res.cork(() => this.res.end(undefined, true));
    this.ended();
  }

  /** The client went away (or close() ended it): the response is no longer usable. */
  ended(): void {
    if (this.closed && this.closers.length === 0) return;
    this.closed = true;
    for (const fn of this.closers.splice(0)) {
      try {
        fn();
      } catch (err) {
        this.log.error({ err }, 'sse: a close handler failed');
      }
    }
  }

  onClose(fn: () => void): void {
    if (this.closed) fn();
    else this.closers.push(fn);
  }
}

export class EventStreams {
  private readonly open = new Set<UwsEventStream>();
  private readonly timer: NodeJS.Timeout;
  private stopping = false;

  constructor(private readonly http: HttpServer, private readonly options: EventStreamsOptions) {
    this.timer = setInterval(() => {
      for (const stream of this.open) stream.comment('keep-alive');
    }, options.keepAliveMs);
    this.timer.unref();
  }

  /** Streams closed because their reader fell behind by more than the buffer allows (what they missed is dropped). */
  slowReaders = 0;

  /** Open streams on this node. */
  get count(): number {
    return this.open.size;
  }

  route(pattern: string, accept: StreamAcceptor, doc?: RouteDoc): void {
    this.http.describe('get', pattern, doc);
    this.http.app.get(pattern, (res: HttpResponse, req: HttpRequest) => {
      const state: AnswerState = { aborted: false };
      let stream: UwsEventStream | undefined;
      res.onAborted(() => {
        state.aborted = true;
        stream?.ended();
      });
      const ctx: StreamContext = {
        method: 'get', url: req.getUrl(), params: [], query: req.getQuery() ?? '', authorization: req.getHeader('authorization'),
        apiKey: req.getHeader('x-api-key'), idempotencyKey: req.getHeader('idempotency-key'), lastEventId: req.getHeader('last-event-id'),
      };
      let accepted: StreamOpener | Promise<StreamOpener>;
      try {
        this.refuseWhenFull();
        accepted = accept(ctx);
      } catch (err) {
        this.http.fail(res, state, err);
        return;
      }
      const open = (opened: StreamOpener) => {
        const s = (stream = new UwsEventStream(res, this.options.maxBufferedBytes ?? SSE_MAX_BUFFERED_BYTES, this.options.log, () => this.slowReaders++));
        this.open.add(s);
        s.onClose(() => this.open.delete(s));
        res.cork(() => {
          res.writeStatus('200 OK').writeHeader('content-type', 'text/event-stream').writeHeader('cache-control', 'no-cache')
            .writeHeader('x-accel-buffering', 'no');
          // Sends the headers now: a client knows the stream is open before the first event.
          res.write(': open\n\n');
        });
        Promise.resolve()
          .then(() => opened(s))
          .catch((err: unknown) => {
            this.options.log.error({ err }, 'sse: the stream failed; closing it (the client resumes)');
            s.close();
          });
      };
      if (!(accepted instanceof Promise)) return open(accepted);
      accepted.then(
        (opened) => {
          if (state.aborted) return;
          try {
            // Others may have opened streams, or the node begun to stop, while this one was being decided.
            this.refuseWhenFull();
          } catch (err) {
            return this.http.fail(res, state, err);
          }
          open(opened);
        },
        (err: unknown) => this.http.fail(res, state, err),
      );
    });
  }

  private refuseWhenFull(): void {
    if (this.stopping) throw new AppError('UNAVAILABLE', 'this node is shutting down; reconnect to another', undefined, { 'Retry-After': '1' });
    if (this.open.size >= this.options.maxStreams) {
      throw new AppError('UNAVAILABLE', `this node holds its most event streams (${this.options.maxStreams}); retry shortly`, undefined, { 'Retry-After': '1' });
    }
  }

  /** Ends every open stream and refuses new ones. */
  stop(): void {
    this.stopping = true;
    clearInterval(this.timer);
    for (const stream of [...this.open]) stream.close();
  }
}
