--[[
  Admin API (POST /workflows/:corr_id/extend): moves an open workflow's deadline later by a number of ms,
  bounded by started + the maximum timeout (META_AGENT_MAX_TIMEOUT_SECONDS): a longer extension is clamped.

  The due entry is moved only if it sits at the old deadline. An earlier entry is a check (a signal was
  stored: add-signals-2.lua) or a lease; it stays, and rest-2.lua / sweep-1.lua read the deadline from the
  hash, so a check that finds the workflow not ready puts the entry back at the new deadline. A missing
  entry (never expected for an open workflow) is added at the new deadline: the timeout must stay owed.

  KEYS[1] wf   KEYS[2] deadlines

  ARGV[1] corr_id   ARGV[2] extension ms (> 0)   ARGV[3] maximum timeout ms

  Output: { 1, old deadline ms, new deadline ms, bound ms (started + max), workflow type }
                           extended (new = old when already at the bound)
          { 0, status }    not open: evaluating (being decided or timed out now, or past its deadline: the
                           sweeper is about to time it out), finished, or missing (status '')
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'started', 'deadline', 'type')
local status = wf[1]
if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 0, status or '' }
end

local old = tonumber(wf[3])
if old <= now_ms() then
  -- Its timeout is owed already (the next sweep takes it): an operator cannot take it back.
  return { 0, 'evaluating' }
end
local bound = tonumber(wf[2]) + tonumber(ARGV[3])
local new = math.max(old, math.min(old + tonumber(ARGV[2]), bound))
if new ~= old then
  redis.call('HSET', KEYS[1], 'deadline', new)
  local due = redis.call('ZSCORE', KEYS[2], ARGV[1])
  if not due or tonumber(due) == old then
    redis.call('ZADD', KEYS[2], new, ARGV[1])
  end
end
return { 1, old, new, bound, wf[4] }
