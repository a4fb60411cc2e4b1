/**
 * The live push of new inbox rows: published on NOTIFICATIONS_CHANNEL
 * (src/notifications/keys.ts) for every api node to forward to the buyer's
 * connections. Publishing is best-effort and never holds an announcement
 * back: the row is committed already, and a buyer who missed the push finds
 * it in the inbox, or gets it on resuming the SSE stream.
 *
 * Rows that tell the same thing at the same time (a fan-out's chunk: one
 * notification, one transaction) travel as one message carrying the item
 * once and each recipient's (buyer id, seq) pair, so a chunk costs Redis
 * and every api node one message instead of one per buyer; each node
 * builds the item of the recipients connected to it, each with its own id.
 */
import type { Redis } from '../platform/redis/client.js';
import type { Logger } from '../platform/log.js';
import { USER_ID } from '../platform/ids.js';
import { NOTIFICATIONS_CHANNEL } from './keys.js';
import { notificationIdOf, viewOf } from './inbox.js';
import type { NotificationRecord } from './repository.js';

/** Most recipients one message of NOTIFICATIONS_CHANNEL names (a larger group is split). */
export const RECIPIENTS_PER_MESSAGE = 2_000;

/** One message of NOTIFICATIONS_CHANNEL: the item without its id, and the recipients with the seq of their own row. */
interface PushMessage {
  item: Omit<ReturnType<typeof viewOf>, 'id'>;
  to: [buyerId: string, seq: number][];
}

/** The messages that carry these rows, in their order within each group of rows telling the same thing at the same time. */
export function pushMessagesOf(created: NotificationRecord[]): string[] {
  const groups = new Map<string, [string, number][]>();
  for (const n of created) {
    const { id: _id, ...item } = viewOf(n);
    const key = JSON.stringify(item);
    let to = groups.get(key);
    if (!to) groups.set(key, (to = []));
    to.push([n.recipientId, n.seq]);
  }
  return [...groups].flatMap(([item, to]) => messagesTo(item, to));
}

/** The messages that carry one item (its JSON without the id) to these recipients. */
function messagesTo(itemJson: string, to: [string, number][]): string[] {
  const messages: string[] = [];
  for (let i = 0; i < to.length; i += RECIPIENTS_PER_MESSAGE) {
    messages.push(`{"item":${itemJson},"to":${JSON.stringify(to.slice(i, i + RECIPIENTS_PER_MESSAGE))}}`);
  }
  return messages;
}

/** A message's recipients, each with their item's id and its JSON as the inbox shows it; undefined when the message is malformed. */
export function deliveriesOf(message: string): { buyerId: string; id: string; itemJson: string }[] | undefined {
  let parsed: PushMessage;
  try {
    parsed = JSON.parse(message) as PushMessage;
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null || typeof parsed.item !== 'object' || parsed.item === null || !Array.isArray(parsed.to)) return undefined;
  const rest = JSON.stringify(parsed.item);
  if (rest.length <= 2) return undefined;
  const tail = `,${rest.slice(1)}`;
  const deliveries: { buyerId: string; id: string; itemJson: string }[] = [];
  for (const pair of parsed.to) {
    if (!Array.isArray(pair) || typeof pair[0] !== 'string' || !USER_ID.test(pair[0]) || !Number.isSafeInteger(pair[1]) || (pair[1] as number) < 1) return undefined;
    const id = notificationIdOf(pair[1] as number);
    deliveries.push({ buyerId: pair[0], id, itemJson: `{"id":"${id}"${tail}` });
  }
  return deliveries;
}

export class LivePush {
  /** Rows published (for operators and tests). */
  published = 0;

  constructor(private readonly redis: Redis, private readonly log: Logger) {}

  /** Publishes these committed rows in one round trip; a failure is logged, not thrown. */
  async publish(created: NotificationRecord[]): Promise<void> {
    if (created.length > 0) await this.send(pushMessagesOf(created), created.length);
  }

  /**
   * Publishes one notification's committed rows of many recipients (a
   * fan-out's chunk: one item, written at one time), each with the seq of
   * their row, as publish would, without building a row per recipient.
   */
  async publishShared(n: Omit<NotificationRecord, 'recipientId' | 'seq'>, to: [buyerId: string, seq: number][]): Promise<void> {
    if (to.length === 0) return;
    const { id: _id, ...item } = viewOf({ ...n, recipientId: '', seq: 0 });
    await this.send(messagesTo(JSON.stringify(item), to), to.length);
  }

  private async send(messages: string[], rows: number): Promise<void> {
    const pipeline = this.redis.pipeline();
    for (const message of messages) pipeline.publish(NOTIFICATIONS_CHANNEL, message);
    try {
      const results = (await pipeline.exec()) ?? [];
      const failed = results.find(([err]) => err !== null);
      if (failed) throw failed[0];
      this.published += rows;
    } catch (err) {
      this.log.warn({ err, rows }, 'notifications: live push failed; the rows are in the inbox');
    }
  }
}
