--[[
  expirePurchase: a purchase still pending past its reservation deadline is
  given up. The expiry is recorded on the purchase and appended to the sale's
  outbox as `stampede.purchase.expired.v1`; the orders worker settles it like
  any purchase event: with no order yet, a failed order (RESERVATION_EXPIRED)
  and the stock back on sale; with one (its settlement came first), nothing.
  Whichever of the two commits first in Postgres decides; the other finds
  the order. Asking again changes nothing.

  KEYS[1] purchase hash  {sale:<id>}:purchase:<purchaseId>
  KEYS[2] outbox stream  {sale:<id>}:outbox

  ARGV[1] purchaseId
  ARGV[2] the reservation deadline: how long after its acceptance (ms)

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, status }         expiry requested now
    { alreadyApplied, status }  no longer pending, or its expiry was requested already: nothing changed
    { notDue, dueAt }           its deadline has not passed (dueAt in ms)
    { notFound }                no such purchase
]]
--@include nowMs
--@include damagedKeys

local rec = redis.call('HMGET', KEYS[1], 'status', 'buyer', 'expiryRequested', 'sale', 'quantity', 'price', 'currency', 'createdAt')
if not rec[1] then return { OUTCOME.notFound } end
if rec[1] ~= 'pending' or rec[3] == '1' then return { OUTCOME.alreadyApplied, rec[1] } end
local acceptedAt = tonumber(rec[8])
local deadline = tonumber(ARGV[2])
if not acceptedAt or not rec[2] or not tonumber(rec[5]) or not tonumber(rec[6]) or not rec[7] or not rec[4] then
  return redis.error_reply('expirePurchase: purchase ' .. ARGV[1] .. ' has an incomplete record; nothing written')
end
if not deadline or deadline < 0 then return redis.error_reply('expirePurchase: the deadline must be a number of ms') end

local now = nowMs()
if tonumber(now) < acceptedAt + deadline then return { OUTCOME.notDue, acceptedAt + deadline } end
-- Checked before the first write: a flag set without its event would never expire the purchase.
writableAs('expirePurchase', KEYS[2], 'stream')
redis.call('HSET', KEYS[1], 'expiryRequested', '1')
redis.call('XADD', KEYS[2], '*', 'type', EVENT['purchase.expired'],
  'id', ARGV[1] .. ':expired', 'time', now, 'subject', ARGV[1],
  'data', '{"purchaseId":"' .. ARGV[1] .. '","saleId":"' .. rec[4] .. '","buyerId":"' .. rec[2] ..
    '","quantity":' .. rec[5] .. ',"unitPrice":' .. rec[6] .. ',"currency":"' .. rec[7] ..
    '","acceptedAt":' .. rec[8] .. ',"expiredAt":' .. now .. '}')
return { OUTCOME.applied, rec[1] }
