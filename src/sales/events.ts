/**
 * The sales' events: their CloudEvent type names and what their `data`
 * carries. The Lua scripts that append them to the outbox
 * (lua/sale/reservePurchase-7.lua, lua/sale/requestCancel-2.lua) write the
 * same type names; the orders worker reads them back with these.
 */

/** The CloudEvent `type` of each purchase event, by the kind settlement knows it as. */
export const PURCHASE_EVENT_TYPES = {
  accepted: 'stampede.purchase.accepted.v1',
  cancel_requested: 'stampede.purchase.cancel_requested.v1',
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

/** A purchase event as the orders worker parsed it from its envelope (time in ms). */
export type PurchaseEvent =
  | { eventId: string; type: 'accepted'; time: number; data: PurchaseAcceptedData }
  | { eventId: string; type: 'cancel_requested'; time: number; data: PurchaseCancelRequestedData };
