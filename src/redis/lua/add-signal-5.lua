--[[
  Stores an agent's signal in its workflow, or buffers it when the trigger has not arrived yet.

  The latest signal of an agent replaces its earlier one, where latest means stored last by JetStream:
  each signal is kept with its stream sequence (`q:<agent>` in the workflow hash, or in the early buffer),
  and a signal whose sequence is not above the stored one changes nothing (a redelivered older
  revision, or the same message again). Processing order never decides.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] early   KEYS[4] earlyDue   KEYS[5] deadlines  (see start-workflow-5.lua)

  ARGV[1] corr_id   ARGV[2] agent name   ARGV[3] signal JSON (as received)
  ARGV[4] early-signal grace ms (0: do not buffer)
  ARGV[5] stream sequence of the signal   ARGV[6] when JetStream stored it (ms): the grace counts from it
  ARGV[7] check delay ms: a stored signal brings the workflow's due entry forward to now + this (never past
          its deadline), so that a workflow made ready by a handler that then died, or whose reply was
          lost, is decided by the sweeper instead of waiting for its deadline
  ARGV[8] lifetime ms of an early buffer without trigger (a safety net; the early-due index reaps it)
  ARGV[9] claim lease ms (see freeze in includes/common.lua)

  A workflow with a readiness rule (`rdy`, written at start from the strategy's `readyWhen`) is judged here:
  the signal that makes it ready freezes it and alone gets the snapshot back; every other signal gets a short
  reply. Without a rule the snapshot comes back every time and the caller asks the strategy's canDecide.

  Output: { 8, now, wf..., '|', sig... }  added, and the workflow is ready by its rule: frozen, decide it now
          { 1, now, wf..., '|', sig... }  added; the workflow as it is now (HGETALL lists); no rule
          { 1, now }                      added; its rule is not met yet
          { 2, now[, wf..., '|', sig...] } duplicate: this message, or the same bytes published again, is stored:
                                          nothing changed (but the stored sequence); the snapshot without a rule
          { 6, now[, wf..., '|', sig...] } superseded: a later revision of this agent is stored, nothing changed
          { 3, status }                   late: the workflow is evaluating or finished, nothing changed
          { 4 }                           buffered before the trigger
          { 5 }                           orphaned: no workflow and buffering is off
          { 7 }                           superseded or duplicate in the early buffer, nothing changed
]]
-- @include common.lua

local seq = tonumber(ARGV[5])
local seq_field = 'q:' .. ARGV[2]

local wf = redis.call('HMGET', KEYS[1], 'status', seq_field, 'rdy', 'deadline')
local status = wf[1]
if not status then
  local grace = tonumber(ARGV[4])
  if grace <= 0 then
    return { 5 }
  end
  local held = tonumber(redis.call('HGET', KEYS[3], seq_field))
  if held and held >= seq then
    return { 7 }
  end
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3], seq_field, seq)
  redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[8]))
  -- The grace counts from the latest early signal of the workflow (GT: an older revision redelivered
  -- later does not shorten it).
  redis.call('ZADD', KEYS[4], 'GT', tonumber(ARGV[6]) + grace, ARGV[1])
  return { 4 }
end

if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 3, status }
end

local now = now_ms()
local rule = wf[3]
-- Without a rule the caller asks canDecide, also after a duplicate: a redelivery may find the work of its
-- first delivery half done. With one, nothing is left half done: readiness is judged here, atomically.
local function reply(code)
  if rule then
    return { code, now }
  end
  return append_snapshot({ code, now }, KEYS[1], KEYS[2])
end

local stored = tonumber(wf[2])
if stored and stored >= seq then
  return reply(stored == seq and 2 or 6)
end
if stored and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[3] then
  -- The same signal published again (an agent's retry): nothing to evaluate anew, only its sequence moves.
  redis.call('HSET', KEYS[1], seq_field, seq)
  return reply(2)
end

redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('HSET', KEYS[1], 'status', 'waiting_for_agents', seq_field, seq)
if rule then
  -- No version with a rule (start-workflow-5.lua): readiness is judged here, nobody compares versions.
  if is_ready(rule, KEYS[2]) then
    freeze(KEYS[1], KEYS[5], ARGV[1], 'decide', now, tonumber(ARGV[9]))
    return append_snapshot({ 8, now }, KEYS[1], KEYS[2])
  end
  return { 1, now }
end
redis.call('HINCRBY', KEYS[1], 'ver', 1)
redis.call('ZADD', KEYS[5], math.min(tonumber(wf[4]), now + tonumber(ARGV[7])), ARGV[1])
return append_snapshot({ 1, now }, KEYS[1], KEYS[2])
