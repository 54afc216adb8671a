"""Per-user history the features need, held in Redis under the user's hash tag.

Keys (all in ``{u:<user_id>}`` so one Redis Cluster slot holds them):

    :risk:txn      zset  decided money movements, score = time,
                         member = "<decision_id>|<amount_fen>|<payee_digest>|<payee_new 0/1>"
    :risk:sfail    zset  failed step-ups, score = time
    :risk:amt      hash  time-decayed log-amount statistics w, mean, s, ts
    :risk:payees   hash  payee digest -> first time the user paid / added it
    :risk:devices  hash  device id -> first time seen by the risk engine
    :risk:hours    hash  local hour "0".."23" -> decayed count of completed transactions
    :risk:geo      hash  ip, lat, lon, ts of the previous request
    :risk:sim      string time of the last SIM change reported for the user

Reads are one pipelined round trip; writes are one Lua script (atomic, one
round trip) run after the decision, outside the hot path.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from redis.asyncio import Redis
from redis.exceptions import RedisError

from limits.batching import ScriptBatcher
from risk_engine.errors import RiskStateUnavailable

__all__ = ["HISTORY_READ_LUA_FUNCTION", "AmountStats", "HistoryStore", "UserHistory", "history_keys",
           "parse_history", "payee_digest"]

DAY = 86400.0
AMOUNT_DECAY_SECONDS = 90 * DAY  # e-folding time of the amount habit
HOUR_DECAY_SECONDS = 90 * DAY
VELOCITY_WINDOW = DAY
VELOCITY_HOUR = 3600.0
STATE_TTL = 400 * DAY  # history of users who went quiet expires


def _tag(user_id: str) -> str:
    return "{u:" + user_id + "}"


def history_keys(user_id: str) -> dict[str, str]:
    t = _tag(user_id)
    return {name: f"{t}:risk:{name}"
            for name in ("txn", "sfail", "amt", "payees", "devices", "hours", "geo", "sim")}


def payee_digest(payee: str) -> str:
    """A short stable digest so payee account numbers are not stored in the clear."""
    return hashlib.sha256(payee.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class AmountStats:
    """Time-decayed statistics of log(amount in fen): weight, mean, variance."""

    weight: float = 0.0
    mean: float = 0.0
    variance: float = 0.0

    def decayed_weight(self, age: float) -> float:
        return self.weight * math.exp(-max(age, 0.0) / AMOUNT_DECAY_SECONDS)


@dataclass(frozen=True, slots=True)
class UserHistory:
    """What Redis holds about a user, read in one round trip before the decision.

    The velocity figures are counted by Redis over the user's last 24 hours, as
    of the read (``now``) and for the payee of the request: a busy account costs
    the gateway no more than a quiet one.
    """

    txn_count_1h: int = 0
    txn_count_24h: int = 0
    amount_sum_24h_fen: int = 0
    new_payees_24h: int = 0  # distinct payees first paid within the 24 hours
    payee_new_24h: bool = False  # this payee was a new one within the 24 hours
    stepup_fail_1h: int = 0
    stepup_fail_24h: int = 0
    amount: AmountStats = AmountStats()
    amount_updated: float = 0.0
    payee_first_seen: float | None = None
    device_first_seen: float | None = None
    hours: tuple[float, ...] = (0.0,) * 24
    hours_updated: float = 0.0
    last_ip: str = ""
    last_geo: tuple[float, float] | None = None
    last_seen: float | None = None
    sim_changed: float | None = None


def _f(raw: bytes | None, default: float = 0.0) -> float:
    return float(raw) if raw is not None else default


def _pairs(flat: list) -> dict[bytes, bytes]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


def parse_history(raw: list) -> UserHistory:
    """``read_history``'s reply (Lua false is None) as a :class:`UserHistory`."""
    velocity, amt, payee_seen, dev_seen, hours, geo, sim = raw
    n1, n24, sum_fen, new_payees, payee_new, fail_1h, fail_24h = velocity
    amt, hours, geo = _pairs(amt), _pairs(hours), _pairs(geo)
    hour_counts = [0.0] * 24
    for k, v in hours.items():
        if k != b"ts":
            hour_counts[int(k)] = float(v)
    last_geo = None
    if b"lat" in geo and b"lon" in geo:
        last_geo = (float(geo[b"lat"]), float(geo[b"lon"]))
    return UserHistory(
        txn_count_1h=n1, txn_count_24h=n24, amount_sum_24h_fen=sum_fen,
        new_payees_24h=new_payees, payee_new_24h=payee_new == 1,
        stepup_fail_1h=fail_1h, stepup_fail_24h=fail_24h,
        amount=AmountStats(_f(amt.get(b"w")), _f(amt.get(b"mean")),
                           _f(amt.get(b"s")) / max(_f(amt.get(b"w")), 1e-9)),
        amount_updated=_f(amt.get(b"ts")),
        payee_first_seen=float(payee_seen) if payee_seen else None,
        device_first_seen=float(dev_seen) if dev_seen else None,
        hours=tuple(hour_counts),
        hours_updated=_f(hours.get(b"ts")),
        last_ip=geo.get(b"ip", b"").decode(),
        last_geo=last_geo,
        last_seen=float(geo[b"ts"]) if b"ts" in geo else None,
        sim_changed=float(sim) if sim else None,
    )


