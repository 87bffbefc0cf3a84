--[[
  Opens workflows, once per corr_id, and applies the signals that arrived before each trigger. Several
  triggers of one shard in one call: the triggers that reach the repository in one event-loop turn are
  started together (WorkflowRepository.start), each with its own result, in the order given.

  KEYS[1] deadlines  the shard's due index        {tag}:deadlines   (zset corr_id -> due ms)
  KEYS[2] earlyDue   the shard's early index      {tag}:early-due   (zset corr_id -> expiry ms)
  A workflow's own keys are the shard prefix + (undeclared, of the same slot):
    wf:<corr_id>     workflow hash
    sig:<corr_id>    signals hash          (agent -> signal JSON)
    early:<corr_id>  early-signal buffer   (agent -> signal JSON, q:<agent> -> its stream sequence)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:'
  ARGV[2] check delay ms (see add-signals-2.lua): with early signals applied and no readiness rule, the due
          entry is now + this
  ARGV[3] claim lease ms: a workflow the rule finds ready at once is frozen for its decision (see freeze)
  then per trigger, seven arguments: corr_id, workflow_type, timeout ms, required agents (JSON array),
  metadata (JSON), trigger (JSON, as received), readiness rule (`rdy`, see is_ready in includes/common.lua;
  '' when the strategy declares none and its canDecide is asked instead)

  The hash keeps only what cannot be derived (corr_id is in the key name, workflow_id is
  <type>:<corr_id>, the timeout is deadline - started, `published` is absent until it is 1): every
  field costs memory on every workflow.

  Output: one item per trigger, in order:
          { 0, status, wf, sig }                     duplicate: the workflow exists (open or finished)
          { 1, now, early_count }                    started, open, and nothing for the caller to do now but
                                                     (without a rule) ask canDecide on the trigger alone: no
                                                     early signals, or a rule that is not met yet
          { 1, now, early_count, wf, sig }           started with early signals applied, no rule: ask canDecide
          { 2, now, early_count, wf, sig }           started, and ready by its rule: frozen, decide it now
          { -1, error }                              Redis refused this trigger's step (a key of the wrong
                                                     type, ...): the others of the call went on; what this one
                                                     wrote before the error stays
          (wf, sig: the snapshot, see append_snapshot in includes/common.lua; a duplicate returns it so that a
          redelivered trigger can still finish what its first delivery began, e.g. evaluate on early signals)
]]
-- @include common.lua

local prefix = ARGV[1]
local check, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
-- Redis's clock, read once for the call (the workflows of one call start at the same moment).
local now = now_ms()

local function start(corr, wtype, timeout, agents, meta, trigger, rule)
  local wf_key, sig_key, early_key = prefix .. 'wf:' .. corr, prefix .. 'sig:' .. corr, prefix .. 'early:' .. corr

  local status = redis.call('HGET', wf_key, 'status')
  if status then
    return append_snapshot({ 0, status }, wf_key, sig_key)
  end

  local deadline = now + timeout

  -- The early buffer holds agent -> signal and q:<agent> -> its stream sequence (add-signals-2.lua); the
  -- sequences go to the workflow hash, where later revisions are compared with them.
  local early = redis.call('HGETALL', early_key)
  local signals, seqs = {}, {}
  for i = 1, #early, 2 do
    local target = string.sub(early[i], 1, 2) == 'q:' and seqs or signals
    target[#target + 1] = early[i]
    target[#target + 1] = early[i + 1]
  end
  local early_count = #signals / 2
  if #early > 0 then
    if early_count > 0 then
      redis.call('HSET', sig_key, unpack(signals))
    end
    redis.call('DEL', early_key)
    redis.call('ZREM', KEYS[2], corr)
  end

  -- With a readiness rule the hash keeps the rule (`rdy`) instead of the version (`ver`), which only the
  -- canDecide path compares: a workflow hash holds a long value (the trigger), so Redis keeps it as a hash
  -- table, where every field costs about 80 bytes.
  redis.call('HSET', wf_key,
    'type', wtype,
    'status', early_count > 0 and 'waiting_for_agents' or 'in_progress',
    'started', now, 'deadline', deadline,
    'agents', agents, 'meta', meta, 'trigger', trigger,
    rule ~= '' and 'rdy' or 'ver', rule ~= '' and rule or early_count)
  if #seqs > 0 then
    redis.call('HSET', wf_key, unpack(seqs))
  end

  if rule ~= '' then
    if is_ready(rule, sig_key) then
      freeze(wf_key, KEYS[1], corr, 'decide', now, lease)
      return append_snapshot({ 2, now, early_count }, wf_key, sig_key)
    end
    -- Readiness is judged here and by every signal's script, atomically: nothing to check before the deadline.
    redis.call('ZADD', KEYS[1], deadline, corr)
    return { 1, now, early_count }
  end

  redis.call('ZADD', KEYS[1], early_count > 0 and math.min(deadline, now + check) or deadline, corr)
  if early_count == 0 then
    return { 1, now, 0 }
  end
  return append_snapshot({ 1, now, early_count }, wf_key, sig_key)
end

return each_item(4, 7, function(i)
  return start(ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]), ARGV[i + 3], ARGV[i + 4], ARGV[i + 5], ARGV[i + 6])
end)
