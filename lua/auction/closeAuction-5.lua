--[[
  closeAuction: freeze an auction, once.

  mode 'time' closes it when its (possibly extended) end has passed: from
  this call on no bid is accepted. The close event names who is offered the
  lot, in order, and at what price (the leader first, at the auction price;
  if the leader cannot pay, the next at their own highest bid, and so on),
  stopping below the reserve. mode 'cancel' cancels an auction that
  has not closed; its bidders are released.

  KEYS[1] auction {auction:<id>}   KEYS[2] bids  KEYS[3] book  KEYS[4] standing  KEYS[5] outbox
  ARGV[1] mode ('time' | 'cancel')   ARGV[2] live channel   ARGV[3] most offers in the event

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, status, price, leader, reserveMet }  closed (or cancelled) now
    { alreadyApplied, status }                      already closed or cancelled
    { notFound }                                    auction unknown
    { notDue, endsAt }                              not due yet (mode 'time'): the end was extended
]]
--@include nowMs
--@include auctionBook

local K = { auction = KEYS[1], bids = KEYS[2], book = KEYS[3], standing = KEYS[4], outbox = KEYS[5] }
local a = redis.call('HMGET', K.auction, 'id', 'status', 'endsAt', 'rule', 'reserve', 'price', 'leader', 'leaderBid')
if not a[1] then return { OUTCOME.notFound } end
if a[2] ~= 'open' then return { OUTCOME.alreadyApplied, a[2] } end
local now = nowMs()
local seq
if ARGV[1] == 'cancel' then
  redis.call('HSET', K.auction, 'status', 'cancelled', 'closedAt', now, 'closeReason', 'cancelled')
  seq = redis.call('HINCRBY', K.auction, 'seq', 1)
  local bidders = {}
  for _, m in ipairs(redis.call('ZREVRANGE', K.book, 0, -1)) do bidders[#bidders + 1] = '"' .. memberParts(m) .. '"' end
  emit(K, a[1], 'cancelled', seq, now, '"cancelledAt":' .. now .. ',"bidders":[' .. table.concat(bidders, ',') .. ']')
  publishLive(K, ARGV[2])
  return { OUTCOME.applied, 'cancelled', a[6], a[7], 0 }
end
if tonumber(now) < tonumber(a[3]) then return { OUTCOME.notDue, a[3] } end

redis.call('HSET', K.auction, 'status', 'closed', 'closedAt', now, 'closeReason', 'time')
seq = redis.call('HINCRBY', K.auction, 'seq', 1)
local reserve = tonumber(a[5])
local reserveMet = a[6] ~= '' and tonumber(a[6]) >= reserve
local offers = offersOf(K, a[4], reserve, tonumber(ARGV[3]), nil)
emit(K, a[1], 'closed', seq, now, '"reason":"time","closedAt":' .. now .. ',"price":' ..
  (a[6] == '' and 'null' or a[6]) .. ',"leader":"' .. a[7] .. '","leaderBid":"' .. a[8] ..
  '","reserveMet":' .. tostring(reserveMet) .. ',"offers":[' .. table.concat(offers, ',') .. ']')
publishLive(K, ARGV[2])
return { OUTCOME.applied, 'closed', a[6], a[7], reserveMet and 1 or 0 }
