--[[
  settlePurchase: apply the settled outcome of a purchase to the sale's live
  state, exactly once. The orders worker calls it after the Postgres
  transaction committed; a redelivered message calls it again and changes
  nothing, because the transition is decided on the stored status.

  Transitions (anything else is a no-op):
    pending   -> confirmed : reserved -= q, sold += q
    pending   -> failed    : reserved -= q, available += q, bought[buyer] -= q
    pending   -> cancelled : same as failed
    confirmed -> cancelled : sold -= q, available += q, bought[buyer] -= q
  Leaving `pending` also clears the buyer's in-flight marker when it is this
  purchase's.

  KEYS[1] sale hash      {sale:<id>}
  KEYS[2] bought hash    {sale:<id>}:bought
  KEYS[3] inflight hash  {sale:<id>}:inflight
  KEYS[4] purchase hash  {sale:<id>}:purchase:<purchaseId>

  ARGV[1] target status: confirmed | failed | cancelled
  ARGV[2] reason ('' for none)
  ARGV[3] pub/sub channel announcing that a sold-out sale has stock again
  ARGV[4] settledAt (ms, from Postgres)
  ARGV[5] purchaseId

  Output:
    { 1, status }   transitioned to status
    { 0, status }   nothing to do; status is the stored one
    {-7 }           purchase unknown
]]
--@include releaseToStock

local rec = redis.call('HMGET', KEYS[4], 'status', 'buyer', 'quantity')
local status = rec[1]
if not status then return { -7 } end
local target = ARGV[1]
local qty = tonumber(rec[3])

local fromPending = status == 'pending' and (target == 'confirmed' or target == 'failed' or target == 'cancelled')
local refund = status == 'confirmed' and target == 'cancelled'
if not fromPending and not refund then return { 0, status } end

if fromPending and redis.call('HGET', KEYS[3], rec[2]) == ARGV[5] then
  redis.call('HDEL', KEYS[3], rec[2])
end

if target == 'confirmed' then
  redis.call('HINCRBY', KEYS[1], 'reserved', -qty)
  redis.call('HINCRBY', KEYS[1], 'sold', qty)
else
  releaseToStock(KEYS[1], fromPending and 'reserved' or 'sold', qty, ARGV[3])
  redis.call('HINCRBY', KEYS[2], rec[2], -qty)
end
redis.call('HSET', KEYS[4], 'status', target, 'reason', ARGV[2], 'settledAt', ARGV[4])
return { 1, target }
