/**
 * Notifications for tests: announcements as the auctions worker publishes
 * them (CloudEvents with stable ids), and probes of the inbox in Postgres.
 * Nothing here is a mock.
 */
import type { Pool } from '../../src/platform/db/pool.js';
import type { CloudEvent } from '../../src/platform/messaging/events.js';
import { routingKeyOf } from '../../src/platform/messaging/topology.js';
import { ANNOUNCEMENT_SOURCE } from '../../src/auctions/announcements.js';
import type { Amqp } from './fault-kit.js';
import { call, waitFor, type System } from './system.js';
import { createBuyers } from '../../src/buyers/buyers.js';
import { randomId } from '../../src/platform/ids.js';

export function announcement(type: string, id: string, data: Record<string, unknown>): CloudEvent {
  return {
    specversion: '1.0', id, source: ANNOUNCEMENT_SOURCE, type: `stampede.auction.${type}.v1`, time: new Date().toISOString(),
    subject: String(data.auctionId), datacontenttype: 'application/json', data,
  };
}

/** Publishes on the topic exchange as the auctions worker does (one event per message, its id as message id), or a batch of them in one message. */
export async function publishAnnouncements(amqp: Amqp, exchange: string, events: CloudEvent[], asBatch = false): Promise<void> {
  if (asBatch) {
    await amqp.publish(exchange, routingKeyOf(events[0]!.type), JSON.stringify(events), { messageId: `batch:${events[0]!.id}`, contentType: 'application/cloudevents-batch+json' });
    return;
  }
  for (const e of events) {
    await amqp.publish(exchange, routingKeyOf(e.type), JSON.stringify(e), { messageId: e.id, type: e.type, contentType: 'application/cloudevents+json' });
  }
}

export interface InboxRow {
  event_id: string;
  recipient_id: string;
  type: string;
  title: string;
  body: string;
  data: Record<string, unknown>;
}

/** Every inbox row of these buyers, by recipient then event id. */
export async function inboxRows(pool: Pool, buyers: string[]): Promise<InboxRow[]> {
  const { rows } = await pool.query<InboxRow>(
    'SELECT event_id, recipient_id, type, title, body, data FROM notifications WHERE recipient_id = ANY($1) ORDER BY recipient_id, event_id',
    [buyers],
  );
  return rows;
}

/** Waits until these buyers have at least `n` inbox rows between them. */
export async function waitInbox(pool: Pool, buyers: string[], n: number, timeoutMs = 20_000): Promise<InboxRow[]> {
  return waitFor(`${n} inbox rows`, async () => {
    const rows = await inboxRows(pool, buyers);
    return rows.length >= n ? rows : undefined;
  }, timeoutMs);
}

/** A new buyer with an e-mail address and these notification preferences, set through the API as a buyer sets them. */
export async function buyerWithPreferences(sys: System, preferences: Record<string, unknown>): Promise<{ id: string; email: string }> {
  const email = `buyer-${randomId(10)}@example.test`;
  const [b] = await createBuyers(sys.pool, [{ name: 'notified buyer', email }]);
  const put = await call(`${sys.url}/v1/notification-preferences`, {
    method: 'PUT', headers: { authorization: `Bearer ${sys.token(b!.id)}`, 'content-type': 'application/json' }, body: JSON.stringify(preferences),
  });
  if (put.status !== 200) throw new Error(`preferences refused: ${JSON.stringify(put.body)}`);
  return { id: b!.id, email };
}
