/**
 * A WebSocket client of `/v1/live` for tests (the `ws` package: Node 20 has
 * no stable global WebSocket). Every frame received is kept in order;
 * `next` waits for the first unread frame that matches (and consumes it), and `barrier`
 * proves that nothing else is on its way.
 */
import WebSocket from 'ws';

export type Frame = Record<string, any>;

/** Resolves when one of `waiters` is called (the client received something), or after `ms`. */
export function wokenOrAfter(waiters: (() => void)[], ms: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms);
    waiters.push(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}

export class LiveClient {
  /** Frames received and not yet consumed by `next`, in order. */
  private readonly frames: Frame[] = [];
  private waiters: (() => void)[] = [];
  closed?: { code: number; reason: string };
  private barriers = 0;

  private constructor(readonly ws: WebSocket) {
    ws.on('message', (data, isBinary) => {
      const text = (data as Buffer).toString('utf8');
      let frame: Frame;
      try {
        frame = JSON.parse(text);
      } catch {
        frame = { unparsable: text, isBinary };
      }
      this.frames.push(frame);
      this.wake();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString('utf8') };
      this.wake();
    });
    ws.on('error', () => {});
  }

  static connect(baseUrl: string, path = '/v1/live'): Promise<LiveClient> {
    const ws = new WebSocket(baseUrl.replace(/^http/, 'ws') + path);
    return new Promise((resolve, reject) => {
      ws.once('open', () => resolve(new LiveClient(ws)));
      ws.once('error', reject);
      ws.once('unexpected-response', (_req, res) => reject(new Error(`upgrade refused: ${res.statusCode}`)));
    });
  }

  send(frame: unknown): void {
    this.ws.send(typeof frame === 'string' || Buffer.isBuffer(frame) ? frame : JSON.stringify(frame));
  }

  subscribe(topic: string): Promise<Frame> {
    this.send({ op: 'subscribe', topic });
    return this.next((f) => (f.op === 'subscribed' || f.op === 'error') && f.topic === topic, `answer to subscribe ${topic}`);
  }

  unsubscribe(topic: string): Promise<Frame> {
    this.send({ op: 'unsubscribe', topic });
    return this.next((f) => f.op === 'unsubscribed' && f.topic === topic, `answer to unsubscribe ${topic}`);
  }

  /** The first unread frame matching `match`; the frames before it stay unread. */
  async next(match: (f: Frame) => boolean = () => true, what = 'a frame', timeoutMs = 10_000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      for (let i = 0; i < this.frames.length; i++) {
        const f = this.frames[i]!;
        if (match(f)) {
          this.frames.splice(i, 1);
          return f;
        }
      }
      if (this.closed) throw new Error(`connection closed (${this.closed.code}) while waiting for ${what}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; unread: ${JSON.stringify(this.frames)}`);
      await wokenOrAfter(this.waiters, left);
    }
  }

  /**
   * Resolves once the server has answered an operation sent now. The server
   * answers in order on one connection, so every frame it sent before is
   * here by then: what is unread afterwards is all there is.
   */
  async barrier(): Promise<void> {
    // An unsubscribe of a topic nobody holds: answered, and changes nothing.
    const topic = `sale/sal_${String(++this.barriers).padStart(12, '0')}`;
    await this.unsubscribe(topic);
  }

  /** Frames received and not consumed by `next`. */
  unread(): Frame[] {
    return [...this.frames];
  }

  async closedWith(timeoutMs = 10_000): Promise<{ code: number; reason: string }> {
    const deadline = Date.now() + timeoutMs;
    while (!this.closed) {
      if (Date.now() > deadline) throw new Error('timed out waiting for the connection to close');
      await wokenOrAfter(this.waiters, deadline - Date.now());
    }
    return this.closed;
  }

  close(): void {
    if (!this.closed) this.ws.close(1000);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
