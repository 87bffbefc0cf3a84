--[[
  Stores agents' signals in their workflows, or buffers each whose trigger has not arrived yet. Several
  signals of one shard in one call: the signals that reach the repository in one event-loop turn are
  stored together (WorkflowRepository.addSignal), each with its own result, in the order given (two signals
  of one workflow in one call are two steps, as two calls would be).

  The latest signal of an agent replaces its earlier one, where latest means stored last by JetStream:
  each signal is kept with its stream sequence (`q:<agent>` in the workflow hash, or in the early buffer),
  and a signal whose sequence is not above the stored one changes nothing (a redelivered older
  revision, or the same message again). Processing order never decides.

  KEYS[1] deadlines  the shard's due index        {tag}:deadlines   (zset corr_id -> due ms)
  KEYS[2] earlyDue   the shard's early index      {tag}:early-due   (zset corr_id -> expiry ms)
  A signal's own keys are the shard prefix + wf:, sig:, early: + corr_id (start-workflows-2.lua): undeclared,
  of the same slot.

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:'
  ARGV[2] early-signal grace ms (0: do not buffer)
  ARGV[3] check delay ms: a stored signal brings the workflow's due entry forward to now + this (never past
          its deadline), so that a workflow made ready by a handler that then died, or whose reply was
          lost, is decided by the sweeper instead of waiting for its deadline
  ARGV[4] lifetime ms of an early buffer without trigger (a safety net; the early-due index reaps it)
  ARGV[5] claim lease ms (see freeze in includes/common.lua)
  then per signal, five arguments: corr_id, agent name, signal JSON (as received), its stream sequence, when
  JetStream stored it (ms: the grace counts from it)

  A workflow with a readiness rule (`rdy`, written at start from the strategy's `readyWhen`) is judged here:
  the signal that makes it ready freezes it and alone gets the snapshot back; every other signal gets a short
  reply. Without a rule the snapshot comes back every time and the caller asks the strategy's canDecide.

  Output: one item per signal, in order:
          { 8, now, wf, sig }             added, and the workflow is ready by its rule: frozen, decide it now
          { 1, now, wf, sig }             added; the workflow as it is now (see append_snapshot); no rule
          { 1, now }                      added; its rule is not met yet
          { 2, now[, wf, sig] }           duplicate: this message, or the same bytes published again, is stored:
                                          nothing changed (but the stored sequence); the snapshot without a rule
          { 6, now[, wf, sig] }           superseded: a later revision of this agent is stored, nothing changed
          { 3, status }                   late: the workflow is evaluating or finished, nothing changed
          { 4 }                           buffered before the trigger
          { 5 }                           orphaned: no workflow and buffering is off
          { 7 }                           superseded or duplicate in the early buffer (the same bytes published
                                          again included), nothing changed (but the stored sequence)
          { -1, error }                   Redis refused this signal's step (a key of the wrong type, ...): the
                                          others of the call went on; what this one wrote before the error stays
]]
-- @include common.lua

local prefix = ARGV[1]
local grace, check, early_ttl, lease = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
-- Redis's clock, read once for the call (the signals of one call are stored at the same moment).
local now = now_ms()

local function add(corr, agent, signal, seq, stored_at)
  local wf_key, sig_key, early_key = prefix .. 'wf:' .. corr, prefix .. 'sig:' .. corr, prefix .. 'early:' .. corr
  local seq_field = 'q:' .. agent

  local wf = redis.call('HMGET', wf_key, 'status', seq_field, 'rdy', 'deadline')
  local status = wf[1]
  if not status then
    if grace <= 0 then
      return { 5 }
    end
    local buffered = redis.call('HMGET', early_key, seq_field, agent)
    local held = tonumber(buffered[1])
    if held and held >= seq then
      return { 7 }
    end
    if held and buffered[2] == signal then
      -- The same signal published again (an agent's retry), as for a stored workflow below: only its sequence
      -- moves. Not a later revision: the grace and the buffer's lifetime still count from its first copy.
      redis.call('HSET', early_key, seq_field, seq)
      return { 7 }
    end
    redis.call('HSET', early_key, agent, signal, seq_field, seq)
    redis.call('PEXPIRE', early_key, early_ttl)
    -- The grace counts from the latest early signal of the workflow (GT: an older revision redelivered
    -- later does not shorten it).
    redis.call('ZADD', KEYS[2], 'GT', stored_at + grace, corr)
    return { 4 }
  end

  if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
    return { 3, status }
  end

  local rule = wf[3]
  -- Without a rule the caller asks canDecide, also after a duplicate: a redelivery may find the work of its
  -- first delivery half done. With one, nothing is left half done: readiness is judged here, atomically.
  local function reply(code)
    if rule then
      return { code, now }
    end
    return append_snapshot({ code, now }, wf_key, sig_key)
  end

  local stored = tonumber(wf[2])
  if stored and stored >= seq then
    return reply(stored == seq and 2 or 6)
  end
  if stored and redis.call('HGET', sig_key, agent) == signal then
    -- The same signal published again (an agent's retry): nothing to evaluate anew, only its sequence moves.
    redis.call('HSET', wf_key, seq_field, seq)
    return reply(2)
  end

  redis.call('HSET', sig_key, agent, signal)
  redis.call('HSET', wf_key, 'status', 'waiting_for_agents', seq_field, seq)
  if rule then
    -- No version with a rule (start-workflows-2.lua): readiness is judged here, nobody compares versions.
    if is_ready(rule, sig_key) then
      freeze(wf_key, KEYS[1], corr, 'decide', now, lease)
      return append_snapshot({ 8, now }, wf_key, sig_key)
    end
    return { 1, now }
  end
  redis.call('HINCRBY', wf_key, 'ver', 1)
  redis.call('ZADD', KEYS[1], math.min(tonumber(wf[4]), now + check), corr)
  return append_snapshot({ 1, now }, wf_key, sig_key)
end

return each_item(6, 5, function(i)
  return add(ARGV[i], ARGV[i + 1], ARGV[i + 2], tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
end)
