/** The notifications API's contract (OpenAPI): the buyers' routes of routes.ts and the operators' of announcement-routes.ts. */
import { COUNT, idSchema, INSTANT, LIMIT_PARAM, NULLABLE_INSTANT, strictObject, type RouteDoc, type Schema } from '../platform/http/doc.js';
import { SALE_ID, SEND_ID, USER_ID } from '../platform/ids.js';
import { CHANNELS, NOTIFICATION_TYPE_NAMES } from './types.js';

const TAGS = ['notifications'];
const NOTIFICATION_ID = { type: 'string', description: 'An inbox item\'s id (also the SSE event id).' };
const CHANNEL = { enum: [...CHANNELS] };
const CLOCK = { type: 'string', pattern: '^([01][0-9]|2[0-3]):[0-5][0-9]$' };
const SWITCHES = strictObject(Object.fromEntries(CHANNELS.map((c) => [c, { type: 'boolean' }])));

const PREFERENCES: Schema = strictObject({
  channels: SWITCHES,
  types: strictObject(Object.fromEntries(NOTIFICATION_TYPE_NAMES.map((t) => [t, SWITCHES]))),
  email: { type: ['string', 'null'], description: 'Where e-mail goes: the address set here, else the account\'s.' },
  phone: { type: ['string', 'null'] },
  timeZone: { type: ['string', 'null'] },
  quietHours: { anyOf: [strictObject({ start: CLOCK, end: CLOCK }), { type: 'null' }] },
});

export const NOTIFICATION: Schema = strictObject({
  id: NOTIFICATION_ID,
  type: { type: 'string' },
  title: { type: 'string' },
  body: { type: 'string' },
  data: { type: 'object' },
  createdAt: INSTANT,
  readAt: NULLABLE_INSTANT,
});

const INTEREST = strictObject({ collection: { type: 'string' }, since: INSTANT });
const WATCH = strictObject({ saleId: idSchema(SALE_ID), since: INSTANT });
const COLLECTION_PARAM = {
  collection: { schema: { type: 'string' }, description: 'A collection\'s name, percent-encoded: 1-200 characters once decoded, no control characters (400 otherwise).' },
};
const SALE_PARAM = { id: { schema: idSchema(SALE_ID), description: 'The sale.' } };

const SEND: Schema = strictObject({
  id: idSchema(SEND_ID),
  type: { enum: ['announcement', 'sale.opening'] },
  status: { enum: ['scheduled', 'sending', 'sent', 'cancelled'] },
  sendAt: INSTANT,
  audience: {
    oneOf: [
      strictObject({ collection: { type: 'string' } }),
      strictObject({ saleId: idSchema(SALE_ID) }),
      strictObject({ buyerIds: { type: 'array', items: idSchema(USER_ID) } }),
    ],
  },
  channels: { type: 'array', items: CHANNEL },
  title: { type: ['string', 'null'] },
  body: { type: ['string', 'null'] },
  createdAt: INSTANT,
  startedAt: NULLABLE_INSTANT,
  sentAt: NULLABLE_INSTANT,
  cancelledAt: NULLABLE_INSTANT,
  progress: strictObject({
    recipients: { type: ['integer', 'null'], minimum: 0, description: 'Buyers of the audience reached so far (null: not started).' },
    inApp: COUNT,
    email: strictObject({ recorded: COUNT, sent: COUNT }),
    sms: strictObject({ recorded: COUNT, sent: COUNT }),
  }),
});

