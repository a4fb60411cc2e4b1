/**
 * What buyers can be told: every notification type, the channels it goes
 * out on unless the buyer chose otherwise, and whether it is critical
 * (purchase and payment results: their in_app copy cannot be switched off,
 * so a buyer always finds in the inbox what happened to their money).
 *
 * The types are the notification product's own names; the events that
 * produce them are in the catalogue (src/events/catalogue.ts).
 */
export const CHANNELS = ['in_app', 'email', 'sms'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface NotificationType {
  defaultChannels: readonly Channel[];
  critical: boolean;
}

const IN_APP_EMAIL: readonly Channel[] = ['in_app', 'email'];

export const NOTIFICATION_TYPES = {
  'auction.created': { defaultChannels: IN_APP_EMAIL, critical: false },
  'auction.outbid': { defaultChannels: IN_APP_EMAIL, critical: false },
  // The winner's wallet was debited: a payment result.
  'auction.won': { defaultChannels: IN_APP_EMAIL, critical: true },
  'auction.lost': { defaultChannels: IN_APP_EMAIL, critical: false },
  // A second-chance winner's wallet was debited (told in place of auction.won): a payment result.
  'auction.offer': { defaultChannels: IN_APP_EMAIL, critical: true },
  // The winner could not pay and lost the lot: a payment result.
  'auction.offer_failed': { defaultChannels: IN_APP_EMAIL, critical: true },
  'auction.released': { defaultChannels: IN_APP_EMAIL, critical: false },
  'bid.doubled': { defaultChannels: ['in_app'], critical: false },
  'purchase.confirmed': { defaultChannels: IN_APP_EMAIL, critical: true },
  'purchase.failed': { defaultChannels: IN_APP_EMAIL, critical: true },
  'purchase.cancelled': { defaultChannels: IN_APP_EMAIL, critical: true },
  'sale.opening': { defaultChannels: ['in_app', 'email', 'sms'], critical: false },
  announcement: { defaultChannels: ['in_app'], critical: false },
} as const satisfies Record<string, NotificationType>;

export type NotificationTypeName = keyof typeof NOTIFICATION_TYPES;

export const NOTIFICATION_TYPE_NAMES = Object.keys(NOTIFICATION_TYPES) as NotificationTypeName[];

export const isCritical = (type: NotificationTypeName): boolean => NOTIFICATION_TYPES[type].critical;
