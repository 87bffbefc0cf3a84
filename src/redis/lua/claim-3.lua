--[[
  Claims an open workflow for evaluation. Exactly one caller wins, and it evaluates the workflow as it
  is at the claim: the caller passes the version of the snapshot it holds, and gets the current
  snapshot back only if that one is outdated (a signal arrived in between), which keeps the common
  reply small. The claim is a lease: if the claimer dies, the sweeper re-claims it after lease ms.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] claim token (unique per claimer)   ARGV[3] lease ms
  ARGV[4] version (`ver`) of the caller's snapshot

  Output: { 1, now }                      claimed; the caller's snapshot is current
          { 2, now, wf..., '|', sig... }  claimed; the current snapshot (the caller's was outdated)
          { 0, status }                   not claimed: already evaluating or finished (or missing: status '')
]]
-- @include common.lua

local wf = redis.call('HMGET', KEYS[1], 'status', 'ver')
local status = wf[1]
if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 0, status or '' }
end

local now = now_ms()
redis.call('HSET', KEYS[1], 'status', 'evaluating', 'claim', ARGV[2], 'claim_kind', 'evaluate')
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])

if wf[2] == ARGV[4] then
  return { 1, now }
end
return append_snapshot({ 2, now }, KEYS[1], KEYS[2])
