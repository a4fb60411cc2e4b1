--[[
  transferOut: the first half of moving stock between two shards of a
  sharded sale (src/sales/shards.ts), on the source shard. Two slots cannot
  change in one atomic step, so a move is a logged transfer: this call takes
  the units off the source and records the transfer as `out` in the source's
  log, in one step; transferIn-2.lua adds them to the destination and
  records the transfer there, in one step, once whatever happens (its log
  says whether it already did). A transfer left `out` (the mover died in
  between) is completed by whoever finds it (completeTransfers): a unit is
  never lost (it stays in the log until it arrives) nor added twice (the
  destination's log refuses a second arrival).

  KEYS[1] the source shard's sale hash  {sale:<id>[:<shard>]}
  KEYS[2] its transfer log (hash)       {sale:<id>[:<shard>]}:transfers  transferId -> '<units> <dest shard> out'

  ARGV[1] transfer id (fresh, made by the caller)
  ARGV[2] units wanted (positive integer)
  ARGV[3] destination shard (integer)

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, units }         taken off the source and logged (units <= wanted: what was available)
    { alreadyApplied, units }  this transfer id was already taken
    { soldOut }                nothing available in the source
    { notFound }               the source shard is not in Redis
]]
local logged = redis.call('HGET', KEYS[2], ARGV[1])
if logged then return { OUTCOME.alreadyApplied, tonumber(string.match(logged, '^(%d+)')) } end
local available = redis.call('HGET', KEYS[1], 'available')
if not available then return { OUTCOME.notFound } end
local units = math.min(tonumber(ARGV[2]), tonumber(available))
if units <= 0 then return { OUTCOME.soldOut } end
redis.call('HINCRBY', KEYS[1], 'available', -units)
redis.call('HINCRBY', KEYS[1], 'stock', -units)
redis.call('HSET', KEYS[2], ARGV[1], units .. ' ' .. ARGV[3] .. ' out')
return { OUTCOME.applied, units }
