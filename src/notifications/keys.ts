/**
 * The notification product's Redis names.
 *
 * NOTIFICATIONS_CHANNEL: pub/sub channel of new inbox rows, for the live
 * push (ws `user/<id>` topics and the SSE stream) on every api node. A
 * message is `{"item": <the item as the inbox API shows it, without its
 * id>, "to": [[<buyer id>, <seq>], ...]}`: rows telling the same thing at
 * the same time travel together, and each recipient's item is the shared
 * one with their own id (src/notifications/push.ts). The
 * notifications worker publishes each new row after its transaction
 * committed; a message lost (no subscriber connected, Redis down) is found
 * again in the inbox and by an SSE resume (`Last-Event-ID`).
 */
export const NOTIFICATIONS_CHANNEL = 'stampede:notifications';

/**
 * The scheduled notifications' due index: a sorted set of send ids
 * (notification_sends) scored by the time each is due (ms), and the outbox
 * stream lua/notification/claimDueSends-2.lua appends the due events to,
 * in the same hash slot. The index is a copy of the `scheduled` rows, rebuilt
 * when the scheduler starts.
 */
export const NOTIFICATION_SENDS_DUE = '{notifications}:due';
export const NOTIFICATIONS_OUTBOX = '{notifications}:outbox';
