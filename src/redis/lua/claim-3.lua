--[[
  Claims an open workflow for evaluation. Exactly one caller wins; the snapshot it gets back is what
  it evaluates. The claim is a lease: if the claimer dies, the sweeper re-claims it after lease ms.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] claim token (unique per claimer)   ARGV[3] lease ms

  Output: { 1, now, wf..., '|', sig... }  claimed
          { 0, status }                   not claimed: already evaluating or finished (or missing: status '')
]]
-- @include common.lua

local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 0, status or '' }
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'status', 'evaluating', 'claim', ARGV[2], 'claim_kind', 'evaluate')
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])

return append_snapshot({ 1, now }, KEYS[1], KEYS[2])
