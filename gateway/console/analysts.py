"""Console analysts: names, roles, passkeys and one-time enrolment links, in Redis.

Keys (one hash tag):

    {console:analysts}:a:<name>        hash: name, role, created_at, cred:<id> (FidoCredential JSON)
    {console:analysts}:index           set of names
    {console:analysts}:enrol:<sha256>  name of the analyst a one-time enrolment token is for (TTL)

Only a SHA-256 of an enrolment token is stored: reading Redis does not give a
working link. Passkey records hold public keys only. A removed analyst's record
goes whole; a passkey or role written for a name that no longer exists is
refused (AnalystNotFound), so an old enrolment link cannot plant a passkey on a
later analyst of the same name.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from auth_tools.fido import FidoCredential

__all__ = [
    "ENROLMENT_TTL",
    "Analyst",
    "AnalystError",
    "AnalystExists",
    "AnalystNotFound",
    "AnalystStore",
    "AnalystsUnavailable",
    "EnrolmentInvalid",
    "Permission",
    "Role",
    "create_with_link",
    "valid_name",
]

TAG = "{console:analysts}"
INDEX_KEY = f"{TAG}:index"
ENROLMENT_TTL = 24 * 3600
_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}\Z")
# HSET only on a record that exists (it has a role): 1 written, 0 no such analyst.
_SET_IF_EXISTS_LUA = """
if redis.call('HEXISTS', KEYS[1], 'role') == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
"""


class Permission(StrEnum):
    VIEW = "view"
    LABEL = "label"
    PROPOSE_RULES = "propose_rules"
    APPROVE_RULES = "approve_rules"
    MANAGE_ANALYSTS = "manage_analysts"
    MANAGE_OPS = "manage_ops"  # switches, live limits and tool parameters


class Role(StrEnum):
    VIEWER = "viewer"
    ANALYST = "analyst"
    RULE_AUTHOR = "rule_author"
    APPROVER = "approver"
    ADMIN = "admin"

    @property
    def permissions(self) -> frozenset[Permission]:
        return _PERMISSIONS[self]

    def allows(self, permission: Permission) -> bool:
        return permission in _PERMISSIONS[self]


_P = Permission
_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.VIEWER: frozenset({_P.VIEW}),
    Role.ANALYST: frozenset({_P.VIEW, _P.LABEL}),
    Role.RULE_AUTHOR: frozenset({_P.VIEW, _P.LABEL, _P.PROPOSE_RULES}),
    Role.APPROVER: frozenset({_P.VIEW, _P.LABEL, _P.APPROVE_RULES}),
    Role.ADMIN: frozenset(Permission),
}


class AnalystError(Exception):
    code = "analyst_error"
    message = "the analyst cannot be handled"

    def __init__(self, message: str | None = None) -> None:
        self.message = message or self.message
        super().__init__(self.message)


class AnalystExists(AnalystError):
    code = "analyst_exists"
    message = "an analyst with that name already exists"


class AnalystNotFound(AnalystError):
    code = "analyst_not_found"
    message = "no analyst with that name"


class EnrolmentInvalid(AnalystError):
    code = "enrolment_link_invalid"
    message = "the enrolment link is unknown, used or expired; ask an admin for a new one"


class AnalystsUnavailable(AnalystError):
    code = "analysts_unavailable"
    message = "the analyst store cannot be read or written"


@dataclass(frozen=True, slots=True)
class Analyst:
    name: str
    role: Role
    created_at: float
    credentials: tuple[FidoCredential, ...] = ()

    def credential(self, credential_id: str) -> FidoCredential | None:
        return next((c for c in self.credentials if c.credential_id == credential_id), None)


def valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME_RE.match(name))


def _key(name: str) -> str:
    return f"{TAG}:a:{name.casefold()}"


def _token_key(token: str) -> str:
    return f"{TAG}:enrol:{hashlib.sha256(token.encode()).hexdigest()}"


class AnalystStore:
    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self._set_if_exists = redis.register_script(_SET_IF_EXISTS_LUA)

    async def create(self, name: str, role: Role, *, now: float) -> Analyst:
        """Add an analyst without passkeys; names are unique ignoring case."""
        if not valid_name(name):
            raise AnalystError("a name is 1-64 letters, digits and . _ @ - (starting with a letter or digit)")
        try:
            if not await self._redis.hsetnx(_key(name), "name", name):
                raise AnalystExists()
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.hset(_key(name), mapping={"role": role.value, "created_at": repr(now)})
                pipe.sadd(INDEX_KEY, name.casefold())
                await pipe.execute()
        except RedisError as exc:
            raise AnalystsUnavailable(f"storing the analyst failed: {exc}") from exc
        return Analyst(name, role, now)

    async def get(self, name: str) -> Analyst | None:
        if not valid_name(name):
            return None
        try:
            raw = await self._redis.hgetall(_key(name))
        except RedisError as exc:
            raise AnalystsUnavailable(f"reading the analyst failed: {exc}") from exc
        if b"role" not in raw:
            return None
        creds = tuple(FidoCredential.from_dict(orjson.loads(v)) for k, v in sorted(raw.items())
                      if k.startswith(b"cred:"))
        return Analyst(raw[b"name"].decode(), Role(raw[b"role"].decode()),
                       float(raw[b"created_at"]), creds)

    async def list(self) -> list[Analyst]:
        try:
            names = sorted(n.decode() for n in await self._redis.smembers(INDEX_KEY))
        except RedisError as exc:
            raise AnalystsUnavailable(f"listing analysts failed: {exc}") from exc
        return [a for a in [await self.get(n) for n in names] if a is not None]

    async def _set_field(self, name: str, field: str, value: bytes | str, what: str) -> None:
        try:
            written = await self._set_if_exists(keys=[_key(name)], args=[field, value])
        except RedisError as exc:
            raise AnalystsUnavailable(f"storing the {what} failed: {exc}") from exc
        if not written:
            raise AnalystNotFound()

    async def save_credential(self, name: str, credential: FidoCredential) -> None:
        """Store a new passkey or the updated state (counter, flag) of a known one."""
        await self._set_field(name, f"cred:{credential.credential_id}",
                              orjson.dumps(credential.as_dict()), "passkey")

    async def set_role(self, name: str, role: Role) -> None:
        """Change an analyst's role; it applies to their next request."""
        if not valid_name(name):
            raise AnalystNotFound()
        await self._set_field(name, "role", role.value, "role")

    async def remove(self, name: str) -> Analyst:
        """Delete an analyst with their passkeys; their sessions end at their next request."""
        analyst = await self.get(name)
        if analyst is None:
            raise AnalystNotFound()
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.delete(_key(name))
                pipe.srem(INDEX_KEY, name.casefold())
                await pipe.execute()
        except RedisError as exc:
            raise AnalystsUnavailable(f"removing the analyst failed: {exc}") from exc
        return analyst

    async def issue_enrolment(self, name: str, *, ttl: int = ENROLMENT_TTL) -> str:
        """A one-time token for ``name`` to register a passkey; only its hash is kept."""
        if await self.get(name) is None:
            raise AnalystNotFound()
        token = secrets.token_urlsafe(32)
        try:
            await self._redis.set(_token_key(token), name, ex=ttl)
        except RedisError as exc:
            raise AnalystsUnavailable(f"storing the enrolment link failed: {exc}") from exc
        return token

    async def enrolment_name(self, token: str, *, consume: bool = False) -> str:
        """The analyst a token enrols; ``consume`` makes it unusable afterwards."""
        if not isinstance(token, str) or not 20 <= len(token) <= 100:
            raise EnrolmentInvalid()
        try:
            key = _token_key(token)
            raw = await (self._redis.getdel(key) if consume else self._redis.get(key))
        except RedisError as exc:
            raise AnalystsUnavailable(f"reading the enrolment link failed: {exc}") from exc
        if raw is None:
            raise EnrolmentInvalid()
        return raw.decode()


async def create_with_link(store: AnalystStore, name: str, role: Role, *, now: float,
                           ttl: int = ENROLMENT_TTL) -> str:
    """Create an analyst and return their one-time enrolment token."""
    await store.create(name, role, now=now)
    return await store.issue_enrolment(name, ttl=ttl)
