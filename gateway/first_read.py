"""The first round trip of a signed request: one script reads all the request needs.

The device, the session, the account directory and enrolment time; the nonce
claim, which is the only write (a request that fails the signature check burns
its own nonce, nothing else); the risk history (``read_history`` from
:mod:`risk_engine.history`); and, for a money movement, the user's own limits,
today's and this year's spend and the enrolled tools. Every one of these keys
lives in the user's hash slot, so this is one command on a Redis Cluster too.

One script rather than a pipeline of a dozen commands: on the request path the
client-side cost of each command (packing, parsing, callbacks) is what counts.
A session of another user than the device's goes the plain way; it is refused
once the signature has been checked.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_fingerprint.registry import device_key, user_tag
from gateway.decision import MoneyRows, held_tools, money_rows, parse_money_rows, queue_user_rows
from gateway.services import Services
from limits.keys import UserKeys
from risk_engine.history import HISTORY_READ_LUA_FUNCTION, HistoryStore, UserHistory, parse_history

__all__ = ["FirstRead", "FirstReader"]

# KEYS: device session accounts user nonce | the 8 history keys | for money: settings,
#       spent today, this year, today to others, then one credential hash per tool
# ARGV: nonce ttl | the 4 history arguments
_LUA = HISTORY_READ_LUA_FUNCTION + """
local rows = {redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[2]),
              redis.call('HGETALL', KEYS[3]), redis.call('HGET', KEYS[4], 'created')}
local claimed = redis.call('SET', KEYS[5], '1', 'NX', 'EX', ARGV[1])
local history = read_history({unpack(KEYS, 6, 13)}, {unpack(ARGV, 2, 5)})
local money = {}
if #KEYS > 13 then
  money[1] = redis.call('HGETALL', KEYS[14])
  money[2] = redis.call('MGET', KEYS[15], KEYS[16], KEYS[17])
  for i = 18, #KEYS do money[#money + 1] = redis.call('HLEN', KEYS[i]) end
end
return {rows, claimed and 1 or 0, history, money}
"""


def _hash(flat: list[bytes]) -> dict[bytes, bytes]:
    return dict(zip(flat[0::2], flat[1::2], strict=True))


@dataclass(frozen=True, slots=True)
class FirstRead:
    device: dict[bytes, bytes]  # the raw rows; parsed once the signature is checked
    session: dict[bytes, bytes]
    user_rows: tuple[dict[bytes, bytes], bytes | None]  # account directory, enrolment time
    claimed: bool  # the nonce was fresh
    history: UserHistory
    money_rows: MoneyRows | None  # for a money movement


class FirstReader:
    """Runs the first round trip on the services' Redis (the script is registered once
    per client)."""

    def __init__(self) -> None:
        self._script = None
        self._client = None

    async def __call__(self, svc: Services, *, device_id: str, user: str, session_key: str,
                       nonce_key: str, payee: str, moves_money: bool, now: float) -> FirstRead:
        if not session_key.startswith(user_tag(user) + ":"):
            return await self._apart(svc, device_id=device_id, user=user, session_key=session_key,
                                     nonce_key=nonce_key, payee=payee, moves_money=moves_money,
                                     now=now)
        history_keys, history_args = HistoryStore.read_call(user, payee, device_id, now)
        keys = [device_key(device_id), session_key, svc.accounts.key(user), f"{user_tag(user)}:user",
                nonce_key, *history_keys]
        if moves_money:  # in the order parse_money_rows reads them
            keys += [UserKeys(user).settings(), *svc.reservations.spent_keys(user, now),
                     *(svc.credentials.key(user, tool) for tool in held_tools(svc))]
        rows, claimed, history, money = await self._registered(svc)(
            keys=keys, args=[svc.device_check.nonce_ttl, *history_args])
        return FirstRead(
            device=_hash(rows[0]), session=_hash(rows[1]), user_rows=(_hash(rows[2]), rows[3] or None),
            claimed=claimed == 1, history=parse_history(history),
            money_rows=parse_money_rows(svc, [_hash(money[0]), *money[1:]]) if moves_money else None)

    def _registered(self, svc: Services):  # noqa: ANN202 - redis AsyncScript
        if self._script is None or self._client is not svc.redis:
            self._script, self._client = svc.redis.register_script(_LUA), svc.redis
        return self._script

    @staticmethod
    async def _apart(svc: Services, *, device_id: str, user: str, session_key: str, nonce_key: str,
                     payee: str, moves_money: bool, now: float) -> FirstRead:
        """The same reads when the session is not in the device user's slot."""
        async with svc.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(device_key(device_id))
            pipe.hgetall(session_key)
            queue_user_rows(svc, pipe, user)
            pipe.set(nonce_key, b"1", nx=True, ex=svc.device_check.nonce_ttl)
            raw_device, raw_session, accounts, created, claimed = await pipe.execute()
        history = await svc.risk.history.read(user, payee=payee, device_id=device_id, now=now)
        return FirstRead(device=raw_device, session=raw_session, user_rows=(accounts, created),
                         claimed=bool(claimed), history=history,
                         money_rows=await money_rows(svc, user, now) if moves_money else None)
