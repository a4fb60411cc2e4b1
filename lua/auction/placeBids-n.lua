--[[
  placeBids: decide a batch of bids on one auction, in order, atomically.

  The api sends the bids that reached it in one event-loop turn for the same
  auction as one call (one bid is a batch of one). Each bid is decided
  exactly as if it were alone and the bids before it had been decided
  first: auction known, idempotent replay, bidder rate limit, auction open
  (Redis TIME, read once per batch: a bid at or after endsAt is refused, so
  nothing is accepted after the close, even in the same millisecond), amount
  at least the next minimum, maximum above the bidder's own standing one.
  On acceptance it records the bid, updates leader and price from the book's
  cached top two, closes the auction at once on a buy-now bid (the bids
  after it in the batch find it closed), extends a soft close (never past
  the hard close) and appends the events to the outbox. What a batch shares
  is done once: reading the auction hash, the clock, writing the auction
  hash back and pushing the new state to live subscribers. A refused bid
  changes nothing but its bidder's rate counter.

  KEYS[1] auction   {auction:<id>}              KEYS[4] standing  {auction:<id>}:standing
  KEYS[2] bids      {auction:<id>}:bids         KEYS[5] history   {auction:<id>}:history
  KEYS[3] book      {auction:<id>}:book         KEYS[6] outbox    {auction:<id>}:outbox
  then for bid i (from 1), KEYS[6 + 3(i-1) + 1 .. 3]:
    mine {auction:<id>}:mine:<buyer>, rate {auction:<id>}:rate:<buyer>,
    idem {auction:<id>}:idem:<buyer>:<key>

  ARGV[1] live channel ('' = none)   ARGV[2] most offers in a close event
  then for bid i, ARGV[2 + 8(i-1) + 1 .. 8]:
    buyerId, amount, maxAmount ('' = a manual bid), bidId (fresh),
    request fingerprint ('' without an Idempotency-Key),
    rate limit: attempts per window, rate limit window (ms),
    idempotency record lifetime (ms)

  Output: one reply per bid, in order; the first element is an OUTCOME code
  (src/platform/redis/outcomes.ts):
    { applied, bidId, leading, price, endsAt, nextMinimum, closed }         accepted (leading/closed: 1 or 0)
    { alreadyApplied, bidId, leading, price, endsAt, nextMinimum, closed }  replay of an accepted bid (current state)
    { bidTooLow, nextMinimum }                                              amount below the next minimum
    { notAboveOwnBid, ownMaximum }                                          not above the bidder's own standing bid
    { closed, status }                                                      auction closed or cancelled (or past its end, awaiting the scheduler)
    { notOpenYet, startsAt }                                                auction not open yet
    { rateLimited, retryAfterMs }                                           rate limited
    { notFound }                                                            auction unknown
    { idempotencyMismatch, bidId }                                          idempotency key reused with another body

  Bid i's first write comes before bid i+1's reads, so the type of every key
  of the batch is checked (damagedKeys) before the first bid is decided: a
  key of another type fails the whole call with a redis error naming it, and
  nothing written, not even a rate counter.
]]
--@include nowMs
--@include rateLimit
--@include auctionBook
--@include damagedKeys

