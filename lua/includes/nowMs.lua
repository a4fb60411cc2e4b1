-- nowMs(): the server's clock as a string of integer milliseconds (Redis TIME),
-- so every api node agrees on when a sale opens or closes.
local function nowMs()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end
