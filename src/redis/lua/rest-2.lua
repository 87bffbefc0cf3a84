--[[
  After a sweeper 'check' job (sweep-1.lua) found that an open workflow cannot decide yet: its due entry
  goes back to the deadline. Only if nothing changed since the snapshot checked (same version and start
  time): a signal stored meanwhile set its own check entry, which must stay.

  KEYS[1] wf   KEYS[2] deadlines

  ARGV[1] corr_id   ARGV[2] version checked   ARGV[3] start time (`started`, ms)

  Output: { 1 } back to the deadline   { 0 } changed, closed or gone: nothing done
]]

local wf = redis.call('HMGET', KEYS[1], 'status', 'ver', 'started', 'deadline')
if (wf[1] ~= 'in_progress' and wf[1] ~= 'waiting_for_agents') or (wf[2] or '0') ~= ARGV[2] or wf[3] ~= ARGV[3] then
  return { 0 }
end
redis.call('ZADD', KEYS[2], tonumber(wf[4]), ARGV[1])
return { 1 }
