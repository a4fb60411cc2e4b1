--[[
  placeBid: decide one bid on an auction, atomically.

  Decides, in this order: idempotent replay, auction known, bidder rate
  limit, auction open (Redis TIME; a bid at or after endsAt is refused, so
  nothing is accepted after the close, even in the same millisecond), amount
  at least the next minimum, maximum above the bidder's own standing one.
  On acceptance it records the bid, recomputes leader and price from the
  book, closes the auction at once on a buy-now bid, extends a soft close
  (never past the hard close), appends the events to the outbox and pushes
  the new state to live subscribers. A refused bid changes nothing but the
  rate counter.

  KEYS[1] auction   {auction:<id>}              KEYS[6] mine      {auction:<id>}:mine:<buyer>
  KEYS[2] bids      {auction:<id>}:bids         KEYS[7] rate      {auction:<id>}:rate:<buyer>
  KEYS[3] book      {auction:<id>}:book         KEYS[8] idem      {auction:<id>}:idem:<buyer>:<key>
  KEYS[4] standing  {auction:<id>}:standing     KEYS[9] outbox    {auction:<id>}:outbox
  KEYS[5] history   {auction:<id>}:history

  ARGV[1] buyerId            ARGV[6] rate limit: attempts per window
  ARGV[2] amount             ARGV[7] rate limit window (ms)
  ARGV[3] maxAmount ('' = a manual bid)   ARGV[8] idempotency record lifetime (ms)
  ARGV[4] bidId (fresh)      ARGV[9] live channel ('' = none)
  ARGV[5] request fingerprint ('' without an Idempotency-Key)   ARGV[10] most offers in a close event

  Output (first element is the code):
    { 1, bidId, leading, price, endsAt, nextMinimum, closed }  accepted (leading/closed: 1 or 0)
    { 2, bidId, leading, price, endsAt, nextMinimum, closed }  replay of an accepted bid (current state)
    {-1, nextMinimum }     amount below the next minimum
    {-2, ownMaximum }      not above the bidder's own standing bid
    {-3, status }          auction closed or cancelled (or past its end, awaiting the scheduler)
    {-4, startsAt }        auction not open yet
    {-5, retryAfterMs }    rate limited
    {-6 }                  auction unknown
    {-7, bidId }           idempotency key reused with another body
]]
--@include nowMs
--@include rateLimit
--@include auctionBook

local K = { auction = KEYS[1], bids = KEYS[2], book = KEYS[3], standing = KEYS[4], outbox = KEYS[9] }
local buyer = ARGV[1]
local amount = tonumber(ARGV[2])
local max = ARGV[3] == '' and amount or tonumber(ARGV[3])
local bidId = ARGV[4]
local fingerprint = ARGV[5]

local function answer(code, id)
  local a = redis.call('HMGET', K.auction, 'price', 'leaderBid', 'endsAt', 'startPrice', 'rule', 'status')
  local leading = a[2] == id and 1 or 0
  return { code, id, leading, a[1], a[3], int(nextMinimumOf(a[1], a[4], a[5])), a[6] == 'open' and 0 or 1 }
end

if fingerprint ~= '' then
  local stored = redis.call('GET', KEYS[8])
  if stored then
    local sep = string.find(stored, '\n', 1, true)
    local storedId = string.sub(stored, sep + 1)
    if string.sub(stored, 1, sep - 1) == fingerprint then return answer(2, storedId) end
    return { -7, storedId }
  end
end

local a = redis.call('HMGET', K.auction, 'id', 'status', 'startsAt', 'endsAt', 'hardCloseAt', 'softCloseMs',
  'startPrice', 'reserve', 'buyNow', 'rule', 'price', 'leader', 'bidCount', 'seq', 'salt', 'top')
if not a[1] then return { -6 } end
local auctionId, rule = a[1], a[10]

local wait = rateLimited(KEYS[7], ARGV[6], ARGV[7])
if wait then return { -5, wait } end

local now = nowMs()
local nowN = tonumber(now)
if a[2] ~= 'open' then return { -3, a[2] } end
if nowN >= tonumber(a[4]) then return { -3, 'ended' } end
if nowN < tonumber(a[3]) then return { -4, a[3] } end

local nextMin = nextMinimumOf(a[11], a[7], rule)
if amount < nextMin then return { -1, int(nextMin) } end
local prev = readBid(K.bids, redis.call('HGET', K.standing, buyer))
if prev and max <= prev.max then return { -2, int(prev.max) } end

