/**
 * The sales' invariants, checked after every phase that can break them: the
 * live ones in Redis after each api phase, Redis against Postgres after the
 * drain. A broken one is recorded in the findings, which fail the bench at
 * its end.
 */
import { auditLiveSale, auditSale } from '../../../src/sales/audit.js';
import type { Phase } from '../results.js';
import { log, settings, type Bench, type Findings } from './context.js';

/**
 * After each api phase: every live invariant of every sale (Redis alone;
 * nothing is settled yet), and the units buyers hold grew by the phase's
 * 202s (plus at most one request per connection accepted as autocannon
 * stopped). A broken invariant is logged at once.
 */
export class LiveSaleChecks {
  /** Units buyers held after the last phase checked: none before the first. */
  private heldBefore = 0;

  constructor(private readonly bench: Bench, private readonly findings: Findings) {}

  async after(phase: Phase, unitsPer202: number, unitsAtMost?: number): Promise<void> {
    const { violations } = this.findings;
    let held = 0;
    for (const sale of this.bench.sales) {
      const audit = await auditLiveSale(this.bench.redis, sale.id, sale.perBuyerLimit);
      held += audit.held;
      for (const v of audit.violations) violations.push(`after ${phase.name}: ${sale.id}: ${v}`);
    }
    const grew = held - this.heldBefore;
    const accepted = (phase.statuses['202'] ?? 0) * unitsPer202;
    if (grew < accepted || grew > accepted + settings.connections * unitsPer202 || (unitsAtMost !== undefined && grew > unitsAtMost)) {
      violations.push(`after ${phase.name}: buyers hold ${grew} more units for ${accepted} accepted`);
    }
    this.heldBefore = held;
    const broken = violations.filter((v) => v.startsWith(`after ${phase.name}:`));
    if (broken.length > 0) log.error({ phase: phase.name, violations: broken }, 'INVARIANT VIOLATED');
  }
}

/**
 * After the drain: every sale's Redis state against its orders in Postgres,
 * nothing still reserved, every order confirmed; and the orders match the
 * 202 answers autocannon counted. Returns the confirmed orders.
 */
export async function auditSettledSales(bench: Bench, findings: Findings, counted202: number, durationBoundPhases: number): Promise<number> {
  const { violations } = findings;
  let confirmedOrders = 0;
  for (const { id, perBuyerLimit } of bench.sales) {
    const a = await auditSale(bench.pool, bench.redis, id, perBuyerLimit);
    violations.push(...a.violations.map((v) => `${id}: ${v}`));
    if (a.live.reserved !== 0) violations.push(`${id}: ${a.live.reserved} still reserved after the drain`);
    if (a.orders !== a.confirmedOrders) violations.push(`${id}: ${a.orders - a.confirmedOrders} orders not confirmed`);
    confirmedOrders += a.confirmedOrders;
  }
  // A duration-bound run ends with up to one request per connection in flight:
  // accepted by the server, never counted by the load generator.
  const inFlightAtCutoff = confirmedOrders - counted202;
  if (inFlightAtCutoff < 0 || inFlightAtCutoff > settings.connections * durationBoundPhases) {
    violations.push(`orders in Postgres ${confirmedOrders} vs 202 answers ${counted202}: more than the in-flight requests at cut-off can explain`);
  }
  return confirmedOrders;
}
