--[[
  promoteBid: the promoter doubles one live bid for its lucky bidder.

  The bid must be a standing bid of an open auction whose promoter is on,
  and its bidder not yet lucky in this auction (one doubling per bidder:
  the bonus stays with the bidder's later bids).
  Its amount doubles; its maximum grows by the same amount; the bidder's
  bonus (what the house pays if they win) grows by it too. Leader and price
  are recomputed as for any bid. Doubling never extends the close.

  KEYS[1] auction {auction:<id>}   KEYS[2] bids  KEYS[3] book  KEYS[4] standing  KEYS[5] outbox
  ARGV[1] bidId   ARGV[2] live channel   ARGV[3] largest amount allowed after doubling

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, buyerId, added, price }  doubled
    { closed, status }                  auction closed
    { notFound }                        auction unknown
    { unknownBid }                      not a live bid (retracted, superseded, already doubled, or too large to double)
    { promoterOff }                     the promoter is off for this auction
]]
--@include nowMs
--@include auctionBook

local K = { auction = KEYS[1], bids = KEYS[2], book = KEYS[3], standing = KEYS[4], outbox = KEYS[5] }
local a = redis.call('HMGET', K.auction, 'id', 'status', 'endsAt', 'rule', 'promoter')
if not a[1] then return { OUTCOME.notFound } end
local now = nowMs()
if a[2] ~= 'open' then return { OUTCOME.closed, a[2] } end
if tonumber(now) >= tonumber(a[3]) then return { OUTCOME.closed, 'ended' } end
if a[5] ~= '1' then return { OUTCOME.promoterOff } end
local bid = readBid(K.bids, ARGV[1])
if not bid or bid.status ~= 'active' or bid.bonus > 0 or redis.call('HGET', K.standing, bid.buyer) ~= bid.id then return { OUTCOME.unknownBid } end
local added = bid.amount
if bid.max + added > tonumber(ARGV[3]) then return { OUTCOME.unknownBid } end

bid.amount = bid.amount + added
bid.max = bid.max + added
bid.bonus = bid.bonus + added
redis.call('HSET', K.bids, bid.id, encodeBid(bid))
redis.call('ZADD', K.book, bid.max, memberOf(bid))
local price, l = refresh(K, a[4])
local seq = redis.call('HINCRBY', K.auction, 'seq', 1)
emit(K, a[1], 'bid_doubled', seq, now, '"bidId":"' .. bid.id .. '","buyerId":"' .. bid.buyer ..
  '","added":' .. int(added) .. ',"amount":' .. int(bid.amount) .. ',"maxAmount":' .. int(bid.max) ..
  ',"bonus":' .. int(bid.bonus) .. ',"price":' .. int(price) .. ',"leader":"' .. l.buyer ..
  '","leaderBid":"' .. l.id .. '","doubledAt":' .. now)
publishLive(K, ARGV[2])
return { OUTCOME.applied, bid.buyer, int(added), int(price) }
