/**
 * `GET /v1/notifications/stream`: a buyer's notifications as Server-Sent
 * Events, each `id: <notification id>` and `data: <item>` (the item as the
 * inbox shows it). Without Last-Event-ID the stream starts with what comes
 * next; with it, it first sends every notification of the buyer after that
 * id, oldest first, read from Postgres, then the live ones.
 *
 * No loss and no duplicate across the switch: the stream listens to the
 * feed BEFORE reading the backlog, holds what the feed brings meanwhile,
 * and once the backlog is sent drops the held items whose id is not past
 * the last one sent (the backlog had them). When the node's feed connection
 * comes back after an outage, the stream does the same again from the last
 * id it sent.
 *
 * Ids are the inbox's order (rows numbered at insert). Two worker
 * transactions writing to the same buyer can commit out of that order: a
 * row committed after a larger id was read at a switch is not resent (it
 * stays in the inbox).
 */
import type { EventStream } from '../platform/http/sse.js';
import type { Logger } from '../platform/log.js';
import type { NotificationFeed } from './feed.js';
import { seqOf, type Inbox } from './inbox.js';

/** Rows read from Postgres per round trip while catching up. */
const BACKLOG_PAGE = 200;

export class NotificationStreams {
  constructor(private readonly feed: NotificationFeed, private readonly inbox: Inbox, private readonly log: Logger) {}

  /** Streams the buyer's notifications after `afterSeq` (none: from now on) until the stream closes. */
  async follow(buyerId: string, afterSeq: number | undefined, stream: EventStream): Promise<void> {
    /** The largest id sent; undefined until one is. */
    let lastSent = afterSeq;
    /** Live items (id and JSON, as the feed brings them) held while the backlog is read; undefined while live items go straight out. */
    let held: [id: string, json: string][] | undefined = afterSeq === undefined ? undefined : [];
    const send = (id: string, json: string) => {
      stream.send(id, json);
      const seq = seqOf(id)!;
      if (lastSent === undefined || seq > lastSent) lastSent = seq;
    };

    /** Sends what Postgres has after the last id sent, then the items held meanwhile that are past it. */
    const catchUp = async () => {
      if (lastSent !== undefined) {
        for (;;) {
          const page = await this.inbox.after(buyerId, lastSent, BACKLOG_PAGE);
          if (stream.closed) return;
          for (const item of page) send(item.id, JSON.stringify(item));
          if (page.length < BACKLOG_PAGE) break;
        }
      }
      const boundary = lastSent;
      const waiting = held ?? [];
      held = undefined;
      for (const [id, json] of waiting) if (boundary === undefined || seqOf(id)! > boundary) send(id, json);
    };

    const stop = this.feed.listen(buyerId, {
      notified: (id, json) => {
        if (held) held.push([id, json]);
        else send(id, json);
      },
      resumed: () => {
        if (held || stream.closed) return;
        held = [];
        catchUp().catch((err: unknown) => {
          this.log.error({ err, buyerId }, 'notifications: catching up a stream after the reconnect failed; closing it (the client resumes)');
          stream.close();
        });
      },
    });
    stream.onClose(stop);
    await catchUp();
  }
}
