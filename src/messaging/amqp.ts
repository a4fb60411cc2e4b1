import amqp from 'amqplib';

export type { Channel, ConfirmChannel, ConsumeMessage } from 'amqplib';
export type Connection = Awaited<ReturnType<typeof amqp.connect>>;

export async function connectAmqp(url: string, name: string): Promise<Connection> {
  const conn = await amqp.connect(url, { clientProperties: { connection_name: name } });
  // Errors are followed by 'close', which the owner handles by reconnecting.
  conn.on('error', () => {});
  return conn;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Exponential backoff with jitter, capped. */
export function backoffMs(attempt: number, baseMs = 200, capMs = 5_000): number {
  const exp = Math.min(capMs, baseMs * 2 ** attempt);
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}
