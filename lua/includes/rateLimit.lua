-- rateLimited(key, max, windowMs): counts one attempt in a fixed window and
-- returns the milliseconds to wait when it is over the limit, or nil. The
-- counter is the one write a refused attempt makes: counting attempts is
-- what a rate limit is.
local function rateLimited(key, max, windowMs)
  -- The first attempt of a window (the common case) is one call.
  if redis.call('SET', key, 1, 'PX', windowMs, 'NX') then return nil end
  local attempts = redis.call('INCR', key)
  if attempts <= tonumber(max) then return nil end
  local ttl = redis.call('PTTL', key)
  if ttl < 0 then
    redis.call('PEXPIRE', key, windowMs)
    ttl = tonumber(windowMs)
  end
  return ttl
end
