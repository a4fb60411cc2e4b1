/**
 * The api node's end of the live push: one subscriber connection to
 * NOTIFICATIONS_CHANNEL (src/notifications/keys.ts) hands every new
 * notification to the WebSocket hub (`forwardTo`, unparsed: the hub only
 * works for buyers whose user topic is held on this node) and to the SSE
 * streams of its buyer open on this node (`listen`; parsed only when there
 * is one).
 *
 * What is published while the connection is down cannot reach this node.
 * Once it is back, every listener is told (`resumed`), so an SSE stream
 * reads what it missed from Postgres.
 */
import { channelSubscriber, type RedisTarget } from '../platform/redis/client.js';
import type { Logger } from '../platform/log.js';
import { NOTIFICATIONS_CHANNEL } from './keys.js';
import { deliveriesOf } from './push.js';

export interface FeedListener {
  /** A new notification of the buyer listened to: its id and its JSON as the inbox shows it. */
  notified(id: string, itemJson: string): void;
  /** The subscriber connection came back: what was published meanwhile was not heard. */
  resumed(): void;
}

export class NotificationFeed {
  private readonly subscriber: ReturnType<typeof channelSubscriber>;
  /** buyer id -> the SSE streams of this node listening to them. */
  private readonly listeners = new Map<string, Set<FeedListener>>();
  private forward: (buyerId: string, itemJson: string) => void = () => {};
  /** Notifications heard, one per recipient named (for operators and tests). */
  heard = 0;

  constructor(redisTarget: RedisTarget, private readonly log: Logger) {
    this.subscriber = channelSubscriber(redisTarget, 'stampede-api-notifications', NOTIFICATIONS_CHANNEL, (message) => this.dispatch(message), () => void this.resume());
  }

  /** Resolves once the subscriber listens on NOTIFICATIONS_CHANNEL. */
  async start(): Promise<void> {
    await this.subscriber.subscribe();
  }

  async stop(): Promise<void> {
    this.listeners.clear();
    await this.subscriber.quit();
  }

  /** Where every message goes first, unparsed (the WebSocket hub's user topics). */
  forwardTo(forward: (buyerId: string, itemJson: string) => void): void {
    this.forward = forward;
  }

  /** Hands the buyer's new notifications to `listener` until the function returned is called. */
  listen(buyerId: string, listener: FeedListener): () => void {
    let set = this.listeners.get(buyerId);
    if (!set) this.listeners.set(buyerId, (set = new Set()));
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.listeners.get(buyerId) === set) this.listeners.delete(buyerId);
    };
  }

  /** One message: an item and its recipients (src/notifications/push.ts); each recipient connected here gets their own. */
  private dispatch(message: string): void {
    const deliveries = deliveriesOf(message);
    if (!deliveries) {
      this.log.warn({ message: message.slice(0, 200) }, 'notifications: malformed message on the notifications channel, dropped');
      return;
    }
    for (const { buyerId, id, itemJson } of deliveries) {
      this.heard++;
      this.forward(buyerId, itemJson);
      const listening = this.listeners.get(buyerId);
      if (!listening) continue;
      for (const listener of [...listening]) listener.notified(id, itemJson);
    }
  }

  private async resume(): Promise<void> {
    try {
      await this.subscriber.subscribe();
    } catch (err) {
      this.log.error({ err }, 'notifications: could not subscribe again after the reconnect');
      return;
    }
    this.log.warn({ buyers: this.listeners.size }, 'notifications: Redis subscriber reconnected; SSE streams read what they missed');
    for (const set of this.listeners.values()) for (const listener of [...set]) listener.resumed();
  }
}
