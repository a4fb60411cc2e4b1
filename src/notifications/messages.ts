/**
 * The words of each notification: its title and body, written from the
 * announcement that caused it and the name of the lot. Every channel (inbox,
 * e-mail, SMS) tells the same thing in these words.
 */
import type { Announcement } from './announcements.js';
import type { NotificationTypeName } from './types.js';
import type { AuctionCreatedData } from '../auctions/events.js';

export interface NewNotification {
  /** The event it tells of; with the recipient, the notification's key. */
  eventId: string;
  recipientId: string;
  type: NotificationTypeName;
  title: string;
  body: string;
  data: Record<string, unknown>;
}

/** An amount of minor units as people read it: `EUR 21.00` in the currency's own decimals (a plain space, for SMS and e-mail subjects). */
export function formatMoney(minor: number, currency: string): string {
  const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  return new Intl.NumberFormat('en', { style: 'currency', currency, currencyDisplay: 'code', minimumFractionDigits: digits }).format(minor / 10 ** digits).replace(/\s/gu, ' ');
}

/** The auction an announcement is about, as its notification names it. */
export interface Lot {
  title: string;
  currency: string;
}

/** What the recipient of an announcement is told about `lot`. */
export function notificationOf(a: Announcement, { title: lot, currency: lotCurrency }: Lot): NewNotification {
  const told = (title: string, body: string): NewNotification => ({
    eventId: a.eventId, recipientId: a.data.buyerId, type: a.type, title, body, data: { ...a.data },
  });
  switch (a.type) {
    case 'auction.outbid':
      return told(`You were outbid on ${lot}`, `The price is now ${formatMoney(a.data.price, lotCurrency)}. Bid again before the auction closes.`);
    case 'auction.won': {
      const { price, paid, bonus, currency } = a.data;
      const house = bonus > 0 ? ` (the house paid ${formatMoney(bonus, currency)} of the ${formatMoney(price, currency)} price)` : '';
      return told(`You won ${lot}`, `You paid ${formatMoney(paid, currency)}${house}.`);
    }
    case 'auction.lost': {
      const { outcome, price, currency } = a.data;
      return outcome === 'sold' && price !== null
        ? told(`${lot} went to another bidder`, `It sold for ${formatMoney(price, currency)}.`)
        : told(`${lot} closed unsold`, 'Nobody bought the lot; your bid was not charged.');
    }
    case 'auction.offer_failed':
      return told(
        `Your winning bid on ${lot} could not be paid`,
        `Your wallet did not hold ${formatMoney(a.data.price, a.data.currency)}, so the lot was offered to the next bidder.`,
      );
    case 'auction.released':
      return told(`${lot} was cancelled`, 'Your bids on it are released; nothing was charged.');
  }
}

/** A text cut to `max` characters, an ellipsis marking the cut. */
const cut = (text: string, max: number) => (text.length <= max ? text : `${text.slice(0, max - 1)}…`);

/** The longest title a notification has (the inbox's column). */
const MAX_TITLE = 300;

/** What a collection's followers are told of an auction created in it (under the event's id, one per follower). */
export function createdNotificationOf(eventId: string, a: AuctionCreatedData): Omit<NewNotification, 'recipientId'> {
  const opens = new Date(a.startsAt).toISOString().replace('T', ' ').slice(0, 16);
  return {
    eventId, type: 'auction.created', title: cut(`New in ${a.collection}: ${a.title}`, MAX_TITLE),
    body: `${a.title} opens at ${opens} UTC, starting price ${formatMoney(a.startPrice, a.currency)}.`,
    data: { auctionId: a.auctionId, collection: a.collection, startsAt: new Date(a.startsAt).toISOString(), startPrice: a.startPrice, currency: a.currency },
  };
}
