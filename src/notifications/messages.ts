/**
 * The words of each notification: its title and body, written from the
 * announcement that caused it and the name of what it is about (the lot,
 * or the sale). Every channel (inbox, e-mail, SMS) tells the same thing in
 * these words.
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
  const { format, digits } = formatterOf(currency);
  return format.format(minor / 10 ** digits).replace(/\s/gu, ' ');
}

/** One formatter per currency: building an Intl.NumberFormat costs far more than formatting with one (docs/performance.md). */
const formatters = new Map<string, { format: Intl.NumberFormat; digits: number }>();

function formatterOf(currency: string): { format: Intl.NumberFormat; digits: number } {
  let f = formatters.get(currency);
  if (!f) {
    const digits = new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
    f = { format: new Intl.NumberFormat('en', { style: 'currency', currency, currencyDisplay: 'code', minimumFractionDigits: digits }), digits };
    formatters.set(currency, f);
  }
  return f;
}

/** What an announcement is about (an auction's lot, or a sale), as its notification names it. */
export interface SubjectName {
  title: string;
  currency: string;
}

/** `2 × Sneaker drop` */
const unitsOf = (quantity: number, sale: string) => `${quantity} × ${sale}`;

/** The notification type an announcement is told as: its own name, but for the promoter's doubling. */
const notifiedAs = (type: Announcement['type']): NotificationTypeName => (type === 'auction.bid_doubled' ? 'bid.doubled' : type);

/** What the recipient of an announcement is told about `subject`. */
export function notificationOf(a: Announcement, { title: lot, currency: lotCurrency }: SubjectName): NewNotification {
  const told = (title: string, body: string, data: object = a.data): NewNotification => ({
    eventId: a.eventId, recipientId: a.data.buyerId, type: notifiedAs(a.type), title, body, data: { ...data },
  });
  switch (a.type) {
    case 'auction.outbid':
      return told(`You were outbid on ${lot}`, `The price is now ${formatMoney(a.data.price, lotCurrency)}. Bid again before the auction closes.`);
    case 'auction.won': {
      const { price, paid, bonus, currency } = a.data;
      const house = bonus > 0 ? ` (the house paid ${formatMoney(bonus, currency)} of the ${formatMoney(price, currency)} price)` : '';
      return told(`You won ${lot}`, `You paid ${formatMoney(paid, currency)}${house}.`);
    }
    case 'auction.offer': {
      const { price, paid, bonus, currency } = a.data;
      const house = bonus > 0 ? ` (the house paid ${formatMoney(bonus, currency)})` : '';
      return told(
        `Second-chance offer: ${lot} is yours`,
        `The winning bidder could not pay, so the lot went to you at your bid of ${formatMoney(price, currency)}. Your wallet was debited ${formatMoney(paid, currency)}${house}.`,
      );
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
    case 'auction.bid_doubled': {
      // Not the whole event: its leader and leaderBid name another buyer.
      const { auctionId, bidId, added, amount, maxAmount, bonus, price, doubledAt } = a.data;
      return told(
        `Your bid on ${lot} was doubled`,
        `The promoter added ${formatMoney(added, lotCurrency)}: your bid is now ${formatMoney(amount, lotCurrency)}, and the house pays ${formatMoney(bonus, lotCurrency)} of the price if you win. The price is now ${formatMoney(price, lotCurrency)}.`,
        { auctionId, buyerId: a.data.buyerId, bidId, added, amount, maxAmount, bonus, price, doubledAt },
      );
    }
    case 'purchase.confirmed': {
      const { quantity, amount, currency } = a.data;
      return told(`Your order for ${lot} is confirmed`, `You bought ${unitsOf(quantity, lot)} for ${formatMoney(amount, currency)}, paid from your wallet.`);
    }
    case 'purchase.failed': {
      const { quantity, amount, currency } = a.data;
      const why = {
        INSUFFICIENT_FUNDS: `Your wallet did not hold the ${formatMoney(amount, currency)} it costs`,
        UNKNOWN_BUYER: 'We could not find your account',
        RESERVATION_EXPIRED: 'We could not settle it in time',
        UNSETTLEABLE: 'We could not settle it',
      }[a.data.reason];
      return told(`Your order for ${lot} failed`, `${why}, so your order of ${unitsOf(quantity, lot)} was not placed. Nothing was charged.`);
    }
    case 'purchase.cancelled': {
      const { quantity, refunded, currency } = a.data;
      const money = refunded > 0 ? `${formatMoney(refunded, currency)} was refunded to your wallet.` : 'You had not been charged.';
      return told(`Your order for ${lot} was cancelled`, `As you asked, your order of ${unitsOf(quantity, lot)} is cancelled. ${money}`);
    }
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
