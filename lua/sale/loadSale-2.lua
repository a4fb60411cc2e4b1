--[[
  loadSale: put a sale's live state into Redis from its Postgres record.
  The first load sets the counters; later loads refresh only the terms
  (status, window, limit, price, private) and never touch the counters, so
  reloading a live sale cannot resurrect sold stock. A private sale's list of
  eligible buyers is not loaded here (setEligibleBuyers-2.lua): until it is,
  nobody may buy it.

  KEYS[1] sale hash      {sale:<id>}
  KEYS[2] outbox stream  {sale:<id>}:outbox

  ARGV[1] saleId
  ARGV[2] status: open | closed
  ARGV[3] startsAt (ms)
  ARGV[4] endsAt (ms)
  ARGV[5] per-buyer limit
  ARGV[6] unit price (minor units)
  ARGV[7] currency
  ARGV[8] stock (total)
  ARGV[9] already settled (sold) quantity, used only on the first load
  ARGV[10] relay consumer group name
  ARGV[11] private: '1' for a private sale, '0' otherwise
  ARGV[12] shards: how many shards the sale's stock is split across (src/sales/shards.ts); '1' when unsharded
  ARGV[13] the sale's whole stock, kept as `total` in shard 0's hash of a sharded sale ('' otherwise)

  A sharded sale is loaded shard by shard, each shard's hash with the sale's
  terms, its own part of the stock (ARGV[8]) and what its buyers hold (ARGV[9]).

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied }         created
    { alreadyApplied }  existed; terms refreshed
]]

local exists = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[1], 'status', ARGV[2], 'startsAt', ARGV[3], 'endsAt', ARGV[4],
  'limit', ARGV[5], 'price', ARGV[6], 'currency', ARGV[7], 'private', ARGV[11])
if exists == 1 then return { OUTCOME.alreadyApplied } end
-- Fixed at creation: a later load (a terms refresh that does not know the split) never changes it.
redis.call('HSET', KEYS[1], 'shards', ARGV[12])
local sold = tonumber(ARGV[9])
redis.call('HSET', KEYS[1], 'stock', ARGV[8], 'available', tonumber(ARGV[8]) - sold, 'reserved', 0, 'sold', sold)
if ARGV[13] ~= '' then redis.call('HSET', KEYS[1], 'total', ARGV[13]) end
-- The group starts at 0 so that nothing appended before the relay first
-- reads is skipped. BUSYGROUP means it is already there.
local ok = pcall(redis.call, 'XGROUP', 'CREATE', KEYS[2], ARGV[10], '0', 'MKSTREAM')
return { OUTCOME.applied }
