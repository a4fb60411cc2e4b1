// @ts-check
/**
 * Purchase spike: the arrival rate ramps from startRate to targetRate
 * requests/s, then holds, each request by the next distinct buyer.
 *
 *   k6 run -e SALE_ID=sal_... -e TARGET_URL=http://127.0.0.1:8080 load/k6/purchase-spike.js
 */
import { arrivalRate, purchase, scenarios, thresholds } from './lib.js';

const s = scenarios.purchaseSpike;

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    spike: arrivalRate(s, {
      executor: 'ramping-arrival-rate',
      startRate: s.startRate,
      stages: [
        { target: s.targetRate, duration: `${s.rampSeconds}s` },
        { target: s.targetRate, duration: `${s.holdSeconds}s` },
      ],
    }),
  },
  thresholds: thresholds(),
};

export default function () {
  purchase();
}
