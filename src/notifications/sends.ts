/**
 * Scheduled notifications: an operator's announcement (now or at `sendAt`)
 * and a sale's opening notice (STAMPEDE_SALE_OPENING_NOTICE_MINUTES before
 * it opens, to the buyers who watch it).
 *
 * The row in notification_sends is the record. The due index in Redis
 * ({notifications}:due, src/notifications/keys.ts) is what the scheduler
 * looks at: one sorted-set range per tick, never a scan of the table. The
 * row and its index entry are written in one transaction (Redis inside it:
 * a failed ZADD rolls the row back); the scheduler rebuilds the index from
 * the rows still scheduled when it starts (`reindex`), so a restart, or a
 * Redis that lost the index, loses no send.
 *
 * When a send is due, lua/notification/claimDueSends-2.lua takes it off the
 * index and appends its due event to the notifications' outbox in one call
 * (claimed == recorded); the relay publishes it and the notifications worker
 * claims the row (scheduled -> sending, conditionally) and fans it out
 * (`deliverDue`). A cancel is the other conditional UPDATE (scheduled ->
 * cancelled) plus the removal from the index: whichever of the two wins,
 * the other changes nothing, so a cancelled send is never sent, and a send
 * the worker started cannot be cancelled (409).
 */
import type { Redis } from '../platform/redis/client.js';
import type { Config } from '../platform/config.js';
import { AppError } from '../platform/errors.js';
import { inTransaction, type Pool } from '../platform/db/pool.js';
import { newAnnouncementId } from '../platform/ids.js';
import { isRealDateTime } from '../platform/time.js';
import { NOTIFICATION_SENDS_DUE } from './keys.js';
import type { Broadcast } from './fan-out.js';
import {
  cancelSend, claimSend, findSend, insertSend, knownBuyers, openingSaleOf, recordSendDone, recordSendDropped, scheduledSends, sendProgressOf,
  type Audience, type NewSend, type SendProgress, type SendRecord, type SendStatus, type SendType,
} from './repository.js';
import { NOTIFICATION_TYPES, type Channel } from './types.js';

/** Most buyers one announcement may name (a larger audience is a collection). */
export const MAX_AUDIENCE_BUYERS = 500;
/** A sendAt this far in the past is taken as now (clocks differ); further back is refused. */
export const SEND_AT_SKEW_MS = 5_000;
/** The furthest ahead an announcement may be scheduled. */
export const MAX_SEND_AHEAD_MS = 90 * 86_400_000;

/** An operator's announcement as the API takes it. */
export interface NewAnnouncement {
  audience: { buyerIds: string[] } | { collection: string };
  title: string;
  body: string;
  channels?: Channel[];
  /** ISO 8601; absent: now. */
  sendAt?: string;
}

export interface SendView {
  id: string;
  type: SendType;
  status: SendStatus;
  sendAt: string;
  audience: Audience;
  /** The channels it goes out on (the operator's, else the type's defaults); buyers' opt-outs still apply. */
  channels: Channel[];
  title: string | null;
  body: string | null;
  createdAt: string;
  startedAt: string | null;
  sentAt: string | null;
  cancelledAt: string | null;
  progress: SendProgress;
}

const iso = (d: Date | null) => (d ? d.toISOString() : null);

function viewOf(s: SendRecord, progress: SendProgress): SendView {
  return {
    id: s.id, type: s.type, status: s.status, sendAt: s.sendAt.toISOString(), audience: s.audience, channels: channelsOf(s),
    title: s.title, body: s.body, createdAt: s.createdAt.toISOString(), startedAt: iso(s.startedAt), sentAt: iso(s.sentAt), cancelledAt: iso(s.cancelledAt),
    progress: { ...progress, recipients: s.recipients ?? progress.recipients },
  };
}

export const channelsOf = (s: Pick<SendRecord, 'type' | 'channels'>): Channel[] => s.channels ?? [...NOTIFICATION_TYPES[s.type].defaultChannels];

/** The opening notice of a sale: one per sale, under an id made of the sale's, so scheduling it again changes nothing. */
export const saleOpeningId = (saleId: string) => 'sop_' + saleId.slice('sal_'.length);

export interface SendSettings {
  /** How long before a sale opens its watchers are told. */
  openingNoticeMs: number;
  clock?: () => number;
}

export const sendSettingsOf = (cfg: Config): SendSettings => ({ openingNoticeMs: cfg.STAMPEDE_SALE_OPENING_NOTICE_MINUTES * 60_000 });

export class ScheduledSends {
  private readonly clock: () => number;

  constructor(private readonly pool: Pool, private readonly redis: Redis, private readonly settings: SendSettings) {
    this.clock = settings.clock ?? Date.now;
  }

  /** Records an operator's announcement, due at its sendAt (else now). */
  async announce(input: NewAnnouncement): Promise<SendView> {
    const now = this.clock();
    const sendAt = this.sendAtOf(input.sendAt, now);
    if ('buyerIds' in input.audience) {
      const known = await knownBuyers(this.pool, input.audience.buyerIds);
      const unknown = input.audience.buyerIds.findIndex((id) => !known.has(id));
      if (unknown >= 0) throw AppError.invalid(`/audience/buyerIds/${unknown}`, 'is not a buyer', `audience.buyerIds[${unknown}] names no buyer`);
    }
    const sent = await this.schedule({
      id: newAnnouncementId(), type: 'announcement', audience: input.audience, title: input.title, body: input.body, channels: input.channels ?? null,
      sendAt: new Date(sendAt),
    });
    return viewOf(sent!, { recipients: null, inApp: 0, email: { recorded: 0, sent: 0 }, sms: { recorded: 0, sent: 0 } });
  }

