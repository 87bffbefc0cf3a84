--[[
  Deletes early-signal buffers whose grace period ended without a trigger, and counts their signals
  as orphaned. Reads only what is due.

  KEYS[1] earlyDue   the shard's early index (zset corr_id -> expiry ms)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:'   ARGV[2] limit

  Output: { buffers reaped, signals orphaned }
]]
-- @include common.lua

local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local signals = 0
for _, corr in ipairs(due) do
  local key = ARGV[1] .. 'early:' .. corr
  signals = signals + redis.call('HLEN', key)
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], corr)
end
return { #due, signals }