export function notificationDocs(bodies: { preferences: { schema: unknown }; nothing: { schema: unknown } }) {
  const action = { body: bodies.nothing, optionalBody: true } as const;
  const docs = {
    preferences: {
      summary: 'Your notification preferences', tags: TAGS, caller: 'buyer',
      responses: { 200: { description: 'Every channel and type filled in.', schema: PREFERENCES } },
    },
    replacePreferences: {
      summary: 'Replace your notification preferences', description: 'The in-app copy of critical types cannot be switched off.',
      tags: TAGS, caller: 'buyer', body: bodies.preferences,
      responses: { 200: { description: 'The preferences now.', schema: PREFERENCES } },
    },
    unsubscribe: {
      summary: 'One-click unsubscribe (RFC 8058)', description: 'The e-mail\'s signed link: that type\'s e-mail off.', tags: TAGS,
      query: { token: { schema: { type: 'string' }, required: true, description: 'The signed token of the e-mail\'s link.' } },
      responses: { 200: { description: 'Switched off.', schema: strictObject({ type: { enum: [...NOTIFICATION_TYPE_NAMES] }, email: { const: false } }) } },
    },
    inbox: {
      summary: 'Your inbox, newest first', tags: TAGS, caller: 'buyer',
      query: { limit: LIMIT_PARAM, before: { schema: NOTIFICATION_ID, description: 'The `next` of the previous page.' } },
      responses: {
        200: {
          description: 'A page of notifications.',
          schema: strictObject({
            items: { type: 'array', items: NOTIFICATION },
            next: { type: ['string', 'null'] },
            unread: { ...COUNT, description: 'Created since the inbox was last opened.' },
          }),
        },
      },
    },
    stream: {
      summary: 'Your new notifications as Server-Sent Events',
      description: '`id: <notification id>` + `data: <item>`; `Last-Event-ID` first resends every one after it. 503 past the node\'s stream limit. docs/live.md.',
      tags: TAGS, caller: 'buyer',
      headers: { 'Last-Event-ID': { schema: NOTIFICATION_ID, description: 'Resume after this notification.' } },
      responses: { 200: { description: 'The event stream.', contentType: 'text/event-stream', schema: { type: 'string' } } },
    },
    opened: {
      summary: 'The inbox was opened (resets `unread`)', tags: TAGS, caller: 'buyer', ...action,
      responses: { 200: { description: 'When.', schema: strictObject({ openedAt: INSTANT }) } },
    },
    readAll: {
      summary: 'Mark every notification read', tags: TAGS, caller: 'buyer', ...action,
      responses: { 200: { description: 'How many were unread.', schema: strictObject({ read: COUNT }) } },
    },
    readOne: {
      summary: 'Mark one notification read', tags: TAGS, caller: 'buyer', ...action,
      params: { id: { schema: NOTIFICATION_ID, description: 'The notification.' } },
      responses: { 200: { description: 'The notification.', schema: NOTIFICATION } },
    },
    interests: {
      summary: 'The collections you follow', tags: TAGS, caller: 'buyer',
      responses: { 200: { description: 'Each with `since`, and the most you may follow.', schema: strictObject({ items: { type: 'array', items: INTEREST }, max: COUNT }) } },
    },
    follow: {
      summary: 'Follow a collection', description: 'Its new auctions are told to you (`auction.created`).', tags: TAGS, caller: 'buyer', ...action,
      params: COLLECTION_PARAM, refusals: ['LIMIT_REACHED', 'VALIDATION_FAILED'],
      responses: { 200: { description: 'Already followed.', schema: INTEREST }, 201: { description: 'Followed.', schema: INTEREST } },
    },
    unfollow: {
      summary: 'Stop following a collection', tags: TAGS, caller: 'buyer', params: COLLECTION_PARAM, refusals: ['VALIDATION_FAILED'],
      responses: { 204: { description: 'Not followed (any more).' } },
    },
    watch: {
      summary: 'Watch a sale', description: 'You are told before it opens (`sale.opening`).', tags: ['sales', ...TAGS], caller: 'buyer', ...action,
      params: SALE_PARAM,
      responses: { 200: { description: 'Already watched.', schema: WATCH }, 201: { description: 'Watched.', schema: WATCH } },
    },
    unwatch: {
      summary: 'Stop watching a sale', tags: ['sales', ...TAGS], caller: 'buyer', params: SALE_PARAM,
      responses: { 204: { description: 'Not watched (any more).' } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}

export function announcementDocs(bodies: { announcement: { schema: unknown } }) {
  const id = { id: { schema: idSchema(SEND_ID), description: 'The announcement.' } };
  const docs = {
    announce: {
      summary: 'Send an announcement, now or at a time', description: 'Buyers\' own switches still apply.', tags: ['operators', ...TAGS],
      caller: 'operator', body: bodies.announcement, idempotent: true,
      responses: { 202: { description: 'Scheduled.', schema: SEND } },
    },
    get: {
      summary: 'An announcement and its progress', tags: ['operators', ...TAGS], caller: 'operator', params: id,
      responses: { 200: { description: 'The announcement.', schema: SEND } },
    },
    cancel: {
      summary: 'Cancel an announcement not started', tags: ['operators', ...TAGS], caller: 'operator', params: id, refusals: ['CONFLICT'],
      responses: { 204: { description: 'Cancelled.' } },
    },
  } satisfies Record<string, RouteDoc>;
  return docs;
}
