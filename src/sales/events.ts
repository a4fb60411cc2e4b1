/**
 * The sales' events: what their `data` carries. Their type names are the
 * catalogue's (src/events/catalogue.ts), which the Lua scripts that append
 * them (lua/sale/reservePurchases-n.lua, lua/sale/requestCancel-2.lua) get as
 * EVENT and the orders worker reads them back with.
 */
import { EVENTS } from '../events/catalogue.js';

/** The CloudEvent `type` of each purchase event, by the kind settlement knows it as. */
export const PURCHASE_EVENT_TYPES = {
  accepted: EVENTS.purchaseAccepted.type,
  cancel_requested: EVENTS.purchaseCancelRequested.type,
  expired: EVENTS.purchaseExpired.type,
} as const;

export type PurchaseEventKind = keyof typeof PURCHASE_EVENT_TYPES;

/** What a purchase is, wherever it is recorded: event payloads, the live record in Redis, the settled order. */
export interface Purchase {
  purchaseId: string;
  saleId: string;
  buyerId: string;
  quantity: number;
  unitPrice: number;
  currency: string;
}

/** `stampede.purchase.accepted.v1`: the script reserved the stock (acceptedAt in ms). */
export interface PurchaseAcceptedData extends Purchase {
  acceptedAt: number;
}

/** `stampede.purchase.cancel_requested.v1`: the buyer asked to cancel (requestedAt in ms). */
export interface PurchaseCancelRequestedData extends PurchaseAcceptedData {
  requestedAt: number;
}

/**
 * `stampede.purchase.expired.v1`: the reservation deadline passed with the
 * purchase still pending (expiredAt in ms). The orders worker also settles
 * one of its own, never published, for an accepted purchase it dead-letters
 * (`reason` then says why; the event on the wire carries none: it is
 * RESERVATION_EXPIRED).
 */
export interface PurchaseExpiredData extends PurchaseAcceptedData {
  expiredAt: number;
}

/** A purchase event as the orders worker parsed it from its envelope (time in ms). */
export type PurchaseEvent =
  | { eventId: string; type: 'accepted'; time: number; data: PurchaseAcceptedData }
  | { eventId: string; type: 'cancel_requested'; time: number; data: PurchaseCancelRequestedData }
  | { eventId: string; type: 'expired'; time: number; data: PurchaseExpiredData; reason: PurchaseFailureReason };

/** What the order settlement announces to the buyer (routed to the notifications concern), by the order's status. */
export const PURCHASE_ANNOUNCEMENT_TYPES = {
  confirmed: EVENTS.purchaseConfirmed.type,
  failed: EVENTS.purchaseFailed.type,
  cancelled: EVENTS.purchaseCancelled.type,
} as const;

/** A settled purchase as its buyer is told of it: `amount` = quantity x unitPrice. */
export interface SettledPurchase extends Purchase {
  amount: number;
}

/** `stampede.purchase.confirmed.v1`: `amount` was taken from the buyer's wallet (settledAt in ms). */
export interface PurchaseConfirmedData extends SettledPurchase {
  settledAt: number;
}

/**
 * Why settlement fails an order: the wallet does not cover the amount; the
 * buyer is no user; the reservation deadline passed first; or settlement
 * gave up on it (its event is in the dead letters).
 */
export type PurchaseFailureReason = 'INSUFFICIENT_FUNDS' | 'UNKNOWN_BUYER' | 'RESERVATION_EXPIRED' | 'UNSETTLEABLE';

/** `stampede.purchase.failed.v1`: nothing was charged; the stock went back on sale. */
export interface PurchaseFailedData extends SettledPurchase {
  reason: PurchaseFailureReason;
  settledAt: number;
}

/** `stampede.purchase.cancelled.v1`: the buyer's cancellation; `refunded` went back to the wallet (0: never charged). */
export interface PurchaseCancelledData extends SettledPurchase {
  refunded: number;
  cancelledAt: number;
}
