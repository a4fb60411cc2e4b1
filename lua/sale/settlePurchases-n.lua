--[[
  settlePurchases: apply the settled outcomes of purchases of ONE sale to its
  live state, each exactly once. The orders worker calls it once per sale per
  batch, after the Postgres transaction committed; a redelivered message calls
  it again and changes nothing, because each transition is decided on the
  stored status. Purchases are applied in order, so a purchase named twice
  (accepted, then cancelled, in one batch) ends in its last status.

  The sale's counters (available, reserved, sold) move once per call, by the
  totals of the purchases that transitioned.

  Transitions (anything else is a no-op):
    pending   -> confirmed : reserved -= q, sold += q
    pending   -> failed    : reserved -= q, available += q, bought[buyer] -= q
    pending   -> cancelled : same as failed
    confirmed -> cancelled : sold -= q, available += q, bought[buyer] -= q
  Leaving `pending` also clears the buyer's in-flight marker when it is this
  purchase's.

  Sold out: the call whose confirmations bring `sold` up to the sale's
  `stock` (from below) appends sale.sold_out to the sale's outbox, under the
  id `<saleId>:sold_out:<stock>`. Each confirmation moves `sold` exactly once
  (a redelivery is a no-op above), so exactly one call crosses the line for
  a given stock; the outbox entry is written in that same call, so the fact
  and its event cannot part. Stock added later and sold out again is a new
  stock, so a new event.

  KEYS[1]   sale hash      {sale:<id>}
  KEYS[2]   bought hash    {sale:<id>}:bought
  KEYS[3]   inflight hash  {sale:<id>}:inflight
  KEYS[4]   outbox stream  {sale:<id>}:outbox
  KEYS[4+i] purchase hash  {sale:<id>}:purchase:<purchaseId i>   (i = 1..n, n >= 1)

  ARGV[1] pub/sub channel announcing that a sold-out sale has stock again
  then, for purchase i, ARGV[4i-2 .. 4i+1]:
    target status (confirmed | failed | cancelled), reason ('' for none),
    settledAt (ms, from Postgres), purchaseId

  Output (codes: OUTCOME, src/platform/redis/outcomes.ts): for purchase i,
  elements 2i-1 and 2i:
    applied, status         transitioned to status
    alreadyApplied, status  nothing to do; status is the stored one
    notFound, ''            purchase unknown
]]
--@include nowMs
local P = 4
local n = #KEYS - P
if n < 1 or #ARGV ~= 1 + 4 * n then
  return redis.error_reply('settlePurchases: ' .. n .. ' purchases need ' .. (1 + 4 * n) .. ' arguments, got ' .. #ARGV)
end
local channel = ARGV[1]
local out = {}
-- The sale's counters move once per call, by the batch's totals.
local dReserved, dSold, dAvailable = 0, 0, 0

-- Reads and checks first, writes after: a purchase record without a buyer
-- or a quantity fails the call before anything is written (Redis does not
-- undo a script's writes when it fails half-way).
local recs = {}
for i = 1, n do
  local rec = redis.call('HMGET', KEYS[P + i], 'status', 'buyer', 'quantity')
  if rec[1] and (not rec[2] or rec[2] == '' or not tonumber(rec[3])) then
    return redis.error_reply('settlePurchases: purchase ' .. ARGV[4 * i + 1] .. ' has no buyer or quantity; nothing applied')
  end
  recs[i] = rec
end
-- A purchase named twice sees its own earlier transition.
local statusOf = {}
-- Buyers whose purchase left `pending`, and that purchase: their in-flight
-- markers are read and cleared together after the loop (two calls, not two
-- per purchase).
local leftBuyers, leftPurchases = {}, {}

for i = 1, n do
  local key = KEYS[P + i]
  local a = 4 * i - 2
  local target, reason, settledAt, purchaseId = ARGV[a], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3]
  local rec = recs[i]
  local status = statusOf[key] or rec[1]
  if not status then
    out[2 * i - 1], out[2 * i] = OUTCOME.notFound, ''
  else
    local qty = tonumber(rec[3])
    local fromPending = status == 'pending' and (target == 'confirmed' or target == 'failed' or target == 'cancelled')
    local refund = status == 'confirmed' and target == 'cancelled'
    if not fromPending and not refund then
      out[2 * i - 1], out[2 * i] = OUTCOME.alreadyApplied, status
    else
      if fromPending then
        leftBuyers[#leftBuyers + 1] = rec[2]
        leftPurchases[#leftPurchases + 1] = purchaseId
      end
      if fromPending then dReserved = dReserved - qty else dSold = dSold - qty end
      if target == 'confirmed' then
        dSold = dSold + qty
      else
        dAvailable = dAvailable + qty
        redis.call('HINCRBY', KEYS[2], rec[2], -qty)
      end
      redis.call('HSET', key, 'status', target, 'reason', reason, 'settledAt', settledAt)
      statusOf[key] = target
      out[2 * i - 1], out[2 * i] = OUTCOME.applied, target
    end
  end
end

if #leftBuyers > 0 then
  local markers = redis.call('HMGET', KEYS[3], unpack(leftBuyers))
  local clear = {}
  for j = 1, #leftBuyers do
    if markers[j] == leftPurchases[j] then clear[#clear + 1] = leftBuyers[j] end
  end
  if #clear > 0 then redis.call('HDEL', KEYS[3], unpack(clear)) end
end

if dAvailable > 0 then
  local before = tonumber(redis.call('HGET', KEYS[1], 'available') or '0')
  redis.call('HINCRBY', KEYS[1], 'available', dAvailable)
  -- A sold-out sale has stock again: api nodes drop their sold-out cache at once.
  if before <= 0 and channel ~= '' then
    redis.call('PUBLISH', channel, redis.call('HGET', KEYS[1], 'id'))
  end
end
if dReserved ~= 0 then redis.call('HINCRBY', KEYS[1], 'reserved', dReserved) end
if dSold ~= 0 then
  local stockSold = redis.call('HMGET', KEYS[1], 'stock', 'sold', 'id')
  local stock, soldBefore = tonumber(stockSold[1]), tonumber(stockSold[2] or '0')
  redis.call('HINCRBY', KEYS[1], 'sold', dSold)
  if stock and stock > 0 and soldBefore < stock and soldBefore + dSold >= stock then
    local now = nowMs()
    local saleId = stockSold[3]
    redis.call('XADD', KEYS[4], '*', 'type', EVENT['sale.sold_out'], 'id', saleId .. ':sold_out:' .. stock,
      'time', now, 'subject', saleId,
      'data', '{"saleId":"' .. saleId .. '","stock":' .. stock .. ',"soldOutAt":' .. now .. '}')
  end
end
return out
