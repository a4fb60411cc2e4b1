--[[
  setEligibleBuyers: replace the list of buyers who may buy a private sale,
  atomically: a purchase decided after this call sees the new list whole,
  one decided before it the old one, never a mix.

  KEYS[1] sale hash      {sale:<id>}
  KEYS[2] eligible set   {sale:<id>}:eligible

  ARGV[1..n] buyer ids (n >= 0; the caller checked them and removed duplicates)

  Output (the first element is an OUTCOME code, src/platform/redis/outcomes.ts):
    { applied, n }   the list is now exactly ARGV
    { notFound }     the sale is not loaded (the caller loads it, then calls again)
]]

if redis.call('EXISTS', KEYS[1]) == 0 then return { OUTCOME.notFound } end
redis.call('DEL', KEYS[2])
-- unpack() of thousands of values overflows Lua's C stack: add in chunks.
local chunk = 1000
for i = 1, #ARGV, chunk do
  redis.call('SADD', KEYS[2], unpack(ARGV, i, math.min(i + chunk - 1, #ARGV)))
end
return { OUTCOME.applied, #ARGV }
