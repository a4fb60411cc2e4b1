-- Checks a script makes before its first write. Redis does not undo a
-- script's writes when a later command fails (a key of another type, a
-- counter holding no number), so every script reads and checks first and
-- writes last: a key it writes without having read it is checked here, and
-- a failed check fails the call with nothing written. These are programming
-- or operator errors (redis.error_reply), not business outcomes.

-- writableAs(script, key, expected): fails unless `key` is missing or of type `expected` ('hash', 'zset', 'stream', 'string').
local function writableAs(script, key, expected)
  local found = redis.call('TYPE', key).ok
  if found ~= 'none' and found ~= expected then
    error({ err = script .. ': ' .. key .. ' holds a ' .. found .. ', not a ' .. expected .. '; nothing written' })
  end
end

-- counterOf(script, key, field, raw): the integer a counter field holds (0 when missing), or fails naming it.
local function counterOf(script, key, field, raw)
  if raw == nil or raw == false then return 0 end
  if not string.match(raw, '^-?%d+$') then
    error({ err = script .. ': ' .. key .. ' ' .. field .. ' holds "' .. string.sub(raw, 1, 40) .. '", not an integer; nothing written' })
  end
  return tonumber(raw)
end
