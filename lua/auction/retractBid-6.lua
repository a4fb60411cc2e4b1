--[[
  retractBid: withdraw one bid, atomically.

  Only its bidder retracts it, only while the auction is open and outside its
  last W (soft-close) milliseconds, unless forced (an operator deleting the
  buyer). If it was the bidder's standing bid, the bidder falls back to their
  best remaining bid (or leaves the book); leader and price are recomputed.
  A retraction never extends the close.

  KEYS[1] auction   {auction:<id>}            KEYS[4] standing {auction:<id>}:standing
  KEYS[2] bids      {auction:<id>}:bids       KEYS[5] mine     {auction:<id>}:mine:<buyer>
  KEYS[3] book      {auction:<id>}:book       KEYS[6] outbox   {auction:<id>}:outbox

  ARGV[1] buyerId   ARGV[2] bidId   ARGV[3] force ('1' or '0')   ARGV[4] live channel

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, price, endsAt }         retracted
    { alreadyApplied, price, endsAt }  already retracted
    { closed, status }                 auction closed
    { notFound }                       auction unknown
    { tooLateToRetract, endsAt }       too late: inside the last W of the auction
    { unknownBid }                     no such bid of this buyer
]]
--@include nowMs
--@include auctionBook

local K = { auction = KEYS[1], bids = KEYS[2], book = KEYS[3], standing = KEYS[4], outbox = KEYS[6] }
local buyer, bidId = ARGV[1], ARGV[2]

local a = redis.call('HMGET', K.auction, 'id', 'status', 'endsAt', 'softCloseMs', 'rule', 'price', 'bidCount')
if not a[1] then return { OUTCOME.notFound } end
local bid = readBid(K.bids, bidId)
if not bid or bid.buyer ~= buyer then return { OUTCOME.unknownBid } end
if bid.status == 'retracted' then return { OUTCOME.alreadyApplied, a[6], a[3] } end
local now = nowMs()
if a[2] ~= 'open' then return { OUTCOME.closed, a[2] } end
if tonumber(now) >= tonumber(a[3]) then return { OUTCOME.closed, 'ended' } end
if ARGV[3] ~= '1' and tonumber(now) >= tonumber(a[3]) - tonumber(a[4]) then return { OUTCOME.tooLateToRetract, a[3] } end

-- Writes only from here on.
bid.status = 'retracted'
redis.call('HSET', K.bids, bidId, encodeBid(bid))
local fallback = ''
if redis.call('HGET', K.standing, buyer) == bidId then
  redis.call('ZREM', K.book, memberOf(bid))
  redis.call('HDEL', K.standing, buyer)
  local mine = redis.call('ZREVRANGE', KEYS[5], 0, -1)
  for _, id in ipairs(mine) do
    local b = readBid(K.bids, id)
    if b.status == 'active' then
      redis.call('ZADD', K.book, b.max, memberOf(b))
      redis.call('HSET', K.standing, buyer, id)
      fallback = id
      break
    end
  end
end
redis.call('HINCRBY', K.auction, 'bidCount', -1)
local price, l = refresh(K, a[5])
local seq = redis.call('HINCRBY', K.auction, 'seq', 1)
emit(K, a[1], 'bid_retracted', seq, now, '"bidId":"' .. bidId .. '","buyerId":"' .. buyer ..
  '","forced":' .. (ARGV[3] == '1' and 'true' or 'false') .. ',"fallbackBid":"' .. fallback ..
  '","price":' .. (price == '' and 'null' or int(price)) .. ',"leader":"' .. (l and l.buyer or '') ..
  '","leaderBid":"' .. (l and l.id or '') .. '","retractedAt":' .. now)
publishLive(K, ARGV[4])
return { OUTCOME.applied, price == '' and '' or int(price), a[3] }
