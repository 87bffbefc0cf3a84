--[[
  Records the decision the caller's strategy gave on an open workflow, if the workflow is still as the
  caller saw it: the caller passes the version (`ver`) of the snapshot it evaluated, and a signal stored
  since then makes the record refused with the current snapshot (evaluate again). Exactly one caller
  records: the first makes the workflow final, and every later one finds it so. Nothing is held while the
  strategy runs, so there is no claim to recover when a replica dies: until a decision is recorded, the
  workflow stays open, and its next signal, a redelivery, or its deadline ends it.

  The decision is recorded, not yet published (no `published` field until mark-published sets it to 1);
  the due index entry moves to now + lease, so that if this replica dies before publishing, the sweeper
  publishes the recorded decision.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] version evaluated   ARGV[3] final status (completed|failed)
  ARGV[4] decision message (JSON, exactly the bytes to publish)   ARGV[5] lease ms
  ARGV[6] start time (`started`, ms) of the workflow evaluated: a handler that stalled past the retention
          period must not record onto a new workflow of the same corr_id

  Output: { 1, now }                      recorded
          { 2, 0, wf..., '|', sig... }    outdated: a signal arrived since; the current snapshot
          { 0, status }                   not open: the sweeper claimed it (timeout) or it is final (or missing: status
                                          ''), or it is another workflow of the same corr_id
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'ver', 'started')
local status = wf[1]
if (status ~= 'in_progress' and status ~= 'waiting_for_agents') or wf[3] ~= ARGV[6] then
  return { 0, status or '' }
end
if (wf[2] or '0') ~= ARGV[2] then
  return append_snapshot({ 2, 0 }, KEYS[1], KEYS[2])
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'status', ARGV[3], 'decision', ARGV[4], 'finished', now)
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[5]), ARGV[1])
return { 1, now }
