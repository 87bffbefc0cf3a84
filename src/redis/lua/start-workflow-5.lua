--[[
  Opens a workflow, once per corr_id, and applies the signals that arrived before the trigger.

  KEYS[1] wf        workflow hash          {tag}:wf:<corr_id>
  KEYS[2] sig       signals hash           {tag}:sig:<corr_id>   (agent -> signal JSON)
  KEYS[3] early     early-signal buffer    {tag}:early:<corr_id> (agent -> signal JSON)
  KEYS[4] deadlines shard's due index      {tag}:deadlines       (zset corr_id -> due ms)
  KEYS[5] earlyDue  shard's early index    {tag}:early-due       (zset corr_id -> expiry ms)

  ARGV[1] corr_id   ARGV[2] workflow_type   ARGV[3] timeout ms
  ARGV[4] required agents (JSON array)    ARGV[5] metadata (JSON)   ARGV[6] trigger (JSON, as received)
  ARGV[7] check delay ms (see add-signal-5.lua): with early signals applied and no readiness rule, the due
          entry is now + this
  ARGV[8] readiness rule (`rdy`, see is_ready in includes/common.lua; '' when the strategy declares none and
          its canDecide is asked instead)
  ARGV[9] claim lease ms: a workflow the rule finds ready at once is frozen for its decision (see freeze)

  The hash keeps only what cannot be derived (corr_id is in the key name, workflow_id is
  <type>:<corr_id>, the timeout is deadline - started, `published` is absent until it is 1): every
  field costs memory on every workflow.

  Output: { 0, status, wf..., '|', sig... }        duplicate: the workflow exists (open or finished)
          { 1, now, early_count }                    started, open, and nothing for the caller to do now but
                                                     (without a rule) ask canDecide on the trigger alone: no
                                                     early signals, or a rule that is not met yet
          { 1, now, early_count, wf..., '|', sig... } started with early signals applied, no rule: ask canDecide
          { 2, now, early_count, wf..., '|', sig... } started, and ready by its rule: frozen, decide it now
          (wf and sig are HGETALL lists; a duplicate returns them so that a redelivered trigger can still
          finish what its first delivery began, e.g. evaluate on early signals)
]]
-- @include common.lua

local status = redis.call('HGET', KEYS[1], 'status')
if status then
  return append_snapshot({ 0, status }, KEYS[1], KEYS[2])
end

local now = now_ms()
local deadline = now + tonumber(ARGV[3])

-- The early buffer holds agent -> signal and q:<agent> -> its stream sequence (add-signal-5.lua); the
-- sequences go to the workflow hash, where later revisions are compared with them.
local early = redis.call('HGETALL', KEYS[3])
local signals, seqs = {}, {}
for i = 1, #early, 2 do
  local target = string.sub(early[i], 1, 2) == 'q:' and seqs or signals
  target[#target + 1] = early[i]
  target[#target + 1] = early[i + 1]
end
local early_count = #signals / 2
if #early > 0 then
  if early_count > 0 then
    redis.call('HSET', KEYS[2], unpack(signals))
  end
  redis.call('DEL', KEYS[3])
  redis.call('ZREM', KEYS[5], ARGV[1])
end

-- With a readiness rule the hash keeps the rule (`rdy`) instead of the version (`ver`), which only the
-- canDecide path compares: a workflow hash holds a long value (the trigger), so Redis keeps it as a hash
-- table, where every field costs about 80 bytes.
local rule = ARGV[8]
redis.call('HSET', KEYS[1],
  'type', ARGV[2],
  'status', early_count > 0 and 'waiting_for_agents' or 'in_progress',
  'started', now, 'deadline', deadline,
  'agents', ARGV[4], 'meta', ARGV[5], 'trigger', ARGV[6],
  rule ~= '' and 'rdy' or 'ver', rule ~= '' and rule or early_count)
if #seqs > 0 then
  redis.call('HSET', KEYS[1], unpack(seqs))
end

if rule ~= '' then
  if is_ready(rule, KEYS[2]) then
    freeze(KEYS[1], KEYS[4], ARGV[1], 'decide', now, tonumber(ARGV[9]))
    return append_snapshot({ 2, now, early_count }, KEYS[1], KEYS[2])
  end
  -- Readiness is judged here and by every signal's script, atomically: nothing to check before the deadline.
  redis.call('ZADD', KEYS[4], deadline, ARGV[1])
  return { 1, now, early_count }
end

redis.call('ZADD', KEYS[4], early_count > 0 and math.min(deadline, now + tonumber(ARGV[7])) or deadline, ARGV[1])
if early_count == 0 then
  return { 1, now, 0 }
end
return append_snapshot({ 1, now, early_count }, KEYS[1], KEYS[2])
