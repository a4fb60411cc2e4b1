--[[
  addStock: add units to a sale's stock (a sharded sale's shard 0: the
  shards' transfers carry them to where buyers are).

  KEYS[1] sale hash  {sale:<id>}

  ARGV[1] units to add (positive integer)
  ARGV[2] pub/sub channel announcing that a sold-out sale has stock again

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, available, stock }  added
    { notFound }                   sale unknown
]]

local available = redis.call('HGET', KEYS[1], 'available')
if not available then return { OUTCOME.notFound } end
local add = tonumber(ARGV[1])
redis.call('HINCRBY', KEYS[1], 'stock', add)
-- Shard 0 of a sharded sale also keeps the sale's whole stock (loadSale-2.lua).
if redis.call('HEXISTS', KEYS[1], 'total') == 1 then redis.call('HINCRBY', KEYS[1], 'total', add) end
local now = redis.call('HINCRBY', KEYS[1], 'available', add)
if tonumber(available) <= 0 then
  redis.call('PUBLISH', ARGV[2], redis.call('HGET', KEYS[1], 'id'))
end
return { OUTCOME.applied, now, tonumber(redis.call('HGET', KEYS[1], 'stock')) }
