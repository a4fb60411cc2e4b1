--[[
  transferIn: the second half of a transfer of stock between two shards of a
  sharded sale (see transferOut-2.lua), on the destination shard: adds the
  units to its stock and available, and records the transfer in its log,
  once per transfer id whoever calls it (the mover, or a later
  completeTransfers after a crash).

  KEYS[1] the destination shard's sale hash  {sale:<id>:<shard>}
  KEYS[2] its transfer log (hash)            {sale:<id>:<shard>}:transfers  transferId -> '<units> <source shard> in <arrived at, ms>'
          (the arrival is kept so a late second arrival changes nothing; the sweep drops it after an hour)

  ARGV[1] transfer id
  ARGV[2] units (what transferOut took)
  ARGV[3] source shard (integer)
  ARGV[4] pub/sub channel announcing that a sold-out sale has stock again

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, available }  added
    { alreadyApplied }      this transfer already arrived: nothing changed
    { notFound }            the destination shard is not in Redis (the transfer stays `out`, to be completed later)
]]
--@include nowMs
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then return { OUTCOME.alreadyApplied } end
local available = redis.call('HGET', KEYS[1], 'available')
if not available then return { OUTCOME.notFound } end
local units = tonumber(ARGV[2])
redis.call('HINCRBY', KEYS[1], 'stock', units)
local now = redis.call('HINCRBY', KEYS[1], 'available', units)
redis.call('HSET', KEYS[2], ARGV[1], units .. ' ' .. ARGV[3] .. ' in ' .. nowMs())
if tonumber(available) <= 0 then redis.call('PUBLISH', ARGV[4], redis.call('HGET', KEYS[1], 'id')) end
return { OUTCOME.applied, now }
