// @ts-check
/**
 * Sold-out storm: 100 items and a huge crowd. Every buyer tries once, as fast
 * as the VUs go; after the first hundred, everyone must get SOLD_OUT, fast.
 * Seed with `stampede seed --buyers 100000 --stock 100`.
 *
 *   k6 run -e SALE_ID=sal_... load/k6/sold-out-storm.js
 */
import { purchase, scenarios, thresholds, tokens } from './lib.js';

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    storm: {
      executor: 'shared-iterations',
      vus: scenarios.connections,
      iterations: tokens.length,
      maxDuration: '10m',
    },
  },
  thresholds: {
    ...thresholds(),
    // Never more accepted than there were items.
    purchase_accepted: [`count<=${scenarios.flashSale.stock}`],
  },
};

export default function () {
  purchase();
}
