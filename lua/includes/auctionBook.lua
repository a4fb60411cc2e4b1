-- The auction book, shared by every auction script.
--
-- Keys of an auction (all under the hash tag {auction:<id>}):
--   auction   hash   terms and live state (see loadAuction)
--   bids      hash   bidId -> 'buyer|amount|max|seq|status|placedAt|bonus'
--   book      zset   one member per bidder with a standing bid:
--                    score = the bidder's maximum (a proxy maximum, or the
--                    amount of a manual bid); member = inverted sequence
--                    (12 digits) .. ':' .. buyer .. ':' .. bidId, so that
--                    among equal maxima the EARLIER bid sorts highest
--                    (ZREVRANGE), and the top bids are read without a
--                    detour through `standing`
--   standing  hash   buyer -> bidId of the bidder's standing bid
--   auction.top      the book's two best standing bids, cached so that a bid
--                    decides leader and price without reading the book:
--                    leaderBuyer|leaderBid|leaderAmount|leaderMax|runnerBuyer|runnerMax
--                    (runner fields empty with a lone bidder; '' with none).
--                    Every script that changes the book stores it (placeBids
--                    from the old top two and the new bid, the others from
--                    the book); an auction hash without it (loaded by an
--                    older release) has it computed from the book.
--
-- Prices: with a leader L and a runner-up R, the price is one increment
-- above R's maximum, capped by L's maximum and never below L's own amount:
--   price = max(L.amount, min(L.max, R.max + increment(R.max)))
-- A lone bidder pays their own amount. The book alone determines the price,
-- so replaying the bids rebuilds exactly the same state.

local SEQ_BASE = 999999999999

-- int(n): an integer as decimal text (tostring turns large numbers into 1e+15).
local function int(n)
  return string.format('%d', n)
end

