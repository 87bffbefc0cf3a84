--[[
  Records the decision of a workflow the sweeper claimed for its timeout (sweep-1.lua): final status +
  the decision message, not yet published (no `published` field until mark-published sets it to 1).
  (Decisions on signals are recorded by record-3.lua, without a claim.)

  Any claimant may finish, the first one wins: once a workflow is claimed for its timeout nothing changes
  it (signals are refused as late), so every claimant evaluates the same snapshot, and a slow claimant
  whose lease was taken over (a slow onTimeout, Redis lag in a storm) still ends the workflow instead of
  losing it to the next claimant again and again. The start time tells this workflow from a newer one of
  the same corr_id.
  The due index entry moves to now + lease, so that if this replica dies before publishing,
  the sweeper publishes the recorded decision.

  KEYS[1] wf   KEYS[2] deadlines

  ARGV[1] corr_id   ARGV[2] start time (`started`, ms) of the workflow claimed
  ARGV[3] final status (completed|timeout|failed)
  ARGV[4] decision message (JSON, exactly the bytes to publish)   ARGV[5] lease ms

  Output: { 1, now }      finished
          { 0, status }   not (any more) being timed out: another claimant finished it first, or it is gone
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'started')
if wf[1] ~= 'evaluating' or wf[2] ~= ARGV[2] then
  return { 0, wf[1] or '' }
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'decision', ARGV[4], 'finished', now)
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
return { 1, now }
