/**
 * What a buyer wants to be told, and where. A buyer sets channels as a
 * whole (`{"email": false}`: no e-mail at all) and per type
 * (`{"auction.outbid": {"email": false}}`); what they did not set is the
 * type's default (src/notifications/types.ts), so a type added later starts
 * at its defaults for everyone. A channel reaches the buyer when both the
 * channel and the type allow it, except that a critical type always reaches
 * the inbox: purchase and payment results cannot be switched off in_app (a
 * document that tries is refused, not quietly changed).
 *
 * PUT replaces the whole document: what it leaves out goes back to its
 * default (channels, types) or to none (phone, time zone, quiet hours;
 * e-mail falls back to the buyer's account address).
 */
import { AppError } from '../platform/errors.js';
import type { Pool } from '../platform/db/pool.js';
import { accountEmailsOf, preferencesOf, savePreferences, switchEmailOff, type PreferencesRecord } from './repository.js';
import { quietUntil } from './quiet-hours.js';
import { CHANNELS, NOTIFICATION_TYPE_NAMES, NOTIFICATION_TYPES, type Channel, type NotificationTypeName } from './types.js';

export type ChannelSwitches = Record<Channel, boolean>;

export interface QuietHours {
  /** `HH:MM`, local time in the buyer's time zone. */
  start: string;
  end: string;
}

/** What a buyer sends (every part optional). */
export interface PreferencesDocument {
  channels?: Partial<ChannelSwitches>;
  types?: Partial<Record<NotificationTypeName, Partial<ChannelSwitches>>>;
  email?: string | null;
  phone?: string | null;
  timeZone?: string | null;
  quietHours?: QuietHours | null;
}

/** What a buyer is answered: every channel and every type filled in. */
export interface PreferencesView {
  channels: ChannelSwitches;
  types: Record<NotificationTypeName, ChannelSwitches>;
  /** Where e-mail goes: the address set here, else the account's. */
  email: string | null;
  phone: string | null;
  timeZone: string | null;
  quietHours: QuietHours | null;
}

/** A buyer's preferences as delivery reads them. */
export class BuyerPreferences {
  constructor(readonly set: PreferencesRecord | undefined, readonly accountEmail: string | undefined) {}

  /**
   * The type's own switch for a channel (the buyer's, else `defaults`: the
   * type's, or the channels its sender named); critical types are always in the inbox.
   */
  typeAllows(type: NotificationTypeName, channel: Channel, defaults: readonly Channel[] = NOTIFICATION_TYPES[type].defaultChannels): boolean {
    if (channel === 'in_app' && NOTIFICATION_TYPES[type].critical) return true;
    return this.set?.types[type]?.[channel] ?? defaults.includes(channel);
  }

  channelAllows(channel: Channel): boolean {
    return this.set?.channels[channel] ?? true;
  }

  /** Whether a notification of this type goes out on this channel (`defaults`: see typeAllows). */
  wants(type: NotificationTypeName, channel: Channel, defaults?: readonly Channel[]): boolean {
    if (channel === 'in_app' && NOTIFICATION_TYPES[type].critical) return true;
    return this.channelAllows(channel) && this.typeAllows(type, channel, defaults);
  }

  get email(): string | null {
    return this.set?.email ?? this.accountEmail ?? null;
  }

  get phone(): string | null {
    return this.set?.phone ?? null;
  }

  /** When e-mail and SMS told at `now` may go: the end of the buyer's quiet hours holding `now`, else null (at once). */
  quietUntil(now: number): Date | null {
    const s = this.set;
    if (s?.quietStart == null || s.quietEnd == null || s.timeZone == null) return null;
    return quietUntil(now, { timeZone: s.timeZone, start: s.quietStart, end: s.quietEnd }) ?? null;
  }

  view(): PreferencesView {
    const switches = (allows: (c: Channel) => boolean) => Object.fromEntries(CHANNELS.map((c) => [c, allows(c)])) as ChannelSwitches;
    const s = this.set;
    return {
      channels: switches((c) => this.channelAllows(c)),
      types: Object.fromEntries(NOTIFICATION_TYPE_NAMES.map((t) => [t, switches((c) => this.typeAllows(t, c))])) as PreferencesView['types'],
      email: this.email,
      phone: this.phone,
      timeZone: s?.timeZone ?? null,
      quietHours: s?.quietStart != null && s.quietEnd != null ? { start: clockOf(s.quietStart), end: clockOf(s.quietEnd) } : null,
    };
  }
}

const minutesOf = (clock: string) => Number(clock.slice(0, 2)) * 60 + Number(clock.slice(3, 5));
const clockOf = (minutes: number) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

function isTimeZone(name: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: name });
    return true;
  } catch {
    return false;
  }
}

/** The checks a schema cannot make; throws VALIDATION_FAILED naming the field. */
function recordOf(buyerId: string, doc: PreferencesDocument): PreferencesRecord {
  for (const [type, switches] of Object.entries(doc.types ?? {}) as [NotificationTypeName, Partial<ChannelSwitches>][]) {
    if (NOTIFICATION_TYPES[type].critical && switches.in_app === false) {
      throw AppError.invalid(`/types/${type}/in_app`, 'cannot be switched off', `${type} is a purchase or payment result: its in_app copy cannot be switched off`);
    }
  }
  if (doc.timeZone != null && !isTimeZone(doc.timeZone)) throw AppError.invalid('/timeZone', 'is not an IANA time zone');
  if (doc.quietHours != null) {
    if (doc.timeZone == null) throw AppError.invalid('/timeZone', 'is required with quietHours', 'quiet hours need a timeZone to be read in');
    if (doc.quietHours.start === doc.quietHours.end) throw AppError.invalid('/quietHours/end', 'must differ from start');
  }
  return {
    buyerId, channels: doc.channels ?? {}, types: doc.types ?? {}, email: doc.email ?? null, phone: doc.phone ?? null, timeZone: doc.timeZone ?? null,
    quietStart: doc.quietHours ? minutesOf(doc.quietHours.start) : null, quietEnd: doc.quietHours ? minutesOf(doc.quietHours.end) : null,
  };
}

export class Preferences {
  constructor(private readonly pool: Pool) {}

  /** Each buyer's preferences, in two queries for the lot. */
  async of(buyerIds: string[]): Promise<Map<string, BuyerPreferences>> {
    const [set, emails] = await Promise.all([preferencesOf(this.pool, buyerIds), accountEmailsOf(this.pool, buyerIds)]);
    return new Map(buyerIds.map((id) => [id, new BuyerPreferences(set.get(id), emails.get(id))]));
  }

  async get(buyerId: string): Promise<PreferencesView> {
    return (await this.of([buyerId])).get(buyerId)!.view();
  }

  /** One-click unsubscribe: that type's e-mail off, the rest of the document as it was. */
  async switchEmailOff(buyerId: string, type: NotificationTypeName): Promise<{ type: NotificationTypeName; email: false }> {
    await switchEmailOff(this.pool, buyerId, type);
    return { type, email: false };
  }

  async replace(buyerId: string, doc: PreferencesDocument): Promise<PreferencesView> {
    await savePreferences(this.pool, recordOf(buyerId, doc));
    return this.get(buyerId);
  }
}
