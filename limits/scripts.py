"""The Lua scripts: one per operation, each touching keys of one cluster slot.

A reservation record is one JSON string (every value a string), not a hash:
on the measured Redis a 17-field HSET plus HGETALL cost more than the rest of
the script together. Every script replies one JSON array
``[status, day_used, year_used, others_used, record]``, so the caller learns
the windows' usage without a second round trip. Counters travel as Redis's
own decimal strings, never through Lua's 14-digit number formatting. Window
counter keys are read from the record; they share its hash tag, so they
always sit in the same slot.
"""

from __future__ import annotations

__all__ = ["COMMIT", "DUE_INDEXES", "RELEASE", "REAP", "RESERVE", "SET_SETTING"]

_HELPERS = """
local function raw(key)
  if not key or key == '' then return '0' end
  return redis.call('GET', key) or '0'
end
local function load(rec)
  local v = redis.call('GET', rec)
  if v then return cjson.decode(v) end
  return nil
end
local function save(rec, r)
  redis.call('SET', rec, cjson.encode(r), 'KEEPTTL')
end
local function reply(status, r)
  if not r then return cjson.encode({status, '0', '0', '0', false}) end
  return cjson.encode({status, raw(r.day_key), raw(r.year_key), raw(r.others_key), r})
end
local function inc(key, amount, expire_at, now)
  redis.call('INCRBY', key, amount)
  local ttl = math.ceil(tonumber(expire_at) - tonumber(now))
  if ttl < 1 then ttl = 1 end
  redis.call('EXPIRE', key, ttl)
end
local function dec(key, amount)
  if key and key ~= '' and redis.call('EXISTS', key) == 1 then
    if redis.call('DECRBY', key, amount) < 0 then redis.call('SET', key, 0, 'KEEPTTL') end
  end
end
local function uncount(r)
  dec(r.day_key, r.amount); dec(r.year_key, r.amount); dec(r.others_key, r.amount)
end
"""

# KEYS: record, pending, day, year, day_to_others
# ARGV: amount, day_limit, year_limit, others_limit, notice_limit, to_others,
#       expires_at, now, day_expire_at, year_expire_at, retention, tier, day, year
RESERVE = _HELPERS + """
local rec, pending = KEYS[1], KEYS[2]
local amount = tonumber(ARGV[1])
local to_others = ARGV[6]
local old = load(rec)
if old then
  if old.amount ~= ARGV[1] or old.to_others ~= to_others then return reply('conflict', nil) end
  -- A retry under the same key: counted once.
  if old.state == 'reserved' or old.state == 'committed' then return reply('exists', old) end
end
local day_raw, year_raw, others_raw = raw(KEYS[3]), raw(KEYS[4]), '0'
if to_others == '1' then others_raw = raw(KEYS[5]) end
local day, year, others = tonumber(day_raw), tonumber(year_raw), tonumber(others_raw)
local function refuse(status, window)
  return cjson.encode({status, day_raw, year_raw, others_raw, window})
end
local day_limit, year_limit = tonumber(ARGV[2]), tonumber(ARGV[3])
if day_limit and day + amount > day_limit then return refuse('exceeded', 'day') end
if year_limit and year + amount > year_limit then return refuse('exceeded', 'year') end
if to_others == '1' then
  local others_limit, notice_limit = tonumber(ARGV[4]), tonumber(ARGV[5])
  if others_limit and others + amount > others_limit then
    return refuse('exceeded', 'day_to_others')
  end
  if notice_limit and others + amount > notice_limit then return refuse('notice', '') end
end
local now = ARGV[8]
inc(KEYS[3], amount, ARGV[9], now)
inc(KEYS[4], amount, ARGV[10], now)
local others_key = ''
if to_others == '1' then
  inc(KEYS[5], amount, ARGV[9], now)
  others_key = KEYS[5]
end
local attempts = 1
if old then attempts = tonumber(old.attempts) + 1 end
local r = {state = 'reserved', amount = ARGV[1], to_others = to_others, tier = ARGV[12],
  day = ARGV[13], year = ARGV[14], day_key = KEYS[3], year_key = KEYS[4],
  others_key = others_key, day_expire_at = ARGV[9], year_expire_at = ARGV[10],
  created = now, expires_at = ARGV[7], attempts = tostring(attempts)}
redis.call('SET', rec, cjson.encode(r), 'EX', ARGV[11])
redis.call('ZADD', pending, ARGV[7], rec)
return reply('reserved', r)
"""

# KEYS: record, pending     ARGV: now
COMMIT = _HELPERS + """
local rec, pending, now = KEYS[1], KEYS[2], ARGV[1]
local r = load(rec)
if not r then return reply('unknown', nil) end
if r.state == 'released' or r.state == 'committed' then return reply(r.state, r) end
if r.state == 'expired' then
  -- Reaped while the upstream was still working, and the upstream did move
  -- the money: count it again so the counters agree with the ledger.
  inc(r.day_key, r.amount, r.day_expire_at, now)
  inc(r.year_key, r.amount, r.year_expire_at, now)
  if r.others_key ~= '' then inc(r.others_key, r.amount, r.day_expire_at, now) end
  r.recounted = '1'
end
r.state = 'committed'
r.settled_at = now
save(rec, r)
redis.call('ZREM', pending, rec)
return reply('committed', r)
"""

# KEYS: record, pending     ARGV: now
RELEASE = _HELPERS + """
local rec, pending, now = KEYS[1], KEYS[2], ARGV[1]
local r = load(rec)
if not r then return reply('unknown', nil) end
if r.state == 'reserved' then
  uncount(r)
  r.state = 'released'
  r.settled_at = now
  save(rec, r)
  redis.call('ZREM', pending, rec)
end
return reply(r.state, r)
"""

# KEYS: pending (one slot's index)     ARGV: now, batch
# Releases reservations of that slot whose expiry has passed.
REAP = _HELPERS + """
local pending, now = KEYS[1], ARGV[1]
local due = redis.call('ZRANGEBYSCORE', pending, '-inf', now, 'LIMIT', 0, tonumber(ARGV[2]))
local released = 0
for _, rec in ipairs(due) do
  local r = load(rec)
  if r and r.state == 'reserved' then
    uncount(r)
    r.state = 'expired'
    r.settled_at = now
    save(rec, r)
    released = released + 1
  end
  redis.call('ZREM', pending, rec)
end
return {released, #due}
"""

# KEYS: slot indexes (a single, non-cluster Redis only)     ARGV: now
# Which of the given indexes hold a reservation due for reaping.
DUE_INDEXES = """
local due = {}
for _, key in ipairs(KEYS) do
  if redis.call('ZCOUNT', key, '-inf', ARGV[1]) > 0 then due[#due + 1] = key end
end
return due
"""

# KEYS: settings hash     ARGV: field, expected ('' = unset), new ('' = unset)
SET_SETTING = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return 0 end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return 1
"""
