--[[
  Deletes early-signal buffers whose grace period ended without a trigger, and counts their signals
  as orphaned. Reads only what is due.

  An early buffer's due time is when JetStream stored its latest signal plus the grace. The caller passes
  a watermark: JetStream's time up to which every trigger has been processed (the trigger consumer's
  progress). A buffer is reaped only when its due time is below it, so the early signals of triggers that
  wait in the stream (back-pressure, an outage, a backlog) live until their trigger is processed.

  KEYS[1] earlyDue   the shard's early index (zset corr_id -> due ms, JetStream time)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:'   ARGV[2] limit   ARGV[3] watermark ms

  Output: { buffers reaped, signals orphaned }
]]

local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[3]), 'LIMIT', 0, tonumber(ARGV[2]))
local signals = 0
for _, corr in ipairs(due) do
  local key = ARGV[1] .. 'early:' .. corr
  for _, field in ipairs(redis.call('HKEYS', key)) do
    if string.sub(field, 1, 2) ~= 'q:' then
      signals = signals + 1
    end
  end
  redis.call('DEL', key)
  redis.call('ZREM', KEYS[1], corr)
end
return { #due, signals }
