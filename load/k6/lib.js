// @ts-check
/**
 * Shared by the k6 scripts: the scenarios (load/scenarios.json, the same file
 * the autocannon bench reads), the buyers' tokens (written by `stampede seed`),
 * the thresholds and scenario shapes the scripts have in common, and one
 * purchase call that counts every outcome by its problem code.
 *
 * Environment: TARGET_URL (default http://127.0.0.1:8080), SALE_ID (required),
 * TOKENS_FILE (default ../results/tokens.txt, relative to this folder).
 */
import http from 'k6/http';
import { check } from 'k6';
import { Counter } from 'k6/metrics';
import { SharedArray } from 'k6/data';
import exec from 'k6/execution';

/** @type {{ connections: number, bidWar: { startPrice: number, increment: number, rate: number, holdSeconds: number, preAllocatedVUs: number, maxVUs: number }, thresholds: { p99Ms: number, maxErrorRate: number }, expectedStatuses: number[], purchaseSpike: { startRate: number, targetRate: number, rampSeconds: number, holdSeconds: number, preAllocatedVUs: number, maxVUs: number }, soak: { rate: number, durationMinutes: number, preAllocatedVUs: number, maxVUs: number }, flashSale: { stock: number, buyers: number } }} */
export const scenarios = JSON.parse(open('../scenarios.json'));

export const TARGET_URL = __ENV.TARGET_URL || 'http://127.0.0.1:8080';
export const SALE_ID = __ENV.SALE_ID || '';
export const AUCTION_ID = __ENV.AUCTION_ID || '';
if (!SALE_ID && !AUCTION_ID) throw new Error('SALE_ID (or AUCTION_ID for bid-war.js) is required (printed by `stampede seed`)');

/** Tokens, one per buyer, shared read-only between VUs. */
export const tokens = new SharedArray('tokens', () =>
  open(__ENV.TOKENS_FILE || '../results/tokens.txt')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => line.split(' ')[1] || ''),
);

export const outcomes = {
  accepted: new Counter('purchase_accepted'),
  soldOut: new Counter('purchase_sold_out'),
  limitReached: new Counter('purchase_limit_reached'),
  inProgress: new Counter('purchase_in_progress'),
  rateLimited: new Counter('purchase_rate_limited'),
  otherRefusal: new Counter('purchase_other_refusal'),
  serverError: new Counter('purchase_5xx'),
};

/**
 * Thresholds every script shares: p99 latency, error rate, no 5xx and no
 * refusal but the expected ones, counted by the `<metric>_5xx` and
 * `<metric>_other_refusal` counters.
 * @param {string} [metric]
 */
export function thresholds(metric = 'purchase') {
  return {
    http_req_duration: [`p(99)<${scenarios.thresholds.p99Ms}`],
    http_req_failed: [`rate<${scenarios.thresholds.maxErrorRate}`],
    [`${metric}_5xx`]: ['count==0'],
    [`${metric}_other_refusal`]: ['count==0'],
  };
}

/** @typedef {import('k6/options').ConstantArrivalRateScenario} ConstantArrivalRate */
/** @typedef {import('k6/options').RampingArrivalRateScenario} RampingArrivalRate */
/** @typedef {'timeUnit' | 'preAllocatedVUs' | 'maxVUs'} ArrivalRateCommon */

/**
 * An arrival-rate scenario: iterations start at the rate asked (per second)
 * whether or not earlier ones were answered, with `vus`' pool of VUs to run them.
 * @param {{ preAllocatedVUs: number, maxVUs: number }} vus
 * @param {Omit<ConstantArrivalRate, ArrivalRateCommon> | Omit<RampingArrivalRate, ArrivalRateCommon>} shape
 * @returns {ConstantArrivalRate | RampingArrivalRate}
 */
export function arrivalRate(vus, shape) {
  return { ...shape, timeUnit: '1s', preAllocatedVUs: vus.preAllocatedVUs, maxVUs: vus.maxVUs };
}

// 202, 409 and 429 are answers, not failures.
http.setResponseCallback(http.expectedStatuses(...scenarios.expectedStatuses));

/**
 * The machine code of a problem+json answer, or undefined.
 * @param {import('k6/http').RefinedResponse<any>} res
 * @returns {string | undefined}
 */
export function problemCode(res) {
  try {
    return /** @type {{ code?: string }} */ (res.json()).code;
  } catch (_) {
    return undefined;
  }
}

/**
 * Counts one answer by its outcome: a 202 as accepted, a 5xx as a server
 * error, any other by its problem code in `refusals` (a code not there as
 * otherRefusal); and checks its status is one the scenarios expect.
 * @param {import('k6/http').RefinedResponse<any>} res
 * @param {{ accepted: Counter, serverError: Counter, otherRefusal: Counter }} counters
 * @param {Map<string, Counter>} refusals
 */
export function countAnswer(res, counters, refusals) {
  if (res.status === 202) counters.accepted.add(1);
  else if (res.status >= 500) counters.serverError.add(1);
  else (refusals.get(problemCode(res) ?? '') ?? counters.otherRefusal).add(1);
  check(res, { 'expected status': (r) => scenarios.expectedStatuses.includes(r.status) });
}

const purchaseRefusals = new Map([
  ['SOLD_OUT', outcomes.soldOut],
  ['LIMIT_REACHED', outcomes.limitReached],
  ['PURCHASE_IN_PROGRESS', outcomes.inProgress],
  ['RATE_LIMITED', outcomes.rateLimited],
]);

/** One purchase by the buyer of this iteration (distinct buyers, in order). */
export function purchase() {
  const i = exec.scenario.iterationInTest % tokens.length;
  const res = http.post(`${TARGET_URL}/v1/sales/${SALE_ID}/purchases`, '{"quantity":1}', {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[i]}` },
    tags: { name: 'purchase' },
  });
  countAnswer(res, outcomes, purchaseRefusals);
  return res;
}
