/**
 * A Server-Sent Events client for tests, over fetch (Node 20 has no
 * EventSource). Every event received is kept in order, comments counted;
 * `next` waits for the first unread event that matches (and consumes it).
 */
import { wokenOrAfter } from './live-client.js';

export interface SseEvent {
  id?: string;
  data: string;
}

export class SseClient {
  private readonly events: SseEvent[] = [];
  private waiters: (() => void)[] = [];
  comments = 0;
  ended = false;

  private constructor(readonly status: number, readonly headers: Headers, private readonly abort: AbortController) {}

  /** Opens the stream; resolves once the headers are in (a refusal too: see `status`, and `refusal` for its body). */
  static async connect(url: string, headers: Record<string, string>): Promise<SseClient & { refusal?: any }> {
    const abort = new AbortController();
    const res = await fetch(url, { headers, signal: abort.signal });
    const client = new SseClient(res.status, res.headers, abort) as SseClient & { refusal?: any };
    if (res.status !== 200) {
      const text = await res.text();
      try {
        client.refusal = JSON.parse(text);
      } catch {
        client.refusal = text;
      }
      client.ended = true;
      return client;
    }
    void client.read(res.body!);
    return client;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.parse(block);
        }
      }
    } catch {
      /* aborted by close() or the connection dropped */
    }
    this.ended = true;
    this.wake();
  }

  private parse(block: string): void {
    const event: SseEvent = { data: '' };
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith(':')) this.comments++;
      else if (line.startsWith('id: ')) event.id = line.slice(4);
      else if (line.startsWith('data: ')) data.push(line.slice(6));
    }
    if (data.length > 0) {
      event.data = data.join('\n');
      this.events.push(event);
    }
    this.wake();
  }

  /** The first unread event matching `match` (its data parsed), consumed. */
  async next(match: (item: any) => boolean = () => true, what = 'an event', timeoutMs = 10_000): Promise<{ id?: string; item: any }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.events.findIndex((e) => match(JSON.parse(e.data)));
      if (i >= 0) {
        const [e] = this.events.splice(i, 1);
        return { id: e!.id, item: JSON.parse(e!.data) };
      }
      if (this.ended) throw new Error(`stream ended while waiting for ${what}`);
      await this.until(deadline, what);
    }
  }

  /** Waits until `fn` holds (re-checked on every event, comment or end). */
  async waitUntil(what: string, fn: () => boolean, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!fn()) await this.until(deadline, what);
  }

  /** Events received and not consumed, their data parsed. */
  unread(): { id?: string; item: any }[] {
    return this.events.map((e) => ({ id: e.id, item: JSON.parse(e.data) }));
  }

  close(): void {
    this.abort.abort();
  }

  private async until(deadline: number, what: string): Promise<void> {
    const left = deadline - Date.now();
    if (left <= 0) throw new Error(`timed out waiting for ${what}; unread: ${JSON.stringify(this.events)}`);
    await wokenOrAfter(this.waiters, left);
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
