--[[
  Admin API (GET /workflows): one page of one shard's index, read in index order from a position, with the
  workflow fields the list shows. Reads at most `budget` entries (filters may match few of them), so the
  work per page is bounded whatever the index holds; no scan of all keys.

  Order: ascending (score, corr_id) for the due index, descending for the recent index (newest first).
  A position is (score, corr_id): entries at or before it in that order are skipped, so the same position
  works on every shard (the caller merges shards by it).

  KEYS[1] index   the shard's `deadlines` (open or unpublished) or `recent` (finished and published)

  ARGV[1] key prefix of the shard, e.g. '{ma:3}:' (workflow keys are prefix .. 'wf:' .. corr_id)
  ARGV[2] 'asc' | 'desc'
  ARGV[3] position score ('' : from the start)   ARGV[4] position corr_id
  ARGV[5] wanted: stop after this many matches   ARGV[6] budget: stop after reading this many entries
  ARGV[7] statuses to keep, comma-separated ('' : any)   ARGV[8] workflow type to keep ('' : any)
  ARGV[9] '1' for the recent index: keep only published final workflows finished at the entry's score
          (an entry whose workflow expired is removed; one of a newer workflow of the corr_id is skipped)

  Output: { exhausted (1: nothing after the last entry read), last score, last corr_id, item, item ... }
          with last = the position of the last entry read ('' when none), and each item
          { corr_id, score, status, type, started, deadline, finished or '', published or '', { agent, ... } }
]]

local asc = ARGV[2] == 'asc'
local after = ARGV[3] ~= '' and tonumber(ARGV[3]) or nil
local after_corr = ARGV[4]
local wanted, budget = tonumber(ARGV[5]), tonumber(ARGV[6])
local type_filter = ARGV[8]
local recent = ARGV[9] == '1'
local statuses = nil
if ARGV[7] ~= '' then
  statuses = {}
  for s in string.gmatch(ARGV[7], '[^,]+') do statuses[s] = true end
end
local FINAL = { completed = true, timeout = true, failed = true, cancelled = true }

-- Byte order, as the sorted set orders ties and the caller merges: Lua's `<` on strings is strcoll's, which
-- follows the locale Redis was started in (Redis sets LC_COLLATE from its environment).
local function byte_cmp(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x < y and -1 or 1
    end
  end
  return #a == #b and 0 or (#a < #b and -1 or 1)
end

local items, read, offset, exhausted = {}, 0, 0, 0
local last_score, last_corr = '', ''
local BATCH = 100

while true do
  local entries
  if asc then
    entries = redis.call('ZRANGEBYSCORE', KEYS[1], after or '-inf', '+inf', 'WITHSCORES', 'LIMIT', offset, BATCH)
  else
    entries = redis.call('ZREVRANGEBYSCORE', KEYS[1], after or '+inf', '-inf', 'WITHSCORES', 'LIMIT', offset, BATCH)
  end
  local removed, stopped = 0, false
  for i = 1, #entries, 2 do
    local corr, score = entries[i], tonumber(entries[i + 1])
    -- Ties at the position's score: skip what the position already covers (corr_id order within a score).
    local covered = after ~= nil and score == after and ((asc and byte_cmp(corr, after_corr) <= 0) or (not asc and byte_cmp(corr, after_corr) >= 0))
    if not covered then
      read = read + 1
      last_score, last_corr = entries[i + 1], corr
      local wf_key = ARGV[1] .. 'wf:' .. corr
      local wf = redis.call('HMGET', wf_key, 'status', 'type', 'started', 'deadline', 'finished', 'published')
      local keep = wf[1] ~= false
      if not keep and recent then
        redis.call('ZREM', KEYS[1], corr)
        removed = removed + 1
      end
      if keep and recent then
        keep = FINAL[wf[1]] and wf[6] == '1' and tonumber(wf[5]) == score
      end
      if keep and statuses then keep = statuses[wf[1]] == true end
      if keep and type_filter ~= '' then keep = wf[2] == type_filter end
      if keep then
        items[#items + 1] = { corr, entries[i + 1], wf[1], wf[2] or '', wf[3] or '', wf[4] or '', wf[5] or '', wf[6] or '',
          redis.call('HKEYS', ARGV[1] .. 'sig:' .. corr) }
      end
      if #items >= wanted or read >= budget then
        stopped = true
        break
      end
    end
  end
  if stopped then break end
  if #entries < 2 * BATCH then
    exhausted = 1
    break
  end
  offset = offset + BATCH - removed
end

local reply = { exhausted, last_score, last_corr }
for _, item in ipairs(items) do reply[#reply + 1] = item end
return reply
