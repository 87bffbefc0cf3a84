--[[
  The sweeper's step on one shard: takes at most `limit` entries that are due, and for each decides
  what is owed. Only due entries are read (no scan of all workflows). Safe on every replica at once:
  each due entry is re-scored to now + lease before it is returned, so one caller gets it.

  KEYS[1] deadlines   the shard's due index (zset corr_id -> due ms)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:' (workflow keys are prefix .. 'wf:' .. corr_id)
  ARGV[2] limit   ARGV[3] lease ms   ARGV[4] claim token

  Output: { remaining, due, job, job, ... } where remaining = ZCARD after the step, due = the number of
          due entries read (<= limit; a full batch means more may be due, even if some were stale), and each job is
          { corr_id, kind, wf..., '|', sig... }, kind one of:
            'timeout'   an open workflow passed its deadline, or a timeout claim whose holder died (lease
                        expired): claimed, to time out
            'publish'   a recorded decision not marked published (publisher died): publish it
  Entries whose workflow is gone or already published are removed.
]]
-- @include common.lua

local now = now_ms()
local lease = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local reply = { 0, 0 }

for _, corr in ipairs(due) do
  local wf_key = ARGV[1] .. 'wf:' .. corr
  local wf = redis.call('HMGET', wf_key, 'status', 'deadline', 'published')
  local status = wf[1]
  local kind = nil
  if not status then
    redis.call('ZREM', KEYS[1], corr)
  elseif status == 'in_progress' or status == 'waiting_for_agents' then
    if tonumber(wf[2]) <= now then
      kind = 'timeout'
    else
      redis.call('ZADD', KEYS[1], tonumber(wf[2]), corr)
    end
  elseif status == 'evaluating' then
    kind = 'timeout'
  elseif wf[3] ~= '1' then
    kind = 'publish'
  else
    redis.call('ZREM', KEYS[1], corr)
  end

  if kind then
    if kind ~= 'publish' then
      redis.call('HSET', wf_key, 'status', 'evaluating', 'claim', ARGV[4])
    end
    redis.call('ZADD', KEYS[1], now + lease, corr)
    reply[#reply + 1] = append_snapshot({ corr, kind }, wf_key, ARGV[1] .. 'sig:' .. corr)
  end
end

reply[1] = redis.call('ZCARD', KEYS[1])
reply[2] = #due
return reply
