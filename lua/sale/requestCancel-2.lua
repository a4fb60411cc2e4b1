--[[
  requestCancel: a buyer asks to cancel one of their purchases. The request
  is recorded on the purchase and appended to the sale's outbox as
  `stampede.purchase.cancel_requested.v1`; the orders worker settles it
  (release the stock, refund a confirmed order) exactly once. Asking again
  changes nothing.

  KEYS[1] purchase hash  {sale:<id>}:purchase:<purchaseId>
  KEYS[2] outbox stream  {sale:<id>}:outbox

  ARGV[1] buyerId of the caller
  ARGV[2] purchaseId

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, status }         cancellation requested now
    { alreadyApplied, status }  already requested (or already cancelled): nothing changed
    { notFound }                no such purchase for this buyer
    { notCancellable, status }  not cancellable (it failed)
]]
--@include nowMs

local rec = redis.call('HMGET', KEYS[1], 'status', 'buyer', 'cancelRequested', 'sale', 'quantity', 'price', 'currency', 'createdAt')
if not rec[1] or rec[2] ~= ARGV[1] then return { OUTCOME.notFound } end
if rec[1] == 'cancelled' or rec[3] == '1' then return { OUTCOME.alreadyApplied, rec[1] } end
if rec[1] == 'failed' then return { OUTCOME.notCancellable, rec[1] } end

local now = nowMs()
redis.call('HSET', KEYS[1], 'cancelRequested', '1')
redis.call('XADD', KEYS[2], '*', 'type', EVENT['purchase.cancel_requested'],
  'id', ARGV[2] .. ':cancel', 'time', now, 'subject', ARGV[2],
  'data', '{"purchaseId":"' .. ARGV[2] .. '","saleId":"' .. rec[4] .. '","buyerId":"' .. ARGV[1] ..
    '","quantity":' .. rec[5] .. ',"unitPrice":' .. rec[6] .. ',"currency":"' .. rec[7] ..
    '","acceptedAt":' .. rec[8] .. ',"requestedAt":' .. now .. '}')
return { OUTCOME.applied, rec[1] }