# KEYS: txn sfail amt payees devices hours geo
# ARGV: now decision_id amount_fen payee_digest device_id ip lat lon has_geo
#       moves_money completed local_hour amount_decay hour_decay window ttl
_RECORD_LUA = """
local now = tonumber(ARGV[1])
local amount = tonumber(ARGV[3])
local payee = ARGV[4]
local ttl = tonumber(ARGV[16])
redis.call('HSETNX', KEYS[5], ARGV[5], ARGV[1])
redis.call('EXPIRE', KEYS[5], ttl)
if ARGV[9] == '1' then
  redis.call('HSET', KEYS[7], 'ip', ARGV[6], 'lat', ARGV[7], 'lon', ARGV[8], 'ts', ARGV[1])
else
  redis.call('HSET', KEYS[7], 'ip', ARGV[6], 'ts', ARGV[1])
  redis.call('HDEL', KEYS[7], 'lat', 'lon')
end
redis.call('EXPIRE', KEYS[7], ttl)
if ARGV[10] ~= '1' then return 0 end
local is_new = '0'
if payee ~= '' and redis.call('HEXISTS', KEYS[4], payee) == 0 then is_new = '1' end
redis.call('ZADD', KEYS[1], now, ARGV[2] .. '|' .. ARGV[3] .. '|' .. payee .. '|' .. is_new)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[15]))
redis.call('EXPIRE', KEYS[1], ttl)
if ARGV[11] ~= '1' then return 0 end
if payee ~= '' then redis.call('HSETNX', KEYS[4], payee, ARGV[1]) end
redis.call('EXPIRE', KEYS[4], ttl)
if amount > 0 then
  local x = math.log(amount)
  local st = redis.call('HMGET', KEYS[3], 'w', 'mean', 's', 'ts')
  local w = tonumber(st[1]) or 0
  local mean = tonumber(st[2]) or 0
  local s = tonumber(st[3]) or 0
  local ts = tonumber(st[4]) or now
  local d = math.exp(-math.max(now - ts, 0) / tonumber(ARGV[13]))
  local w_old = w * d
  local w_new = w_old + 1
  local mean_new = mean + (x - mean) / w_new
  s = s * d + (x - mean) * (x - mean_new)
  redis.call('HSET', KEYS[3], 'w', tostring(w_new), 'mean', tostring(mean_new),
             's', tostring(s), 'ts', ARGV[1])
  redis.call('EXPIRE', KEYS[3], ttl)
end
local hts = tonumber(redis.call('HGET', KEYS[6], 'ts'))
if not hts then
  redis.call('HSET', KEYS[6], 'ts', ARGV[1])
else
  -- decay at most hourly; ts only moves when the decay is applied
  local hd = math.exp(-math.max(now - hts, 0) / tonumber(ARGV[14]))
  if hd < 0.9995 then
    for h = 0, 23 do
      local c = tonumber(redis.call('HGET', KEYS[6], tostring(h)))
      if c then redis.call('HSET', KEYS[6], tostring(h), tostring(c * hd)) end
    end
    redis.call('HSET', KEYS[6], 'ts', ARGV[1])
  end
end
redis.call('HINCRBYFLOAT', KEYS[6], ARGV[12], 1)
redis.call('EXPIRE', KEYS[6], ttl)
return 1
"""


