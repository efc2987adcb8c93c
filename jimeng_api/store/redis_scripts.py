"""The Lua scripts of the Redis store: each operation that must be atomic is
one script, timed by Redis' own clock (``TIME``), so every host agrees."""

NOW = """local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""
CREATE = """if redis.call('SET', KEYS[1], ARGV[1], 'NX') == false then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2]) end
redis.call('ZADD', KEYS[4], 'inf', ARGV[2])
redis.call('SADD', KEYS[5], ARGV[4])
redis.call('HSET', KEYS[6], ARGV[2], ARGV[6])
return 1"""
# KEYS: job, unfinished, old status, new status, statuses
# ARGV: old json, new json, id, created_at, unfinished?, status, ttl ms or ''
UPDATE = f"""{NOW}local cur = redis.call('GET', KEYS[1])
if not cur then return -1 end
if cur ~= ARGV[1] then return 0 end
local score = 'inf'
if ARGV[7] ~= '' then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[7])
  score = string.format('%d', now + tonumber(ARGV[7]))
else
  redis.call('SET', KEYS[1], ARGV[2], 'KEEPTTL')
  local left = redis.call('PTTL', KEYS[1])
  if left >= 0 then score = string.format('%d', now + left) end
end
redis.call('ZREM', KEYS[3], ARGV[3])
redis.call('ZADD', KEYS[4], score, ARGV[3])
redis.call('SADD', KEYS[5], ARGV[6])
if ARGV[5] == '1' then redis.call('ZADD', KEYS[2], ARGV[4], ARGV[3])
else redis.call('ZREM', KEYS[2], ARGV[3]) end
return 1"""
# KEYS: an id zset. ARGV: job key prefix, after id or '', want, batch,
# check the after job is live?, 'rev' (newest first) or 'fwd', values?
# Returns {cursor, id, value-or-1, ...}; cursor '' when the zset is exhausted,
# false when *after* is not in the zset (or not live, when checked).
PAGE = """local zkey, prefix, after = KEYS[1], ARGV[1], ARGV[2]
local want, batch, rev = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[6] == 'rev'
local start = 0
if after ~= '' then
  local rank = redis.call(rev and 'ZREVRANK' or 'ZRANK', zkey, after)
  if not rank then return false end
  if ARGV[5] == '1' and redis.call('EXISTS', prefix .. after) == 0 then return false end
  start = rank + 1
end
local ids = redis.call(rev and 'ZREVRANGE' or 'ZRANGE', zkey, start, start + batch - 1)
local out, stale, found, last = {''}, {}, 0, nil
for _, id in ipairs(ids) do
  last = id
  local v
  if ARGV[7] == '1' then v = redis.call('GET', prefix .. id)
  elseif redis.call('EXISTS', prefix .. id) == 1 then v = '1' end
  if v then
    found = found + 1
    out[#out + 1] = id
    out[#out + 1] = v
    if found == want then break end
  else
    stale[#stale + 1] = id
  end
end
if found == want or #ids == batch then
  out[1] = last
  if stale[#stale] == last then stale[#stale] = nil end
end
for i = 1, #stale, 100 do
  redis.call('ZREM', zkey, unpack(stale, i, math.min(i + 99, #stale)))
end
return out"""
INCR = """local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n"""
ACQUIRE = """local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1"""
RENEW = """local kept = {}
for i, key in ipairs(KEYS) do
  if redis.call('GET', key) == ARGV[1] then
    redis.call('PEXPIRE', key, ARGV[2])
    kept[#kept + 1] = i
  end
end
return kept"""
DELETE_IF = """if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0"""
# slots: drop expired members, then keep the key alive as long as its last one
SLOTS = f"""{NOW}redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local function keep_alive()
  local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
  if last[2] then
    redis.call('PEXPIREAT', KEYS[1], string.format('%d', tonumber(last[2])))
  end
end
local expiry = string.format('%d', now + tonumber(ARGV[1]))
"""
TAKE = f"""{SLOTS}if not redis.call('ZSCORE', KEYS[1], ARGV[2]) then
  if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('ZADD', KEYS[1], expiry, ARGV[2])
keep_alive()
return 1"""
RENEW_SLOTS = f"""{SLOTS}for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', expiry, ARGV[i])
end
keep_alive()
return 1"""
COUNT = NOW + "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')"
SCRIPTS = {
    "CREATE": CREATE, "UPDATE": UPDATE, "PAGE": PAGE, "INCR": INCR,
    "ACQUIRE": ACQUIRE, "RENEW": RENEW, "DELETE_IF": DELETE_IF, "TAKE": TAKE,
    "RENEW_SLOTS": RENEW_SLOTS, "COUNT": COUNT,
}  # fmt: skip
