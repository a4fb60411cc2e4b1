/**
 * A raw HTTP/1.1 client over a TCP socket, for requests fetch will not send:
 * bodies larger than their limit (the server answers and closes before the
 * body is read), chunked bodies that grow slowly, and header bytes that are
 * not ASCII. It records how much of the request was written when the answer
 * arrived, so a test can prove the server answered early.
 */
import { connect } from 'node:net';
import { mismatchOf } from './openapi.js';

export interface RawAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
  body: any;
  /** Body chunks written before the answer arrived (of `chunks.length`). */
  chunksWritten: number;
  /** The server closed the connection after answering. */
  closed: boolean;
}

export interface RawRequest {
  /** Request line and headers, without the blank line that ends them. */
  head: string | Buffer;
  /** Bytes written after the head, one write each. */
  chunks?: (string | Buffer)[];
  /** Pause between chunks (lets the server act on a partial body). */
  chunkDelayMs?: number;
  timeoutMs?: number;
}

interface Parsed {
  status: number;
  headers: Record<string, string>;
  text: string;
}

function parse(buf: Buffer): Parsed | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const lines = buf.subarray(0, end).toString('latin1').split('\r\n');
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '')?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines.slice(1)) {
    const i = line.indexOf(':');
    if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const length = Number(headers['content-length'] ?? 0);
  const rest = buf.subarray(end + 4);
  if (rest.length < length) return undefined;
  return { status, headers, text: rest.subarray(0, length).toString('utf8') };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function rawRequest(port: number, r: RawRequest): Promise<RawAnswer> {
  const chunks = r.chunks ?? [];
  return new Promise<RawAnswer>((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    let answer: Parsed | undefined;
    let written = 0;
    let closed = false;
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if (answer) {
        let body: any = answer.text;
        try {
          body = answer.text === '' ? undefined : JSON.parse(answer.text);
        } catch {
          /* keep the text */
        }
        // Held to the api's OpenAPI document, as fetch's answers are (test/helpers/openapi.ts).
        const [method = '', target = ''] = (typeof r.head === 'string' ? r.head : r.head.toString('latin1')).split(/[ \r\n]/, 2);
        const wrong = mismatchOf(`http://127.0.0.1:${port}`, method, new URL(target, 'http://x').pathname, answer.status, answer.headers, body);
        if (wrong) reject(new Error(`the answer breaks the OpenAPI document: ${wrong}`));
        else resolve({ ...answer, body, chunksWritten: written, closed });
      } else {
        reject(err ?? new Error(`connection closed without an answer (${received.length} bytes received)`));
      }
    };
    const timer = setTimeout(() => finish(new Error(`no answer within ${r.timeoutMs ?? 5_000}ms`)), r.timeoutMs ?? 5_000);
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      answer ??= parse(received);
      // Wait briefly for the close that should follow a `connection: close` answer.
      if (answer && !settled) setTimeout(() => finish(), answer.headers.connection === 'close' ? 200 : 0);
    });
    socket.on('end', () => {
      closed = true;
      if (answer) finish();
    });
    socket.on('close', () => {
      closed = true;
      finish();
    });
    // EPIPE / ECONNRESET while still writing a body the server refused is expected.
    socket.on('error', (err) => {
      if (!answer) setTimeout(() => finish(err), 50);
    });
    socket.on('connect', async () => {
      const head = typeof r.head === 'string' ? Buffer.from(r.head, 'latin1') : r.head;
      socket.write(Buffer.concat([head, Buffer.from('\r\n\r\n')]));
      for (const c of chunks) {
        if (answer || settled || socket.destroyed) return;
        if (r.chunkDelayMs) await sleep(r.chunkDelayMs);
        if (answer || settled || socket.destroyed) return;
        socket.write(c);
        written++;
      }
    });
  });
}

/** One chunk of a `transfer-encoding: chunked` body. */
export const chunk = (data: string | Buffer): Buffer => {
  const b = typeof data === 'string' ? Buffer.from(data) : data;
  return b.length === 0 ? Buffer.from('0\r\n\r\n') : Buffer.concat([Buffer.from(b.length.toString(16) + '\r\n'), b, Buffer.from('\r\n')]);
};
