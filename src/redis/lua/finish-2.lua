--[[
  Records the decision of a workflow the sweeper claimed for its timeout (sweep-1.lua): final status +
  the decision message, not yet published (no `published` field until mark-published sets it to 1).
  (Decisions on signals are recorded by record-3.lua, without a claim.)
  Only the current claim holder can finish; a claimer whose lease was taken over gets 'lost'.
  The due index entry moves to now + lease, so that if this replica dies before publishing,
  the sweeper publishes the recorded decision.

  KEYS[1] wf   KEYS[2] deadlines

  ARGV[1] corr_id   ARGV[2] claim token   ARGV[3] final status (completed|timeout|failed)
  ARGV[4] decision message (JSON, exactly the bytes to publish)   ARGV[5] lease ms

  Output: { 1, now }      finished
          { 0, status }   lost: not evaluating, or claimed by someone else since
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'claim')
if wf[1] ~= 'evaluating' or wf[2] ~= ARGV[2] then
  return { 0, wf[1] or '' }
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'decision', ARGV[4], 'finished', now)
redis.call('HDEL', KEYS[1], 'claim')
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[5]), ARGV[1])
return { 1, now }
