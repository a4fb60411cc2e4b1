/** What reconciliation reports: a finding per thing Redis and Postgres (or a wallet and its ledger) disagree on. */

export const CHECKS = ['sales', 'auctions', 'wallets', 'stuck'] as const;
export type CheckName = (typeof CHECKS)[number];

export interface Finding {
  check: CheckName;
  /** What it is about: a sale, an auction or a purchase id, or a wallet as `<userId>/<currency>`. */
  subject: string;
  /** Stable, for machines: `sold_differs`, `state_differs`, `purchase_stuck`, … */
  code: string;
  message: string;
  /** The numbers compared, as each side holds them. */
  details: Record<string, unknown>;
  repaired: boolean;
  /** What the repair did, or why there was none. */
  action: string;
}

/** Something a check looked at and set aside this time (busy, too large), with why: not a finding. */
export interface Skipped {
  subject: string;
  why: string;
}

export interface CheckResult {
  checked: number;
  findings: Finding[];
  skipped: Skipped[];
}