-- All checks passed: writes only from here on. The auction hash is written
-- once, at the end, with every field this bid changed.
local seq = tonumber(a[14]) + 1
local bidCount = tonumber(a[13]) + 1
local bid = { id = bidId, buyer = buyer, amount = amount, max = max, seq = seq, status = 'active', at = now,
  bonus = prev and prev.bonus or 0 }
if prev then redis.call('ZREM', K.book, memberOf(prev)) end
redis.call('ZADD', K.book, max, memberOf(bid))
redis.call('HSET', K.standing, buyer, bidId)
redis.call('HSET', K.bids, bidId, encodeBid(bid))
redis.call('ZADD', KEYS[5], seq, bidId)
redis.call('ZADD', KEYS[6], seq, bidId)
if fingerprint ~= '' then
  redis.call('SET', KEYS[8], fingerprint .. '\n' .. bidId, 'PX', ARGV[8])
end

-- The book's new top two: from the cached ones and this bid, without
-- reading the book (from the book for an auction without the cache).
local top1, top2
if a[16] then
  local l, r = decodeTop(a[16])
  top1, top2 = topAfterBid(l, r, bid)
else
  local _
  _, top1, top2 = leaderOf(K, rule)
end

local previousLeader = a[12]
local buyNow = tonumber(a[9])
local endsAt = tonumber(a[4])
local closing = buyNow > 0 and amount >= buyNow
local price, leader, leaderBid
if closing then
  price, leader, leaderBid = buyNow, buyer, bidId
  endsAt = nowN
else
  price, leader, leaderBid = priceOf(rule, top1, top2), top1.buyer, top1.id
end

emit(K, auctionId, 'bid_placed', seq, now, '"bidId":"' .. bidId .. '","buyerId":"' .. buyer ..
  '","amount":' .. int(amount) .. ',"maxAmount":' .. int(max) .. ',"placedAt":' .. now ..
  ',"price":' .. int(price) .. ',"leader":"' .. leader .. '","leaderBid":"' .. leaderBid ..
  '","bidCount":' .. int(bidCount) .. ',"endsAt":' .. int(endsAt) ..
  -- The bidder this bid outbid, if any: the auctions worker tells them (off the hot path).
  ((previousLeader ~= '' and previousLeader ~= leader) and (',"outbid":"' .. previousLeader .. '"') or ''))

local status = 'open'
if closing then
  status = 'closed'
  seq = seq + 1
  local offers = offersOf(K, rule, tonumber(a[8]), tonumber(ARGV[10]), buyer)
  table.insert(offers, 1, '{"buyerId":"' .. buyer .. '","bidId":"' .. bidId .. '","price":' .. int(buyNow) ..
    ',"bonus":' .. int(bid.bonus) .. '}')
  emit(K, auctionId, 'closed', seq, now, '"reason":"buy_now","closedAt":' .. now .. ',"price":' .. int(price) ..
    ',"leader":"' .. buyer .. '","leaderBid":"' .. bidId .. '","reserveMet":true,"offers":[' ..
    table.concat(offers, ',') .. ']')
  redis.call('HSET', K.auction, 'status', 'closed', 'closedAt', now, 'closeReason', 'buy_now')
else
  local soft = tonumber(a[6])
  if nowN >= endsAt - soft then
    local extended = math.min(nowN + soft, tonumber(a[5]))
    if extended > endsAt then
      endsAt = extended
      seq = seq + 1
      emit(K, auctionId, 'extended', seq, now, '"endsAt":' .. int(endsAt) .. ',"byBid":"' .. bidId .. '"')
    end
  end
end
local priceText, endsAtText = int(price), int(endsAt)
redis.call('HSET', K.auction, 'seq', seq, 'bidCount', bidCount, 'price', priceText, 'leader', leader, 'leaderBid', leaderBid,
  'endsAt', endsAtText, 'top', encodeTop(top1, top2))

local nextMinimum = int(nextMinimumOf(price, a[7], rule))
publishLive(K, ARGV[9], { id = auctionId, price = priceText, startPrice = a[7], rule = rule, leader = leader,
  endsAt = endsAtText, bidCount = int(bidCount), status = status, reserve = a[8], salt = a[15], nextMinimum = nextMinimum })
return { 1, bidId, leaderBid == bidId and 1 or 0, priceText, endsAtText, nextMinimum, closing and 1 or 0 }
