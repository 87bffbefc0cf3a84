--[[
  Ends workflows whose decision was just published: final status and the decision message stored (for
  inspection and the retention period), `published` set, out of the due index, and their keys live on for
  the retention period (inspection, and de-duplication of repeated triggers). Several workflows of one
  shard in one call: the decisions published in one event-loop turn are finalised together.

  Each workflow must be the one frozen (status `evaluating`, same start time): the first caller to finalise
  wins, and a second claimant (a lease taken over) finds it done. A workflow whose decision an older
  version recorded before publishing (status final, `decision` stored, no `published`) is marked published.

  KEYS[1] deadlines   the shard's due index
  KEYS[2] recent      the shard's index of finished workflows (zset corr_id -> finished ms), which the admin
                      API lists (GET /workflows): kept to the retention period here, so it holds nothing
                      per active workflow

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:'   ARGV[2] retention ms
  then per workflow, four arguments: corr_id, start time (`started` ms), final status, decision message (JSON)

  Output: one item per workflow, in order: { 1, started ms, finished ms } finalised now (count the decision
          once, here), or { 0 } (finalised already, another workflow of the corr_id, or gone)
]]
-- @include common.lua

local FINAL = { completed = true, timeout = true, failed = true, cancelled = true }

local now = now_ms()
local retention = tonumber(ARGV[2])
local out = {}
for i = 3, #ARGV, 4 do
  local corr, started = ARGV[i], ARGV[i + 1]
  local wf_key = ARGV[1] .. 'wf:' .. corr
  -- pcall: a key Redis refuses to read (wrong type) answers { 0 } for its workflow alone, and the sweeper
  -- reports it as broken; the others of the batch are finalised.
  local wf = redis.pcall('HMGET', wf_key, 'status', 'published', 'started', 'finished')
  local result = { 0 }
  if not wf.err and wf[3] == started and wf[2] ~= '1' then
    if wf[1] == 'evaluating' then
      redis.call('HSET', wf_key, 'status', ARGV[i + 2], 'decision', ARGV[i + 3], 'finished', now, 'published', 1)
      result = { 1, tonumber(started), now }
    elseif FINAL[wf[1]] then
      redis.call('HSET', wf_key, 'published', 1)
      result = { 1, tonumber(started), tonumber(wf[4]) or now }
    end
  end
  if result[1] == 1 then
    redis.call('ZREM', KEYS[1], corr)
    redis.call('ZADD', KEYS[2], result[3], corr)
    redis.call('PEXPIRE', wf_key, retention)
    redis.call('PEXPIRE', ARGV[1] .. 'sig:' .. corr, retention)
  end
  out[#out + 1] = result
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. (now - retention))
return out
