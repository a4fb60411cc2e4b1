// @ts-check
/**
 * Soak: a steady arrival rate for a long time (memory, connection and
 * backlog leaks show here, not in a spike). Seed a sale with stock larger
 * than rate x duration.
 *
 *   k6 run -e SALE_ID=sal_... load/k6/soak.js
 */
import { arrivalRate, purchase, scenarios, thresholds } from './lib.js';

const s = scenarios.soak;

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    soak: arrivalRate(s, { executor: 'constant-arrival-rate', rate: s.rate, duration: `${s.durationMinutes}m` }),
  },
  thresholds: thresholds(),
};

export default function () {
  purchase();
}
