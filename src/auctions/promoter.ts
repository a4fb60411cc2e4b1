/**
 * The promoter's policies: how it picks the lucky bid among the standing
 * ones. An auction names its policy; the scheduler can be given others in
 * place of the built-in ones.
 */
import type { StoredBid } from './codec.js';
import type { PromoterPolicyName } from './rules.js';

/** Picks the lucky bid among the standing ones (or none). */
export type PromoterPolicy = (bids: StoredBid[], random: () => number) => StoredBid | undefined;

export const promoterPolicies: Record<PromoterPolicyName, PromoterPolicy> = {
  /** Every standing bid is equally likely. */
  uniform: (bids, random) => bids[Math.floor(random() * bids.length)],
  /** The later a bid was placed, the likelier: weight = its rank by sequence (1 for the oldest). */
  recency: (bids, random) => {
    const bySeq = [...bids].sort((a, b) => a.seq - b.seq);
    const totalWeight = (bySeq.length * (bySeq.length + 1)) / 2;
    let pick = random() * totalWeight;
    for (let i = 0; i < bySeq.length; i++) {
      pick -= i + 1;
      if (pick < 0) return bySeq[i];
    }
    return bySeq[bySeq.length - 1];
  },
};
