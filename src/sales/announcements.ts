/**
 * What the order settlement announces to each buyer: the settled outcome of
 * their purchase (purchase.confirmed, failed with its reason, cancelled with
 * what was refunded), built from the order as stored. Its id is the
 * purchase's and the outcome's (`<purchaseId>:<status>`), so a redelivered
 * or replayed event announces again the very same event with the very same
 * id (at-least-once, deduplicated by id downstream), and a purchase
 * confirmed then cancelled is told both.
 */
import type { CloudEvent } from '../platform/messaging/events.js';
import {
  PURCHASE_ANNOUNCEMENT_TYPES, type PurchaseCancelledData, type PurchaseConfirmedData, type PurchaseFailedData, type PurchaseFailureReason,
  type SettledPurchase,
} from './events.js';
import type { SettlementResult } from './settlement.js';
import { EVENTS } from '../events/catalogue.js';

/** The CloudEvent source of every purchase announcement. */
export const PURCHASE_ANNOUNCEMENT_SOURCE = 'stampede:order-settlement';

export function purchaseAnnouncementOf({ order, refunded }: SettlementResult): CloudEvent<PurchaseConfirmedData | PurchaseFailedData | PurchaseCancelledData> {
  const { purchaseId, saleId, buyerId, quantity, unitPrice, currency, amount, status, reason, settledAt, cancelledAt } = order;
  const purchase: SettledPurchase = { purchaseId, saleId, buyerId, quantity, unitPrice, currency, amount };
  const told = <T>(at: number, data: T): CloudEvent<T> => ({
    specversion: '1.0', id: `${purchaseId}:${status}`, source: PURCHASE_ANNOUNCEMENT_SOURCE, type: PURCHASE_ANNOUNCEMENT_TYPES[status],
    time: new Date(at).toISOString(), subject: saleId, datacontenttype: 'application/json', data,
  });
  switch (status) {
    case 'confirmed':
      return told<PurchaseConfirmedData>(settledAt, { ...purchase, settledAt });
    case 'failed':
      // Settlement writes no other reason. Were it to write one the catalogue does not know, the notifications
      // worker would dead-letter the announcement (poison, for an operator), never undo or stall this settlement.
      return told<PurchaseFailedData>(settledAt, { ...purchase, reason: reason as PurchaseFailureReason, settledAt });
    case 'cancelled':
      return told<PurchaseCancelledData>(cancelledAt ?? settledAt, { ...purchase, refunded, cancelledAt: cancelledAt ?? settledAt });
  }
}

/** purchase.refunded, beside purchase.cancelled, when the cancelled order had been charged (for sellers' webhooks); none otherwise. */
export function refundAnnouncementOf({ order, refunded }: SettlementResult): CloudEvent[] {
  if (order.status !== 'cancelled' || refunded <= 0) return [];
  const { purchaseId, saleId, buyerId, quantity, unitPrice, currency, amount, cancelledAt, settledAt } = order;
  const at = cancelledAt ?? settledAt;
  return [{
    specversion: '1.0', id: `${purchaseId}:refunded`, source: PURCHASE_ANNOUNCEMENT_SOURCE, type: EVENTS.purchaseRefunded.type, time: new Date(at).toISOString(),
    subject: saleId, datacontenttype: 'application/json', data: { purchaseId, saleId, buyerId, quantity, unitPrice, currency, amount, refunded, refundedAt: at },
  }];
}