# A Lua function a script embeds to read the history (this module's read script, and
# the gateway's first round trip, which reads everything a request needs in one script).
# K: txn sfail amt payees devices hours geo sim; A: day_ago payee_digest device_id hour_ago.
# The velocity is counted here: on the hot path the client-side cost of each reply
# element is what counts, and a busy account's day of transfers would otherwise cross
# the wire.
HISTORY_READ_LUA_FUNCTION = """
local function read_history(K, A)
  local payee = A[2]
  local since = '(' .. A[1]
  local txn = redis.call('ZRANGEBYSCORE', K[1], since, '+inf')
  local sum, new_payees, payee_new = 0, 0, 0
  local seen = {}
  local find, sub = string.find, string.sub
  for i = 1, #txn do
    local m = txn[i]
    local a = find(m, '|', 1, true)
    local b = find(m, '|', a + 1, true)
    sum = sum + tonumber(sub(m, a + 1, b - 1))
    if string.byte(m, -1) == 49 then  -- member ends in '|1': the payee was new then
      local p = sub(m, b + 1, -3)
      if not seen[p] then seen[p] = true; new_payees = new_payees + 1 end
      if p == payee then payee_new = 1 end
    end
  end
  return {
    {redis.call('ZCOUNT', K[1], '(' .. A[4], '+inf'), #txn, sum, new_payees, payee_new,
     redis.call('ZCOUNT', K[2], '(' .. A[4], '+inf'), redis.call('ZCOUNT', K[2], since, '+inf')},
    redis.call('HGETALL', K[3]),
    redis.call('HGET', K[4], payee),
    redis.call('HGET', K[5], A[3]),
    redis.call('HGETALL', K[6]),
    redis.call('HGETALL', K[7]),
    redis.call('GET', K[8]),
  }
end
"""
_READ_LUA = HISTORY_READ_LUA_FUNCTION + "return read_history(KEYS, ARGV)\n"


class HistoryStore:
    """Reads and updates the Redis-held history of one user at a time."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._record = redis.register_script(_RECORD_LUA)
        self._read = redis.register_script(_READ_LUA)
        self._batch = ScriptBatcher(redis)  # concurrent requests' updates share a round trip

    @staticmethod
    def read_call(user_id: str, payee: str, device_id: str, now: float) -> tuple[list, list]:
        """The keys and arguments of ``read_history`` (:data:`HISTORY_READ_LUA_FUNCTION`)."""
        k = history_keys(user_id)
        keys = [k["txn"], k["sfail"], k["amt"], k["payees"], k["devices"], k["hours"], k["geo"], k["sim"]]
        return keys, [repr(now - VELOCITY_WINDOW), payee_digest(payee) if payee else "", device_id,
                      repr(now - VELOCITY_HOUR)]

    async def read(self, user_id: str, *, payee: str, device_id: str, now: float) -> UserHistory:
        """Everything the features need, in one round trip (one script)."""
        keys, args = self.read_call(user_id, payee, device_id, now)
        try:
            raw = await self._read(keys=keys, args=args)
        except RedisError as exc:
            raise RiskStateUnavailable(f"reading risk history failed: {exc}") from exc
        return parse_history(raw)

    async def record(self, *, user_id: str, decision_id: str, now: float, amount_fen: int,
                     payee: str, device_id: str, ip: str, geo: tuple[float, float] | None,
                     moves_money: bool, completed: bool, local_hour: int) -> None:
        """Update history after a decision.

        Every request updates device first-seen and the last IP/location; money
        movements count toward velocity whatever their outcome; only completed
        transactions teach the habit (amount, hour, known payees), so a
        fraudster's refused attempts cannot shift what looks normal.
        """
        k = history_keys(user_id)
        keys = [k[n] for n in ("txn", "sfail", "amt", "payees", "devices", "hours", "geo")]
        lat, lon = geo if geo is not None else (0.0, 0.0)
        args = [repr(now), decision_id, str(amount_fen), payee_digest(payee) if payee else "",
                device_id, ip, repr(lat), repr(lon), "1" if geo is not None else "0",
                "1" if moves_money else "0", "1" if completed else "0", str(local_hour),
                repr(AMOUNT_DECAY_SECONDS), repr(HOUR_DECAY_SECONDS), repr(VELOCITY_WINDOW),
                str(int(STATE_TTL))]
        try:
            await self._batch(self._record, keys, args)
        except RedisError as exc:
            raise RiskStateUnavailable(f"recording risk history failed: {exc}") from exc

    async def record_stepup_failure(self, user_id: str, attempt_id: str, now: float) -> None:
        key = history_keys(user_id)["sfail"]
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.zadd(key, {f"{attempt_id}": now})
                pipe.zremrangebyscore(key, "-inf", now - VELOCITY_WINDOW)
                pipe.expire(key, int(VELOCITY_WINDOW) * 2)
                await pipe.execute()
        except RedisError as exc:
            raise RiskStateUnavailable(f"recording a step-up failure failed: {exc}") from exc

    async def record_sim_change(self, user_id: str, now: float) -> None:
        """A SIM swap / number port reported for the user (carrier signal or the app)."""
        try:
            await self._redis.set(history_keys(user_id)["sim"], repr(now), ex=int(STATE_TTL))
        except RedisError as exc:
            raise RiskStateUnavailable(f"recording a SIM change failed: {exc}") from exc
