--[[
  announceSoldOut: appends sale.sold_out for a sharded sale once every shard
  has sold (the orders worker calls it after settling, with the sum of the
  shards' sold units it read), on shard 0, which keeps the sale's whole
  stock (`total`) and the stock it last announced. Called again for the same
  stock (a redelivery, two workers) it changes nothing. Stock added later
  and sold out again is a new stock, so a new event, as for one slot
  (settlePurchases-n.lua).

  KEYS[1] shard 0's sale hash  {sale:<id>}   total, soldOutAnnounced
  KEYS[2] its outbox stream    {sale:<id>}:outbox

  ARGV[1] units sold, summed over the shards

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied }         announced
    { alreadyApplied }  already announced for this stock
    { notDue }          not every unit is sold
    { notFound }        not a sharded sale in Redis
]]
--@include nowMs
local sale = redis.call('HMGET', KEYS[1], 'id', 'total', 'soldOutAnnounced')
if not sale[1] or not sale[2] then return { OUTCOME.notFound } end
local total = tonumber(sale[2])
if total <= 0 or tonumber(ARGV[1]) < total then return { OUTCOME.notDue } end
if sale[3] == sale[2] then return { OUTCOME.alreadyApplied } end
redis.call('HSET', KEYS[1], 'soldOutAnnounced', sale[2])
local now = nowMs()
redis.call('XADD', KEYS[2], '*', 'type', EVENT['sale.sold_out'], 'id', sale[1] .. ':sold_out:' .. sale[2],
  'time', now, 'subject', sale[1],
  'data', '{"saleId":"' .. sale[1] .. '","stock":' .. sale[2] .. ',"soldOutAt":' .. now .. '}')
return { OUTCOME.applied }