local K = { auction = KEYS[1], bids = KEYS[2], book = KEYS[3], standing = KEYS[4], history = KEYS[5], outbox = KEYS[6] }
local channel, maxOffers = ARGV[1], tonumber(ARGV[2])
local count = (#KEYS - 6) / 3

local a = redis.call('HMGET', K.auction, 'id', 'status', 'startsAt', 'endsAt', 'hardCloseAt', 'softCloseMs',
  'startPrice', 'reserve', 'buyNow', 'rule', 'price', 'leader', 'bidCount', 'seq', 'salt', 'top', 'leaderBid')
local auctionId, rule = a[1], a[10]
if auctionId then
  local S = 'placeBids'
  writableAs(S, K.bids, 'hash')
  writableAs(S, K.book, 'zset')
  writableAs(S, K.standing, 'hash')
  writableAs(S, K.history, 'zset')
  writableAs(S, K.outbox, 'stream')
  for i = 1, count do
    local keyBase = 6 + 3 * (i - 1)
    writableAs(S, KEYS[keyBase + 1], 'zset')
    writableAs(S, KEYS[keyBase + 2], 'string')
    writableAs(S, KEYS[keyBase + 3], 'string')
  end
end
local now = nowMs()
local nowN = tonumber(now)

-- The auction's live state, kept here across the batch and written back once.
local status, price, leader, leaderBid = a[2], a[11], a[12], a[17]
local endsAtText = a[4]
local endsAt = tonumber(endsAtText)
local seq, bidCount = tonumber(a[14]), tonumber(a[13])
local top1, top2, topKnown = nil, nil, false
local changed = false

local function answer(code, id)
  return { code, id, leaderBid == id and 1 or 0, price, endsAtText, int(nextMinimumOf(price, a[7], rule)),
    status == 'open' and 0 or 1 }
end

local function decide(i)
  -- This bid's KEYS are keyBase + 1 .. 3, its ARGV argBase + 1 .. 8 (see the header).
  local keyBase, argBase = 6 + 3 * (i - 1), 2 + 8 * (i - 1)
  local buyer = ARGV[argBase + 1]
  local amount = tonumber(ARGV[argBase + 2])
  local max = ARGV[argBase + 3] == '' and amount or tonumber(ARGV[argBase + 3])
  local bidId, fingerprint = ARGV[argBase + 4], ARGV[argBase + 5]

  -- Unknown first: a replay needs the auction's state (the api loads the
  -- auction from Postgres on this answer and places the bid again).
  if not auctionId then return { OUTCOME.notFound } end
  if fingerprint ~= '' then
    local stored = redis.call('GET', KEYS[keyBase + 3])
    if stored then
      local sep = string.find(stored, '\n', 1, true)
      local storedId = string.sub(stored, sep + 1)
      if string.sub(stored, 1, sep - 1) == fingerprint then return answer(OUTCOME.alreadyApplied, storedId) end
      return { OUTCOME.idempotencyMismatch, storedId }
    end
  end

  local wait = rateLimited(KEYS[keyBase + 2], ARGV[argBase + 6], ARGV[argBase + 7])
  if wait then return { OUTCOME.rateLimited, wait } end

  if status ~= 'open' then return { OUTCOME.closed, status } end
  if nowN >= endsAt then return { OUTCOME.closed, 'ended' } end
  if nowN < tonumber(a[3]) then return { OUTCOME.notOpenYet, a[3] } end

  local nextMin = nextMinimumOf(price, a[7], rule)
  if amount < nextMin then return { OUTCOME.bidTooLow, int(nextMin) } end
  local prev = readBid(K.bids, redis.call('HGET', K.standing, buyer))
  if prev and max <= prev.max then return { OUTCOME.notAboveOwnBid, int(prev.max) } end

  -- All checks passed: writes only from here on.
  seq = seq + 1
  bidCount = bidCount + 1
  local bid = { id = bidId, buyer = buyer, amount = amount, max = max, seq = seq, status = 'active', at = now,
    bonus = prev and prev.bonus or 0 }
  if prev then redis.call('ZREM', K.book, memberOf(prev)) end
  redis.call('ZADD', K.book, max, memberOf(bid))
  redis.call('HSET', K.standing, buyer, bidId)
  redis.call('HSET', K.bids, bidId, encodeBid(bid))
  redis.call('ZADD', K.history, seq, bidId)
  redis.call('ZADD', KEYS[keyBase + 1], seq, bidId)
  if fingerprint ~= '' then
    redis.call('SET', KEYS[keyBase + 3], fingerprint .. '\n' .. bidId, 'PX', ARGV[argBase + 8])
  end

  -- The book's new top two: from the known ones and this bid, without
  -- reading the book (from the book for an auction without the cache).
  if topKnown then
    top1, top2 = topAfterBid(top1, top2, bid)
  elseif a[16] then
    local l, r = decodeTop(a[16])
    top1, top2 = topAfterBid(l, r, bid)
  else
    local _
    _, top1, top2 = leaderOf(K, rule)
  end
  topKnown = true
  changed = true

  local previousLeader = leader
  local buyNow = tonumber(a[9])
  local closing = buyNow > 0 and amount >= buyNow
  local priceN
  if closing then
    priceN, leader, leaderBid = buyNow, buyer, bidId
    endsAt = nowN
  else
    priceN, leader, leaderBid = priceOf(rule, top1, top2), top1.buyer, top1.id
  end
  price = int(priceN)

  emit(K, auctionId, 'bid_placed', seq, now, '"bidId":"' .. bidId .. '","buyerId":"' .. buyer ..
    '","amount":' .. int(amount) .. ',"maxAmount":' .. int(max) .. ',"placedAt":' .. now ..
    ',"price":' .. price .. ',"leader":"' .. leader .. '","leaderBid":"' .. leaderBid ..
    '","bidCount":' .. int(bidCount) .. ',"endsAt":' .. int(endsAt) ..
    -- The bidder this bid outbid, if any: the auctions worker tells them (off the hot path).
    ((previousLeader ~= '' and previousLeader ~= leader) and (',"outbid":"' .. previousLeader .. '"') or ''))

  if closing then
    status = 'closed'
    seq = seq + 1
    local offers = offersOf(K, rule, tonumber(a[8]), maxOffers, buyer)
    table.insert(offers, 1, '{"buyerId":"' .. buyer .. '","bidId":"' .. bidId .. '","price":' .. int(buyNow) ..
      ',"bonus":' .. int(bid.bonus) .. '}')
    emit(K, auctionId, 'closed', seq, now, '"reason":"buy_now","closedAt":' .. now .. ',"price":' .. price ..
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
  endsAtText = int(endsAt)
  return { OUTCOME.applied, bidId, leaderBid == bidId and 1 or 0, price, endsAtText, int(nextMinimumOf(price, a[7], rule)),
    closing and 1 or 0 }
end

local out = {}
for i = 1, count do out[i] = decide(i) end

if changed then
  redis.call('HSET', K.auction, 'seq', seq, 'bidCount', bidCount, 'price', price, 'leader', leader,
    'leaderBid', leaderBid, 'endsAt', endsAtText, 'top', encodeTop(top1, top2))
  publishLive(K, channel, { id = auctionId, price = price, startPrice = a[7], rule = rule, leader = leader,
    endsAt = endsAtText, bidCount = int(bidCount), status = status, reserve = a[8], salt = a[15] })
end
return out
