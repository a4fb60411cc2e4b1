--[[
  claimDueSends: claims the scheduled notifications whose due time has come
  (Redis TIME) and appends one `stampede.notification.due.v1` event per
  claimed send to the notifications' outbox, in the same call: a send taken
  off the index is a send recorded for the relay, so a scheduler that dies
  after this call loses nothing, and two schedulers never both claim one
  (the ZREM is the claim). The notifications worker fans it out, after its
  own conditional claim in Postgres (which a cancel may have beaten).

  KEYS[1] due index     {notifications}:due     (sorted set: send id -> due time, ms)
  KEYS[2] outbox stream {notifications}:outbox

  ARGV[1] most sends claimed by this call (a positive integer)

  Output:
    { sendId, ... }   the sends claimed now, earliest due first (empty: none due)
]]
--@include nowMs

local now = nowMs()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, id in ipairs(due) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('XADD', KEYS[2], '*', 'type', EVENT['notification.due'], 'id', id .. ':due', 'time', now, 'subject', id,
    'data', '{"sendId":"' .. id .. '"}')
end
return due
