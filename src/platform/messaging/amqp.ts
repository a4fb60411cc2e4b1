import amqp from 'amqplib';

export type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
export type Connection = Awaited<ReturnType<typeof amqp.connect>>;

/** Longest an AMQP connection may take to open (TCP and handshake): a broker that accepts the socket but never answers (starting, or wedged) is then a failed attempt, retried, not a hang. */
export const AMQP_CONNECT_TIMEOUT_MS = 10_000;

/** The broker's nodes: STAMPEDE_AMQP_URL is one URL or a cluster's nodes, comma-separated. */
export const amqpNodes = (urls: string): string[] => urls.split(',').map((u) => u.trim()).filter((u) => u !== '');

/**
 * The node this process tries first (an index into the list): chosen by pid,
 * so a deployment's processes spread over a cluster's nodes, and moved to the
 * next one when a connection to it is lost, so every connection of the process
 * goes to the next living node rather than waiting for the dead one.
 */
let preferred = process.pid;

/** Opens a connection to the first node of `urls` that answers, from the preferred one on; throws the last node's error when none does. */
export async function connectAmqp(urls: string, name: string, timeoutMs = AMQP_CONNECT_TIMEOUT_MS): Promise<Connection> {
  const nodes = amqpNodes(urls);
  if (nodes.length === 0) throw new Error('no AMQP URL');
  let last: unknown;
  for (let i = 0; i < nodes.length; i++) {
    const at = (preferred + i) % nodes.length;
    try {
      const conn = await amqp.connect(nodes[at]!, { clientProperties: { connection_name: name }, timeout: timeoutMs });
      preferred = at;
      // Errors are followed by 'close', which the owner handles by reconnecting; a close with an error
      // (a lost node, not our own close()) moves the process on to the next node.
      conn.on('error', () => {});
      conn.once('close', (err?: unknown) => {
        if (err && nodes.length > 1 && preferred === at) preferred = (at + 1) % nodes.length;
      });
      return conn;
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Exponential backoff with jitter, capped. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 5_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export interface Session {
  conn: Connection;
  /** Call once the session is set up: the next failure starts backing off from the shortest delay again. */
  established(): void;
  /** Resolves when the connection closes. */
  closed: Promise<void>;
}

/**
 * Keeps a broker session alive until `stopping()` says otherwise: connects,
 * runs `session` until it returns or fails (a lost broker), closes the
 * connection, backs off, and connects again. One loop for every role.
 */
export async function keepConnected(o: {
  url: string;
  name: string;
  stopping: () => boolean;
  onLost: (err: unknown) => void;
  session: (s: Session) => Promise<void>;
  onConnection?: (conn: Connection | undefined) => void;
}): Promise<void> {
  let attempt = 0;
  while (!o.stopping()) {
    let conn: Connection | undefined;
    try {
      conn = await connectAmqp(o.url, o.name);
      o.onConnection?.(conn);
      const c = conn;
      const closed = new Promise<void>((resolve) => c.once('close', () => resolve()));
      await o.session({ conn: c, closed, established: () => (attempt = 0) });
      if (!o.stopping()) o.onLost(new Error('connection closed'));
    } catch (err) {
      if (!o.stopping()) o.onLost(err);
    }
    o.onConnection?.(undefined);
    await conn?.close().catch(() => {});
    if (!o.stopping()) await sleep(backoffMs(attempt++));
  }
}
