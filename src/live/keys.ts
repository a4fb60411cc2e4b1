/**
 * Pub/sub channel of live updates for WebSocket subscribers on every api
 * node. A message is `<topic> <json>`, e.g. `auction/auc_… {"price":…}`;
 * auction scripts publish it in the same call that changes the auction.
 */
export const LIVE_CHANNEL = 'stampede:live';
