--[[
  Freezes an open workflow for its decision (see freeze in includes/common.lua): the caller then
  evaluates, publishes and finalises it (finalize-2.lua). Used where readiness is not judged by a rule in
  Redis: after the strategy's canDecide said yes on the snapshot of version `ver`, and for an operator's
  cancel or forced decision. Exactly one caller freezes; a signal stored since the caller's snapshot makes
  the freeze refused with the current snapshot (ask canDecide again).

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] version evaluated ('' : whatever the version, and the snapshot comes back)
  ARGV[3] why (decide|cancel|force|fail)   ARGV[4] lease ms
  ARGV[5] start time (`started`, ms) of the workflow the caller saw ('' : whichever): a handler that stalled
          past the retention period must not freeze a new workflow of the same corr_id
  ARGV[6] who asked ('' : nobody in particular; an operator's token name), kept as `by`; for `fail` (the
          strategy's canDecide threw) the error, so that a re-run fails the workflow the same way

  Output: { 1, now }                      frozen (version given: the caller's snapshot is the frozen one)
          { 1, now, wf, sig }             frozen, and the snapshot (no version given)
          { 2, 0, wf, sig }               outdated: a signal arrived since; the current snapshot
          { 0, status }                   not open: frozen or final already (or missing: status ''), or it is
                                          another workflow of the same corr_id
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'ver', 'started')
local status = wf[1]
if (status ~= 'in_progress' and status ~= 'waiting_for_agents') or (ARGV[5] ~= '' and wf[3] ~= ARGV[5]) then
  return { 0, status or '' }
end
if ARGV[2] ~= '' and (wf[2] or '0') ~= ARGV[2] then
  return append_snapshot({ 2, 0 }, KEYS[1], KEYS[2])
end

local now = now_ms()
freeze(KEYS[1], KEYS[3], ARGV[1], ARGV[3], now, tonumber(ARGV[4]))
if ARGV[6] ~= '' then
  redis.call('HSET', KEYS[1], 'by', ARGV[6])
end
if ARGV[2] ~= '' then
  return { 1, now }
end
return append_snapshot({ 1, now }, KEYS[1], KEYS[2])
