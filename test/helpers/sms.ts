/**
 * A real HTTP receiver for tests, standing in for a Twilio-compatible SMS
 * provider on 127.0.0.1 (a free port): it keeps every request it got, its
 * form fields parsed, and answers as the test says while it runs (a status
 * and body, or after a delay to outlast the sender's timeout). It can be
 * stopped (connections refused) and started again on the same port.
 */
import type { Test } from 'tap';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSms {
  method: string;
  path: string;
  contentType: string | undefined;
  authorization: string | undefined;
  fields: Record<string, string>;
  /** The status the receiver answered (0 while it has not, or when the sender hung up first). */
  status: number;
}

export interface SmsReceiver {
  /** The provider URL (with `path`) to give STAMPEDE_SMS_URL. */
  url: string;
  /** Every request that arrived, answered or not. */
  requests: ReceivedSms[];
  /** The requests answered 2xx: the SMS sent. */
  readonly sent: ReceivedSms[];
  /** The status of the next answers (200 when unset), and the body that goes with it. */
  answerWith?: { status: number; body?: string };
  /** Answer only after this many milliseconds. */
  delayMs?: number;
  stop(): Promise<void>;
  start(): Promise<void>;
}

const bodyOf = (req: IncomingMessage) => new Promise<string>((resolve, reject) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c)).on('end', () => resolve(Buffer.concat(chunks).toString('utf8'))).on('error', reject);
});

export async function smsReceiver(t: Test, path = '/2010-04-01/Accounts/ACtest/Messages.json'): Promise<SmsReceiver> {
  const server = createServer((req, res) => {
    void bodyOf(req).then(async (body) => {
      const answer = receiver.answerWith ?? { status: 201, body: '{"sid":"SMtest","status":"queued"}' };
      const got: ReceivedSms = {
        method: req.method ?? '', path: req.url ?? '', contentType: req.headers['content-type'], authorization: req.headers.authorization,
        fields: Object.fromEntries(new URLSearchParams(body)), status: 0,
      };
      receiver.requests.push(got);
      if (receiver.delayMs) await new Promise((r) => setTimeout(r, receiver.delayMs));
      // A sender that gave up waiting never reads the answer: that request stays unanswered (status 0).
      if (res.socket?.destroyed ?? true) return;
      got.status = answer.status;
      res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body ?? '');
    });
  });
  let port = 0;
  const listen = () => new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => {
    port = (server.address() as AddressInfo).port;
    resolve();
  }));
  const close = () => new Promise<void>((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
  const receiver: SmsReceiver = {
    url: '',
    requests: [],
    get sent() {
      return this.requests.filter((r) => r.status >= 200 && r.status < 300);
    },
    stop: close,
    start: listen,
  };
  await listen();
  receiver.url = `http://ACtest:secret@127.0.0.1:${port}${path}`;
  t.teardown(() => (server.listening ? close() : undefined));
  return receiver;
}
