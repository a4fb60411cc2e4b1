import type { Pool } from '../platform/db/pool.js';
import type { OrderStatus } from './settlement.js';

export interface OrderRecord {
  purchaseId: string;
  saleId: string;
  buyerId: string;
  quantity: number;
  unitPrice: number;
  currency: string;
  status: OrderStatus;
  reason: string;
  acceptedAt: number;
}

/** A settled order as Postgres recorded it (the record outlives Redis). */
export async function findOrder(pool: Pool, purchaseId: string): Promise<OrderRecord | undefined> {
  const { rows } = await pool.query<{
    purchase_id: string; sale_id: string; buyer_id: string; quantity: number; unit_price: number;
    currency: string; status: OrderStatus; failure_reason: string | null; accepted_at: Date;
  }>(
    `SELECT purchase_id, sale_id, buyer_id, quantity, unit_price, currency, status, failure_reason, accepted_at
       FROM orders WHERE purchase_id = $1`,
    [purchaseId],
  );
  const r = rows[0];
  if (!r) return undefined;
  return {
    purchaseId: r.purchase_id, saleId: r.sale_id, buyerId: r.buyer_id, quantity: r.quantity, unitPrice: r.unit_price,
    currency: r.currency, status: r.status, reason: r.failure_reason ?? '', acceptedAt: r.accepted_at.getTime(),
  };
}
