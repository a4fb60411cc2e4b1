--[[
  loadAuction: creates an auction's live state in Redis, unless it exists;
  with it, when asked, the auction.created event in the outbox (the same
  call, so the live auction and its announcement exist together or not at all).

  KEYS[1] auction hash   {auction:<id>}
  KEYS[2] outbox stream  {auction:<id>}:outbox

  ARGV  id, status, startsAt, endsAt, hardCloseAt, softCloseMs, currency,
        startPrice, reserve, buyNow (0 = none), increment rule, salt,
        promoter ('1' enabled, '0' not), relay consumer group,
        created: the auction.created event's data as JSON ('' = no event),
        appended under the id <id>:created only when this call creates the hash

  Output: { applied } created, { alreadyApplied } already there (its live state is left alone, no event written).
]]
--@include nowMs
if redis.call('EXISTS', KEYS[1]) == 1 then return { OUTCOME.alreadyApplied } end
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
  'hardCloseAt', ARGV[5], 'softCloseMs', ARGV[6], 'currency', ARGV[7], 'startPrice', ARGV[8],
  'reserve', ARGV[9], 'buyNow', ARGV[10], 'rule', ARGV[11], 'salt', ARGV[12], 'promoter', ARGV[13],
  'price', '', 'leader', '', 'leaderBid', '', 'top', '', 'bidCount', 0, 'seq', 0, 'closedAt', '', 'closeReason', '')
-- The relay's group may exist already (the outbox outlived the hash): BUSYGROUP is fine.
pcall(redis.call, 'XGROUP', 'CREATE', KEYS[2], ARGV[14], '0', 'MKSTREAM')
if ARGV[15] ~= '' then
  redis.call('XADD', KEYS[2], '*', 'type', EVENT['auction.created'], 'id', ARGV[1] .. ':created', 'time', nowMs(),
    'subject', ARGV[1], 'data', ARGV[15])
end
return { OUTCOME.applied }
