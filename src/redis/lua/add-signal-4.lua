--[[
  Stores an agent's signal in its workflow (the latest signal of an agent replaces the earlier one),
  or buffers it when the trigger has not arrived yet.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] early   KEYS[4] earlyDue      (see start-workflow-5.lua)

  ARGV[1] corr_id   ARGV[2] agent name   ARGV[3] signal JSON (as received)
  ARGV[4] early-signal grace ms (0: do not buffer)

  Output: { 1, now, wf..., '|', sig... }  added; the workflow as it is now (HGETALL lists)
          { 2, now, wf..., '|', sig... }  duplicate: the same signal is already stored, nothing changed
          { 3, status }                   late: the workflow is evaluating or finished, nothing changed
          { 4 }                           buffered before the trigger
          { 5 }                           orphaned: no workflow and buffering is off
]]
-- @include common.lua

local status = redis.call('HGET', KEYS[1], 'status')
if not status then
  local grace = tonumber(ARGV[4])
  if grace <= 0 then
    return { 5 }
  end
  local now = now_ms()
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
  -- A safety net only: the early-due index is what reaps (and counts) expired buffers.
  redis.call('PEXPIRE', KEYS[3], grace * 2 + 60000)
  redis.call('ZADD', KEYS[4], now + grace, ARGV[1])
  return { 4 }
end

if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 3, status }
end

local now = now_ms()
if redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then
  return append_snapshot({ 2, now }, KEYS[1], KEYS[2])
end

redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'waiting_for_agents')
redis.call('HINCRBY', KEYS[1], 'ver', 1)

return append_snapshot({ 1, now }, KEYS[1], KEYS[2])
