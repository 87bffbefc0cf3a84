-- Helpers shared by the scripts: inlined where a script says `-- @include common.lua`
-- (src/redis/redis-scripts.ts does the inlining when it loads the scripts).

-- Redis's clock in ms: one clock for every replica.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends a workflow snapshot to `reply`: HGETALL(wf_key)..., '|', HGETALL(sig_key)...
local function append_snapshot(reply, wf_key, sig_key)
  for _, v in ipairs(redis.call('HGETALL', wf_key)) do reply[#reply + 1] = v end
  reply[#reply + 1] = '|'
  for _, v in ipairs(redis.call('HGETALL', sig_key)) do reply[#reply + 1] = v end
  return reply
end