-- increment(rule, price): the smallest raise over `price` the rule asks for.
--   'abs:<minor units>' | 'pct:<basis points>' | 'tier:<from>:<step>,<from>:<step>,...'
-- Parsed rules are kept across calls (the library's top level runs once),
-- as { kind, value } or { 'tier', {from, step, from, step, ...} }: a bid
-- needs the increment up to three times. The cache is emptied when it holds
-- RULE_CACHE_SIZE rules, so it stays small whatever the number of auctions.
local RULE_CACHE_SIZE = 1000
local rules, ruleCount = {}, 0
local function parseRule(rule)
  local kind, rest = string.match(rule, '^(%a+):(.*)$')
  local parsed
  if kind == 'abs' or kind == 'pct' then
    parsed = { kind, tonumber(rest) }
  else
    local tiers = {}
    for from, step in string.gmatch(rest, '(%d+):(%d+)') do
      tiers[#tiers + 1] = tonumber(from)
      tiers[#tiers + 1] = tonumber(step)
    end
    parsed = { 'tier', tiers }
  end
  if ruleCount >= RULE_CACHE_SIZE then rules, ruleCount = {}, 0 end
  rules[rule] = parsed
  ruleCount = ruleCount + 1
  return parsed
end

local function increment(rule, price)
  local r = rules[rule] or parseRule(rule)
  local kind = r[1]
  if kind == 'abs' then return r[2] end
  if kind == 'pct' then
    local inc = math.ceil(price * r[2] / 10000)
    if inc < 1 then inc = 1 end
    return inc
  end
  local inc, tiers = 1, r[2]
  for i = 1, #tiers, 2 do
    if price >= tiers[i] then inc = tiers[i + 1] else break end
  end
  return inc
end

-- parseBid(id, raw): the bid stored as `raw` in the bids hash, or nil without one:
-- { id, buyer, amount, max, seq, status, at, bonus } (at stays text: it is written back as read).
local function parseBid(id, raw)
  if not raw then return nil end
  local buyer, amount, max, seq, status, at, bonus =
    string.match(raw, '^([^|]*)|(%d+)|(%d+)|(%d+)|(%a+)|(%d+)|(%d+)$')
  return { id = id, buyer = buyer, amount = tonumber(amount), max = tonumber(max), seq = tonumber(seq),
    status = status, at = at, bonus = tonumber(bonus) }
end

-- encodeBid(b): a bid as the bids hash stores it (parseBid's inverse).
local function encodeBid(b)
  return b.buyer .. '|' .. int(b.amount) .. '|' .. int(b.max) .. '|' .. int(b.seq) .. '|' .. b.status .. '|' .. b.at .. '|' .. int(b.bonus)
end

-- memberOf(b): the book member of standing bid b (see `book` above).
local function memberOf(b)
  return string.format('%012d', SEQ_BASE - b.seq) .. ':' .. b.buyer .. ':' .. b.id
end

-- memberParts(m): buyer, bidId of a book member.
local function memberParts(m)
  return string.match(m, '^%d+:([^:]+):(.+)$')
end

-- readBid(bidsKey, id): the bid, or nil (id may be false: a missing hash field)
local function readBid(bidsKey, id)
  if not id then return nil end
  return parseBid(id, redis.call('HGET', bidsKey, id))
end

-- ranking(bookKey, bidsKey, count, skipBuyer): up to `count` standing bids, best first,
-- leaving out skipBuyer's (nil: nobody's); one ZREVRANGE and one HMGET, whatever the count.
local function ranking(bookKey, bidsKey, count, skipBuyer)
  local ids = {}
  for _, m in ipairs(redis.call('ZREVRANGE', bookKey, 0, count)) do
    local buyer, id = memberParts(m)
    if buyer ~= skipBuyer then
      ids[#ids + 1] = id
      if #ids >= count then break end
    end
  end
  if #ids == 0 then return {} end
  local raw = redis.call('HMGET', bidsKey, unpack(ids))
  local out = {}
  for i, id in ipairs(ids) do out[i] = parseBid(id, raw[i]) end
  return out
end

-- priceOf(rule, l, r): the auction price with leading bid l and runner-up r (see Prices above);
-- nil without a leader.
local function priceOf(rule, l, r)
  if not l then return nil end
  if not r then return l.amount end
  local p = r.max + increment(rule, r.max)
  if l.max < p then p = l.max end
  if l.amount > p then p = l.amount end
  return p
end

-- handleOf(salt, buyer): the anonymous handle bidders are shown as.
local function handleOf(salt, buyer)
  if buyer == '' then return '' end
  return 'bidder-' .. string.sub(redis.sha1hex(salt .. ':' .. buyer), 1, 8)
end

-- encodeTop(l, r) / decodeTop(s): the cached top two (see `auction.top` above).
-- Decoded, the leader is { buyer, id, amount, max } and the runner-up { buyer, max }.
local function encodeTop(l, r)
  if not l then return '' end
  return l.buyer .. '|' .. l.id .. '|' .. int(l.amount) .. '|' .. int(l.max) .. '|' ..
    (r and (r.buyer .. '|' .. int(r.max)) or '|')
end

local function decodeTop(s)
  if s == '' then return nil, nil end
  local lb, lid, la, lm, rb, rm = string.match(s, '^([^|]*)|([^|]*)|(%d+)|(%d+)|([^|]*)|(%d*)$')
  local l = { buyer = lb, id = lid, amount = tonumber(la), max = tonumber(lm) }
  if rb == '' then return l, nil end
  return l, { buyer = rb, max = tonumber(rm) }
end

-- topAfterBid(l, r, b): the top two once bid b (the newest: it loses ties)
-- replaced its bidder's standing bid, from the top two before it. Exact,
-- because an accepted bid's maximum is above both its bidder's standing
-- maximum and the runner-up's (it is at least one increment over the price,
-- and the price is at least the runner-up's maximum): b is one of the new
-- top two, and the bid it replaced, if it was among them, is gone from them.
local function topAfterBid(l, r, b)
  if not l or l.buyer == b.buyer then return b, r end
  if b.max > l.max then return b, l end
  return l, b
end

-- leaderOf(K, rule): price ('' without bids), leading bid and runner-up, read from the book.
-- refresh(K, rule): the same, stored in the auction hash (price, leader, leaderBid, top);
-- returns price ('' without bids) and the leading bid.
-- K = { auction =, bids =, book =, standing = }.
local function leaderOf(K, rule)
  local top = ranking(K.book, K.bids, 2, nil)
  local l = top[1]
  if not l then return '', nil, nil end
  return priceOf(rule, l, top[2]), l, top[2]
end

local function refresh(K, rule)
  local price, l, r = leaderOf(K, rule)
  if not l then
    redis.call('HSET', K.auction, 'price', '', 'leader', '', 'leaderBid', '', 'top', '')
    return '', nil
  end
  redis.call('HSET', K.auction, 'price', int(price), 'leader', l.buyer, 'leaderBid', l.id, 'top', encodeTop(l, r))
  return price, l
end

-- nextMinimumOf(price, startPrice, rule): the lowest amount the next bid may offer
-- (the start price while price is '' or nil: no bid yet).
local function nextMinimumOf(price, startPrice, rule)
  if price == '' or price == nil then return tonumber(startPrice) end
  return tonumber(price) + increment(rule, tonumber(price))
end

-- publishLive(K, channel[, a]): pushes the auction's public state to every api node.
-- `a` holds the fields below when the caller already knows them.
local LIVE_FIELDS = { 'id', 'price', 'startPrice', 'rule', 'leader', 'endsAt', 'bidCount', 'status', 'reserve', 'salt' }
local function publishLive(K, channel, a)
  if channel == '' then return end
  if not a then
    local v = redis.call('HMGET', K.auction, unpack(LIVE_FIELDS))
    a = {}
    for i, f in ipairs(LIVE_FIELDS) do a[f] = v[i] end
  end
  local price = a.price
  local reserveMet = price ~= '' and tonumber(price) >= tonumber(a.reserve)
  redis.call('PUBLISH', channel, 'auction/' .. a.id .. ' {"auctionId":"' .. a.id ..
    '","price":' .. (price == '' and 'null' or price) ..
    ',"nextMinimum":' .. int(nextMinimumOf(price, a.startPrice, a.rule)) ..
    ',"leader":' .. (a.leader == '' and 'null' or ('"' .. handleOf(a.salt, a.leader) .. '"')) ..
    ',"endsAt":' .. a.endsAt .. ',"bidCount":' .. a.bidCount .. ',"status":"' .. a.status ..
    '","reserveMet":' .. tostring(reserveMet) .. '}')
end

-- emit(K, auctionId, type, seq, now, data): appends one logged event to the outbox;
-- `type` is its catalogue name after 'auction.' (EVENT, src/events/catalogue.ts),
-- its id is <auctionId>:<seq>, `data` the JSON members after auctionId and seq.
local function emit(K, auctionId, type, seq, now, data)
  local id = auctionId .. ':' .. int(seq)
  redis.call('XADD', K.outbox, '*', 'type', EVENT['auction.' .. type], 'id', id, 'time', now,
    'subject', auctionId, 'data', '{"auctionId":"' .. auctionId .. '","seq":' .. int(seq) .. ',' .. data .. '}')
end

-- offersOf(K, rule, reserve, maxOffers, skipBuyer): who is offered the lot, in order, and at what price.
-- The leader pays the auction price; if they cannot pay, each next bidder is
-- offered it at their own highest bid (a second-chance offer), stopping below
-- the reserve. With skipBuyer (a buy-now winner, offered first by the caller)
-- every entry is a second-chance offer.
local function offersOf(K, rule, reserve, maxOffers, skipBuyer)
  local r = ranking(K.book, K.bids, maxOffers + 1, skipBuyer)
  local parts = {}
  for i = 1, math.min(#r, maxOffers) do
    local price = r[i].max
    if i == 1 and not skipBuyer then price = priceOf(rule, r[1], r[2]) end
    if price < reserve then break end
    parts[#parts + 1] = '{"buyerId":"' .. r[i].buyer .. '","bidId":"' .. r[i].id .. '","price":' .. int(price) ..
      ',"bonus":' .. int(r[i].bonus) .. '}'
  end
  return parts
end
