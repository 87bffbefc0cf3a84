--[[
  The sweeper's step on one shard: takes at most `limit` entries that are due, and for each decides
  what is owed. Only due entries are read (no scan of all workflows). Safe on every replica at once:
  each due entry is re-scored to now + lease before it is returned, so one caller gets it.

  KEYS[1] deadlines   the shard's due index (zset corr_id -> due ms)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:' (workflow keys are prefix .. 'wf:' .. corr_id)
  ARGV[2] limit   ARGV[3] lease ms

  Output: { remaining, due, now, job, job, ... } where remaining = ZCARD after the step, due = the number of
          due entries read (<= limit; a full batch means more may be due, even if some were stale), now =
          Redis's clock, and each job is { corr_id, kind, wf, sig }, kind one of:
            'timeout'   an open workflow passed its deadline: frozen now (see freeze in includes/common.lua),
                        to time out
            'decide', 'timeout', 'cancel', 'force', 'fail'
                        a frozen workflow (status evaluating) whose decider died or lost its reply (the lease
                        ran out): decide it again, by its `why`, from the same frozen snapshot (a workflow
                        claimed by an older version has no `why`: a timeout)
            'check'     an open workflow without a readiness rule, due before its deadline: a signal was
                        stored and no decision followed within the check delay (its handler died, or its
                        reply was lost): see whether it can decide now
            'publish'   a decision an older version recorded and did not mark published: publish it
          or { corr_id, 'broken', error } for an entry whose keys Redis refused to read (it is looked at
          again in a minute; the other entries and shards go on).
  Entries whose workflow is gone or already published are removed.
]]
-- @include common.lua

local BROKEN_RETRY_MS = 60000

local now = now_ms()
local lease = tonumber(ARGV[3])
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local reply = { 0, 0, now }

for _, corr in ipairs(due) do
  local wf_key = ARGV[1] .. 'wf:' .. corr
  local wf = redis.pcall('HMGET', wf_key, 'status', 'deadline', 'published', 'why')
  if wf.err then
    redis.call('ZADD', KEYS[1], now + BROKEN_RETRY_MS, corr)
    reply[#reply + 1] = { corr, 'broken', wf.err }
  else
    local status = wf[1]
    local kind = nil
    if not status then
      redis.call('ZREM', KEYS[1], corr)
    elseif status == 'in_progress' or status == 'waiting_for_agents' then
      if tonumber(wf[2]) <= now then
        kind = 'timeout'
        freeze(wf_key, KEYS[1], corr, 'timeout', now, lease)
      else
        kind = 'check'
      end
    elseif status == 'evaluating' then
      kind = wf[4] or 'timeout'
    elseif wf[3] ~= '1' then
      kind = 'publish'
    else
      redis.call('ZREM', KEYS[1], corr)
    end

    if kind then
      redis.call('ZADD', KEYS[1], now + lease, corr)
      local ok, job = pcall(append_snapshot, { corr, kind }, wf_key, ARGV[1] .. 'sig:' .. corr)
      if ok then
        reply[#reply + 1] = job
      else
        redis.call('ZADD', KEYS[1], now + BROKEN_RETRY_MS, corr)
        reply[#reply + 1] = { corr, 'broken', tostring(job) }
      end
    end
  end
end

reply[1] = redis.call('ZCARD', KEYS[1])
reply[2] = #due
return reply
