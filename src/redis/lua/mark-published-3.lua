--[[
  Marks a finished workflow's decision as published: it leaves the due index, and its keys live on
  for the retention period (inspection, and de-duplication of repeated triggers).

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] retention ms
  ARGV[3] start time (`started`, ms) of the workflow whose decision was published: a publisher that stalled
          past the retention period must not mark a newer workflow of the same corr_id
  ARGV[4] (optional) the shard's recent index `{tag}:recent` (zset corr_id -> finished ms), same hash tag:
          the admin API lists finished workflows from it (GET /workflows). Kept to the retention period here,
          so it costs nothing per *active* workflow.

  Output: { 1, started ms, finished ms }   marked now (count the decision once, here)
          { 0 }                            already marked, or not finished, or missing
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'published', 'started', 'finished')
local status = wf[1]
-- 'cancelled': ended by an operator (admin API), published like any decision.
if status ~= 'completed' and status ~= 'timeout' and status ~= 'failed' and status ~= 'cancelled' then
  return { 0 }
end
if wf[2] == '1' or wf[3] ~= ARGV[3] then
  return { 0 }
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'published', 1, 'published_at', now)
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
-- Admin API: the recent index (finished and published), trimmed to the retention period as it grows.
if ARGV[4] then
  redis.call('ZADD', ARGV[4], tonumber(wf[4]), ARGV[1])
  redis.call('ZREMRANGEBYSCORE', ARGV[4], '-inf', '(' .. (now - tonumber(ARGV[2])))
end
return { 1, tonumber(wf[3]), tonumber(wf[4]) }
