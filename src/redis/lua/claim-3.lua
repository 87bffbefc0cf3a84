--[[
  Claims an open workflow for evaluation. Exactly one caller wins; the snapshot it gets back is what
  it evaluates. The claim is a lease: if the claimer dies, the sweeper re-claims it after lease ms.

  KEYS[1] wf   KEYS[2] sig   KEYS[3] deadlines

  ARGV[1] corr_id   ARGV[2] claim token (unique per claimer)   ARGV[3] lease ms

  Output: { 1, now, wf..., '|', sig... }  claimed
          { 0, status }                   not claimed: already evaluating or finished (or missing: status '')
]]
local status = redis.call('HGET', KEYS[1], 'status')
if status ~= 'in_progress' and status ~= 'waiting_for_agents' then
  return { 0, status or '' }
end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', KEYS[1], 'status', 'evaluating', 'claim', ARGV[2], 'claim_kind', 'evaluate')
redis.call('ZADD', KEYS[3], now + tonumber(ARGV[3]), ARGV[1])

local reply = { 1, now }
for _, v in ipairs(redis.call('HGETALL', KEYS[1])) do reply[#reply + 1] = v end
reply[#reply + 1] = '|'
for _, v in ipairs(redis.call('HGETALL', KEYS[2])) do reply[#reply + 1] = v end
return reply
