// @ts-check
/**
 * Bid war: every bidder on ONE hot auction, at a constant arrival rate. Each
 * iteration bids one increment above the previous iteration's amount, so
 * bids overtake each other in flight: the overtaken ones get BID_TOO_LOW
 * (an answer, not an error). Create the auction with `stampede seed
 * --auction` (it prints AUCTION_ID) or POST /v1/auctions.
 *
 *   k6 run -e AUCTION_ID=auc_... load/k6/bid-war.js
 *
 * Read the summary: http_req_duration p(99) is the bid latency; bid_accepted
 * / bid_too_low show how fierce the war was; bid_5xx and bid_other_refusal
 * must stay 0. Afterwards GET /v1/auctions/$AUCTION_ID: the leader holds
 * the highest bid.
 */
import http from 'k6/http';
import { Counter } from 'k6/metrics';
import exec from 'k6/execution';
import { arrivalRate, AUCTION_ID, countAnswer, scenarios, TARGET_URL, thresholds, tokens } from './lib.js';

const war = scenarios.bidWar;
const outcomes = {
  accepted: new Counter('bid_accepted'),
  tooLow: new Counter('bid_too_low'),
  rateLimited: new Counter('bid_rate_limited'),
  closed: new Counter('bid_auction_closed'),
  otherRefusal: new Counter('bid_other_refusal'),
  serverError: new Counter('bid_5xx'),
};
const refusals = new Map([
  ['BID_TOO_LOW', outcomes.tooLow],
  ['RATE_LIMITED', outcomes.rateLimited],
  ['AUCTION_CLOSED', outcomes.closed],
]);

/** @type {import('k6/options').Options} */
export const options = {
  scenarios: {
    war: arrivalRate(war, { executor: 'constant-arrival-rate', rate: war.rate, duration: `${war.holdSeconds}s` }),
  },
  thresholds: {
    ...thresholds('bid'),
    bid_accepted: ['count>0'],
  },
};

export default function () {
  if (!AUCTION_ID) throw new Error('AUCTION_ID is required');
  const n = exec.scenario.iterationInTest;
  const res = http.post(`${TARGET_URL}/v1/auctions/${AUCTION_ID}/bids`, JSON.stringify({ amount: war.startPrice + n * war.increment }), {
    headers: { 'content-type': 'application/json', authorization: `Bearer ${tokens[n % tokens.length]}` },
    tags: { name: 'bid' },
  });
  countAnswer(res, outcomes, refusals);
}
