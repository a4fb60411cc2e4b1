--[[
  trimOutbox: drop outbox entries that the relay group has acknowledged, and
  nothing else. The safe point is the oldest entry still pending (delivered,
  not acknowledged); with none pending, everything before the group's
  last-delivered id has been acknowledged.

  KEYS[1] outbox stream

  ARGV[1] relay consumer group name

  Output:
    { trimmed, minId }   entries removed, and the MINID used ('' when none)
]]

local ok, groups = pcall(redis.call, 'XINFO', 'GROUPS', KEYS[1])
if not ok then return { 0, '' } end
local lastDelivered = nil
for _, g in ipairs(groups) do
  local name, last
  for i = 1, #g, 2 do
    if g[i] == 'name' then name = g[i + 1] end
    if g[i] == 'last-delivered-id' then last = g[i + 1] end
  end
  if name == ARGV[1] then lastDelivered = last end
end
if not lastDelivered or lastDelivered == '0-0' then return { 0, '' } end

local pending = redis.call('XPENDING', KEYS[1], ARGV[1])
local minId
if tonumber(pending[1]) > 0 then
  minId = pending[2]
else
  -- Nothing pending: the last delivered entry is acknowledged too, so keep from the id after it.
  local dash = string.find(lastDelivered, '-', 1, true)
  minId = string.sub(lastDelivered, 1, dash - 1) .. '-' .. string.format('%d', tonumber(string.sub(lastDelivered, dash + 1)) + 1)
end
return { redis.call('XTRIM', KEYS[1], 'MINID', minId), minId }
