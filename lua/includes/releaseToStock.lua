-- releaseToStock(saleKey, field, qty, channel): move qty from `field`
-- (reserved or sold) back to available, and announce on `channel` when the
-- sale had been sold out, so api nodes drop their sold-out cache at once.
local function releaseToStock(saleKey, field, qty, channel)
  local before = tonumber(redis.call('HGET', saleKey, 'available') or '0')
  redis.call('HINCRBY', saleKey, field, -qty)
  redis.call('HINCRBY', saleKey, 'available', qty)
  if before <= 0 and channel ~= '' then
    redis.call('PUBLISH', channel, redis.call('HGET', saleKey, 'id'))
  end
end
