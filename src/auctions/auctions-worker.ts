/**
 * The auctions worker: consumes `stampede.auctions` (see BatchConsumer:
 * manual acks, prefetch, batches, retry tiers, dead letters), reads each
 * message strictly (parseAuctionEvent, events.ts), logs every event and
 * settles closes and cancellations in one Postgres transaction per batch
 * (settlement.ts), then publishes the announcements (outbid, won or offer,
 * offer_failed, lost, released) with publisher confirms. Only then are the messages acked.
 *
 * Announcements are at-least-once: a crash between the commit and the acks
 * redelivers the close, which settles nothing again but announces the same
 * events again, with the same message ids (`<auctionId>:won`,
 * `<auctionId>:lost:<buyerId>`, …), for the consumer to deduplicate.
 */
import type { Pool } from '../platform/db/pool.js';
import type { ConfirmChannel } from '../platform/messaging/amqp.js';
import { ANNOUNCEMENTS_PER_MESSAGE, publisherOf } from '../platform/messaging/publisher.js';
import { BatchConsumer, type JsonObject, type WorkerSettings } from '../platform/messaging/consumer.js';
import { parseAuctionEvent, type AuctionLogEvent } from './events.js';
import { settleAuctions } from './settlement.js';

export interface AuctionsWorkerOptions extends WorkerSettings {
  pool: Pool;
}

export class AuctionsWorker extends BatchConsumer<AuctionLogEvent> {
  /** Announcements confirmed by the broker since start (copies included), for tests and ops. */
  announced = 0;

  constructor(private readonly deps: AuctionsWorkerOptions) {
    super({ ...deps, name: 'auctions worker', what: 'an auction event', concern: deps.topology.auctions });
  }

  protected parse(envelope: JsonObject): AuctionLogEvent {
    return parseAuctionEvent(envelope);
  }

  protected async settle(events: AuctionLogEvent[], channel: ConfirmChannel): Promise<void> {
    const announcements = await settleAuctions(this.deps.pool, events);
    // Committed; the source messages are acked only once these are confirmed.
    await publisherOf(channel).publishEventBatches(this.deps.topology.exchange, announcements, ANNOUNCEMENTS_PER_MESSAGE);
    this.announced += announcements.length;
  }
}
