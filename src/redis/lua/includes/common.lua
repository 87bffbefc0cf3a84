-- Helpers shared by the scripts: inlined where a script says `-- @include common.lua`
-- (src/redis/redis-scripts.ts does the inlining when it loads the scripts).

-- Redis's clock in ms: one clock for every replica.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Appends a workflow snapshot to `reply`: two strings, `wf` and `sig`, each a hash's HGETALL list joined with
-- NUL ("field\0value\0field\0value...", '' for no field). Two bulk strings for the client to decode instead
-- of one per field and value: the sweep returns hundreds of snapshots (docs/PERFORMANCE.md). No field or
-- value holds a NUL: the values are JSON texts (JSON has no raw control character), names of restricted
-- patterns, numbers, and the replica's name or a strategy's error, which WorkflowRepository.freeze cleans.
local function append_snapshot(reply, wf_key, sig_key)
  reply[#reply + 1] = table.concat(redis.call('HGETALL', wf_key), '\0')
  reply[#reply + 1] = table.concat(redis.call('HGETALL', sig_key), '\0')
  return reply
end

-- Whether a workflow's signals satisfy its readiness rule: the `rdy` field written at start from the
-- strategy's `readyWhen` (src/workflow/readiness.ts), "<at least>|<all of, csv>|<counted among, csv>":
-- every agent of the second part has a signal, and at least <at least> agents have one, counted among the
-- third part's (empty: any agent). Agent names never hold ',' or '|' (the signal DTO's pattern).
local function is_ready(rule, sig_key)
  local at_least, all, among = string.match(rule, '^(%d+)|([^|]*)|(.*)$')
  for agent in string.gmatch(all, '[^,]+') do
    if redis.call('HEXISTS', sig_key, agent) == 0 then
      return false
    end
  end
  at_least = tonumber(at_least)
  if at_least <= 0 then
    return true
  end
  if among == '' then
    return redis.call('HLEN', sig_key) >= at_least
  end
  local count = 0
  for agent in string.gmatch(among, '[^,]+') do
    count = count + redis.call('HEXISTS', sig_key, agent)
    if count >= at_least then
      return true
    end
  end
  return false
end

-- Freezes an open workflow for its decision (`why`: decide, timeout, cancel, force): from here nothing
-- changes it (its signals are late), and its due entry moves to now + lease, so that should the replica
-- deciding it die, the sweeper decides it again from this same snapshot (sweep-1.lua).
local function freeze(wf_key, deadlines, corr, why, now, lease)
  redis.call('HSET', wf_key, 'status', 'evaluating', 'why', why, 'frozen', now)
  redis.call('ZADD', deadlines, now + lease, corr)
end

-- The batched scripts' loop: `step(i)` for each item of ARGV from `first`, `width` arguments apiece, in a
-- pcall, so an item whose keys Redis refuses (wrong type, ...) fails alone, as { -1, <error> }, and the others
-- of the call go on. The replies, in the items' order.
local function each_item(first, width, step)
  local out = {}
  for i = first, #ARGV, width do
    local ok, result = pcall(step, i)
    if ok then
      out[#out + 1] = result
    else
      out[#out + 1] = { -1, type(result) == 'table' and result.err or tostring(result) }
    end
  end
  return out
end
