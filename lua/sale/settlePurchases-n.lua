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
  stock, so a new event. A shard of a sharded sale (its hash has shards > 1)
  never announces it: the sale is sold out only when every shard is
  (announceSoldOut-2.lua).

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

  Reads and checks first, writes last (Redis does not undo a script's
  writes when it fails half-way): every purchase record, the sale's
  counters, the in-flight markers and bought quantities it will change are
  read and checked before the first write, so a damaged key (another type,
  a counter that holds no number, a record without buyer or quantity) fails
  the whole call with a redis error naming it, and nothing written.
]]
--@include damagedKeys
--@include nowMs
local P = 4
local n = #KEYS - P
local S = 'settlePurchases'
if n < 1 or #ARGV ~= 1 + 4 * n then
  return redis.error_reply(S .. ': ' .. n .. ' purchases need ' .. (1 + 4 * n) .. ' arguments, got ' .. #ARGV)
end
local channel = ARGV[1]
local out = {}

local recs = {}
for i = 1, n do
  local rec = redis.call('HMGET', KEYS[P + i], 'status', 'buyer', 'quantity')
  if rec[1] and (not rec[2] or rec[2] == '' or not tonumber(rec[3])) then
    return redis.error_reply(S .. ': purchase ' .. ARGV[4 * i + 1] .. ' has no buyer or quantity; nothing applied')
  end
  recs[i] = rec
end
local sale = redis.call('HMGET', KEYS[1], 'available', 'reserved', 'sold', 'id', 'stock', 'shards')
-- One shard of a sale split across slots (src/sales/shards.ts) selling out is not the sale selling
-- out: the orders worker announces that once every shard has sold (announceSoldOut-2.lua).
local sharded = tonumber(sale[6] or '1') > 1
local available = counterOf(S, KEYS[1], 'available', sale[1])
counterOf(S, KEYS[1], 'reserved', sale[2])
local soldBefore = counterOf(S, KEYS[1], 'sold', sale[3])
local stock = counterOf(S, KEYS[1], 'stock', sale[5])
writableAs(S, KEYS[4], 'stream')

-- The transitions, decided without writing. The sale's counters move once
-- per call, by the batch's totals; a purchase named twice sees its own
-- earlier transition.
local dReserved, dSold, dAvailable = 0, 0, 0
local statusOf = {}
local updates = {}            -- { key, target, reason, settledAt }, in order
local boughtDelta, boughtBuyers = {}, {}
-- Buyers whose purchase left `pending`, and that purchase: their in-flight
-- markers are read and cleared together (two calls, not two per purchase).
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
        dReserved = dReserved - qty
      else
        dSold = dSold - qty
      end
      if target == 'confirmed' then
        dSold = dSold + qty
      else
        dAvailable = dAvailable + qty
        if not boughtDelta[rec[2]] then
          boughtDelta[rec[2]] = 0
          boughtBuyers[#boughtBuyers + 1] = rec[2]
        end
        boughtDelta[rec[2]] = boughtDelta[rec[2]] - qty
      end
      updates[#updates + 1] = { key, target, reason, settledAt }
      statusOf[key] = target
      out[2 * i - 1], out[2 * i] = OUTCOME.applied, target
    end
  end
end

local clear = {}
if #leftBuyers > 0 then
  local markers = redis.call('HMGET', KEYS[3], unpack(leftBuyers))
  for j = 1, #leftBuyers do
    if markers[j] == leftPurchases[j] then clear[#clear + 1] = leftBuyers[j] end
  end
end
if #boughtBuyers > 0 then
  local bought = redis.call('HMGET', KEYS[2], unpack(boughtBuyers))
  for j = 1, #boughtBuyers do counterOf(S, KEYS[2], boughtBuyers[j], bought[j]) end
end

-- Every read done and checked: writes only from here on.
for _, u in ipairs(updates) do
  redis.call('HSET', u[1], 'status', u[2], 'reason', u[3], 'settledAt', u[4])
end
for _, buyer in ipairs(boughtBuyers) do redis.call('HINCRBY', KEYS[2], buyer, boughtDelta[buyer]) end
if #clear > 0 then redis.call('HDEL', KEYS[3], unpack(clear)) end
if dAvailable > 0 then
  redis.call('HINCRBY', KEYS[1], 'available', dAvailable)
  -- A sold-out sale has stock again: api nodes drop their sold-out cache at once.
  if available <= 0 and channel ~= '' then redis.call('PUBLISH', channel, sale[4]) end
end
if dReserved ~= 0 then redis.call('HINCRBY', KEYS[1], 'reserved', dReserved) end
if dSold ~= 0 then
  redis.call('HINCRBY', KEYS[1], 'sold', dSold)
  if not sharded and stock > 0 and soldBefore < stock and soldBefore + dSold >= stock then
    local now = nowMs()
    redis.call('XADD', KEYS[4], '*', 'type', EVENT['sale.sold_out'], 'id', sale[4] .. ':sold_out:' .. stock,
      'time', now, 'subject', sale[4],
      'data', '{"saleId":"' .. sale[4] .. '","stock":' .. stock .. ',"soldOutAt":' .. now .. '}')
  end
end
return out