  async get(id: string): Promise<SendView> {
    const s = await findSend(this.pool, id);
    if (!s) throw new AppError('NOT_FOUND', 'no such notification');
    return viewOf(s, await sendProgressOf(this.pool, id));
  }

  /** Cancels a send not started yet; one cancelled already stays so. */
  async cancel(id: string): Promise<void> {
    const cancelled = await cancelSend(this.pool, id);
    if (cancelled) {
      await this.redis.zrem(NOTIFICATION_SENDS_DUE, id);
      return;
    }
    const s = await findSend(this.pool, id);
    if (!s) throw new AppError('NOT_FOUND', 'no such notification');
    if (s.status !== 'cancelled') throw new AppError('CONFLICT', `the notification is ${s.status} already: it can no longer be cancelled`, { notificationStatus: s.status });
  }

  /**
   * Schedules a new sale's opening notice. A sale that opens sooner than the
   * notice period gets none: it was just created, so nobody watches it yet,
   * and a notice now would reach no one.
   */
  async scheduleSaleOpening(saleId: string, startsAt: number): Promise<void> {
    const dueAt = startsAt - this.settings.openingNoticeMs;
    if (dueAt < this.clock()) return;
    await this.schedule({ id: saleOpeningId(saleId), type: 'sale.opening', audience: { saleId }, title: null, body: null, channels: null, sendAt: new Date(dueAt) });
  }

  /** Puts every scheduled send in the due index again (the scheduler's start); returns how many. */
  async reindex(): Promise<number> {
    const due = await scheduledSends(this.pool);
    for (let i = 0; i < due.length; i += 1000) {
      const chunk = due.slice(i, i + 1000);
      await this.redis.zadd(NOTIFICATION_SENDS_DUE, ...chunk.flatMap((s) => [s.sendAt.getTime(), s.id]));
    }
    return due.length;
  }

  private async schedule(send: NewSend): Promise<SendRecord | undefined> {
    return inTransaction(this.pool, async (tx) => {
      const created = await insertSend(tx, send);
      // Inside the transaction: a send the index does not have is not recorded either.
      if (created) await this.redis.zadd(NOTIFICATION_SENDS_DUE, send.sendAt.getTime(), send.id);
      return created;
    });
  }

  private sendAtOf(sendAt: string | undefined, now: number): number {
    if (sendAt === undefined) return now;
    if (!isRealDateTime(sendAt)) throw AppError.invalid('/sendAt', 'is not a real date-time', 'sendAt is not a real date-time');
    const at = Date.parse(sendAt);
    if (at < now - SEND_AT_SKEW_MS) throw AppError.invalid('/sendAt', 'is in the past', 'sendAt is in the past');
    if (at > now + MAX_SEND_AHEAD_MS) throw AppError.invalid('/sendAt', 'is too far ahead', `sendAt is more than ${MAX_SEND_AHEAD_MS / 86_400_000} days ahead`);
    return Math.max(at, now);
  }
}

/** The words of a sale's opening notice, from the sale as it is when the notice goes out. */
export function openingWordsOf(sale: { name: string; startsAt: Date }, now: number): { title: string; body: string } {
  const minutes = Math.round((sale.startsAt.getTime() - now) / 60_000);
  const title = minutes >= 1 ? `${sale.name} opens in ${minutes} minute${minutes === 1 ? '' : 's'}` : `${sale.name} is opening`;
  return { title, body: `The sale opens at ${sale.startsAt.toISOString().replace(/\.\d{3}Z$/, 'Z')}. Stock is limited: be there when it opens.` };
}

/**
 * The notifications worker's part: a due send claimed (scheduled ->
 * sending; one sending already is taken again after a crash, the fan-out
 * being idempotent) becomes one fan-out under the send's id; a cancelled
 * or sent one becomes nothing. A sale's opening notice whose sale is gone
 * or closed is dropped (recorded cancelled).
 */
export class DueSends {
  constructor(private readonly pool: Pool, private readonly clock: () => number = Date.now) {}

  async start(sendId: string): Promise<{ broadcast: Broadcast; audience: Audience } | undefined> {
    const send = await claimSend(this.pool, sendId);
    if (!send) return undefined;
    if (send.type === 'announcement') {
      return {
        broadcast: { eventId: send.id, type: 'announcement', title: send.title!, body: send.body!, data: { announcementId: send.id }, channels: channelsOf(send) },
        audience: send.audience,
      };
    }
    const saleId = 'saleId' in send.audience ? send.audience.saleId : '';
    const sale = await openingSaleOf(this.pool, saleId);
    if (!sale || sale.closed) {
      await recordSendDropped(this.pool, send.id);
      return undefined;
    }
    return {
      broadcast: { eventId: send.id, type: 'sale.opening', ...openingWordsOf(sale, this.clock()), data: { saleId, startsAt: sale.startsAt.getTime() } },
      audience: send.audience,
    };
  }

  /** Records a send's fan-out finished (a fan-out of something else changes nothing). */
  async finished(sendId: string, recipients: number): Promise<void> {
    await recordSendDone(this.pool, sendId, recipients);
  }
}
