"""Verify riskgate's ``X-Riskgate-Assertion`` in a bank's Python service.

A standalone file to copy: it needs only ``joserfc`` and the standard library
(urllib for the JWKS). docs/upstream-integration.md explains every check.

    jwks = JwksCache("https://gateway.example/.well-known/jwks.json")
    replay = MemoryJtiStore()          # production: shared storage, see the guide
    claims = verify_assertion(token, jwks=jwks, issuer="riskgate",
                              audience="riskgate-upstream", now=time.time(),
                              transaction=transfer_from_body(raw_body), jti_store=replay)

Every refusal is an ``AssertionRefused`` subclass with a stable ``code`` and
an HTTP ``status`` to answer with. Run as a script it reads one JSON job on
stdin, ``{"jwks_url", "token", "body", "issuer", "audience"}``, and prints the
verified claims, or ``{"error": code}`` with exit status 1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from joserfc import jws
from joserfc.errors import BadSignatureError, JoseError
from joserfc.jwk import ECKey

__all__ = [
    "AssertionRefused", "AssertionMissing", "AssertionMalformed", "AssertionAlgorithmRefused", "AssertionUnknownKey",
    "JwksUnavailable", "AssertionBadSignature", "AssertionWrongIssuer", "AssertionWrongAudience",
    "AssertionLifetimeTooLong", "AssertionExpired", "AssertionNotYetValid", "AssertionTxnMissing",
    "AssertionTxnMismatch", "AssertionReplayed", "TransactionBodyInvalid",
    "JwksCache", "JtiStore", "MemoryJtiStore", "Transaction", "canonical_amount", "fetch_url", "parse_jwks",
    "transfer_from_body", "verify_assertion",
]

ALGORITHM = "ES256"
ALLOWED_HEADER = frozenset({"alg", "kid", "typ"})
MAX_TOKEN_LENGTH = 8192
MAX_JWKS_BYTES = 64 * 1024
AMOUNT = re.compile(r"(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?")


# -- errors: one class per failure, each with a stable code ---------------------------

class AssertionRefused(Exception):
    code = "assertion_refused"
    status = 401


class AssertionMissing(AssertionRefused):
    code = "assertion_missing"


class AssertionMalformed(AssertionRefused):
    code = "assertion_malformed"


class AssertionAlgorithmRefused(AssertionRefused):
    code = "assertion_algorithm_refused"


class AssertionUnknownKey(AssertionRefused):
    code = "assertion_unknown_key"


class JwksUnavailable(AssertionRefused):
    code = "jwks_unavailable"
    status = 503


class AssertionBadSignature(AssertionRefused):
    code = "assertion_bad_signature"


class AssertionWrongIssuer(AssertionRefused):
    code = "assertion_wrong_issuer"


class AssertionWrongAudience(AssertionRefused):
    code = "assertion_wrong_audience"


class AssertionLifetimeTooLong(AssertionRefused):
    code = "assertion_lifetime_too_long"


class AssertionExpired(AssertionRefused):
    code = "assertion_expired"


class AssertionNotYetValid(AssertionRefused):
    code = "assertion_not_yet_valid"


class AssertionTxnMissing(AssertionRefused):
    code = "assertion_txn_missing"


class AssertionTxnMismatch(AssertionRefused):
    code = "assertion_txn_mismatch"


class AssertionReplayed(AssertionRefused):
    code = "assertion_replayed"


class TransactionBodyInvalid(AssertionRefused):
    """The body cannot stand for a transaction at all (bad JSON, amount, field)."""

    code = "invalid_body"
    status = 400


# -- the gateway's keys ---------------------------------------------------------------

def _no_redirects() -> urllib.request.OpenerDirector:
    class Refuse(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # a 3xx becomes an HTTPError: keys come from the configured URL only

    return urllib.request.build_opener(Refuse)


def fetch_url(url: str, timeout: float) -> bytes:
    """GET ``url`` with urllib (no redirects, at most MAX_JWKS_BYTES)."""
    try:
        with _no_redirects().open(url, timeout=timeout) as resp:
            body = resp.read(MAX_JWKS_BYTES + 1)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise JwksUnavailable(f"the JWKS could not be fetched: {exc}") from exc
    if len(body) > MAX_JWKS_BYTES:
        raise JwksUnavailable("the JWKS is too large")
    return body


def parse_jwks(document: bytes) -> dict[str, ECKey]:
    """Public P-256 signing keys by kid; anything else in the set is ignored."""
    try:
        doc = json.loads(document)
    except ValueError as exc:
        raise JwksUnavailable("the JWKS is not JSON") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("keys"), list):
        raise JwksUnavailable("the JWKS has no keys list")
    keys: dict[str, ECKey] = {}
    for entry in doc["keys"][:32]:
        if not isinstance(entry, dict) or entry.get("kty") != "EC" or entry.get("crv") != "P-256":
            continue
        if entry.get("use", "sig") != "sig" or entry.get("alg", ALGORITHM) != ALGORITHM:
            continue
        kid = entry.get("kid")
        if not isinstance(kid, str) or not kid:
            continue
        public = {"kty": "EC", "crv": "P-256", "x": entry.get("x"), "y": entry.get("y"), "kid": kid}
        try:
            keys[kid] = ECKey.import_key(public)  # public coordinates only, even if "d" leaked
        except (JoseError, ValueError, TypeError):
            continue
    return keys


class JwksCache:
    """The gateway's keys by kid, fetched from ``url`` and cached.

    A kid not in the cache triggers a refetch (the gateway may have rotated),
    at most once per ``min_refetch_interval`` seconds, so random kids cannot make
    this service hammer the gateway. After ``max_age`` seconds the set is
    refetched so removed keys stop being trusted; if that refetch fails the
    cached keys keep working.
    """

    def __init__(self, url: str, *, min_refetch_interval: float = 10.0, max_age: float = 300.0,
                 timeout: float = 5.0, fetch: Callable[[str, float], bytes] = fetch_url,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.url = url
        self.min_refetch_interval = min_refetch_interval
        self.max_age = max_age
        self.timeout = timeout
        self._fetch = fetch
        self._clock = clock
        self._keys: dict[str, ECKey] = {}
        self._fetched_at: float | None = None
        self._attempted_at: float | None = None
        self._last_failed = False
        self._lock = threading.Lock()

    def key_for(self, kid: str) -> ECKey:
        """The key named ``kid``; raises AssertionUnknownKey or JwksUnavailable."""
        with self._lock:
            now = self._clock()
            key = self._keys.get(kid)
            fresh = self._fetched_at is not None and now - self._fetched_at < self.max_age
            if key is not None and fresh:
                return key
            if self._attempted_at is not None and now - self._attempted_at < self.min_refetch_interval:
                if key is not None:
                    return key
                raise JwksUnavailable() if self._last_failed else AssertionUnknownKey()
            self._attempted_at = now
            try:
                self._keys = parse_jwks(self._fetch(self.url, self.timeout))
            except JwksUnavailable:
                self._last_failed = True
                if key is not None:
                    return key
                raise
            self._last_failed = False
            self._fetched_at = now
            key = self._keys.get(kid)
        if key is None:
            raise AssertionUnknownKey()
        return key


# -- single use of jti ----------------------------------------------------------------

class JtiStore(Protocol):
    def use_once(self, jti: str, expires_at: float, now: float) -> bool:
        """Record ``jti`` until ``expires_at``; False if it was already recorded."""


class MemoryJtiStore:
    """Seen jtis in this process only. Production needs storage every instance
    shares, written in the same transaction as the operation (see the guide)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def use_once(self, jti: str, expires_at: float, now: float) -> bool:
        with self._lock:
            for old in [j for j, exp in self._seen.items() if exp < now]:
                del self._seen[old]
            if jti in self._seen:
                return False
            self._seen[jti] = expires_at
            return True


# -- the canonical transaction --------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Transaction:
    """What the gateway approved; ``amount`` is the canonical "800.00" string."""

    action: str
    amount: str
    currency: str
    source: str
    payee: str

    def canonical_bytes(self) -> bytes:
        doc = {"action": self.action, "amount": self.amount, "currency": self.currency,
               "from": self.source, "payee": self.payee}
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    def hash(self) -> str:
        return hashlib.sha256(self.canonical_bytes()).hexdigest()


def canonical_amount(value: object) -> str:
    """``"12.5"`` -> ``"12.50"``, ``7`` -> ``"7.00"``; floats, signs and exponents are refused."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return f"{value}.00"
    match = AMOUNT.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise TransactionBodyInvalid("amount must be a decimal string such as \"500.00\"")
    return f"{match.group(1)}.{(match.group(2) or '.')[1:].ljust(2, '0')}"


def transfer_from_body(body: bytes | str, *, action: str = "transfer", amount_field: str = "amount",
                       currency_field: str = "currency", source_field: str = "from_account",
                       payee_field: str = "payee_account") -> Transaction:
    """The canonical transaction a request body stands for.

    The field names default to the reference API's ``POST /v1/transfers``; they
    must match the route's fields in the gateway's ``[[routes]]`` configuration.
    For adding a payee: ``action="add_payee", amount_field="", source_field="",
    payee_field="account"``.
    """
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise TransactionBodyInvalid("the body is not JSON") from exc
    if not isinstance(doc, dict):
        raise TransactionBodyInvalid("the body is not a JSON object")
    amount = canonical_amount(doc.get(amount_field)) if amount_field else "0.00"
    fields = [doc.get(name, default) if name else ""
              for name, default in ((currency_field, "CNY"), (source_field, ""), (payee_field, ""))]
    if not all(isinstance(value, str) for value in fields):
        raise TransactionBodyInvalid("currency, source and payee must be strings")
    currency, source, payee = fields
    return Transaction(action=action, amount=amount, currency=currency, source=source, payee=payee)


# -- the assertion --------------------------------------------------------------------

def verify_assertion(token: str | None, *, jwks: JwksCache, issuer: str, audience: str, now: float,
                     transaction: Transaction | None = None, jti_store: JtiStore | None = None,
                     leeway: int = 5, max_lifetime: int = 60) -> dict[str, Any]:
    """Verify ``token`` and return its claims.

    ``now`` is the wall clock (``time.time()``). Pass ``transaction`` (built from
    the body received) for every money movement and ``jti_store`` for every
    request that changes state. Raises one AssertionRefused subclass per failure.
    """
    if not token:
        raise AssertionMissing("the request carries no X-Riskgate-Assertion")
    if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
        raise AssertionMalformed("the assertion is not a compact JWS")
    try:
        header = jws.extract_compact(token.encode("ascii")).headers()
    except (JoseError, ValueError, TypeError, UnicodeError) as exc:
        raise AssertionMalformed("the assertion header cannot be read") from exc
    if header.get("alg") != ALGORITHM:
        raise AssertionAlgorithmRefused(f"only {ALGORITHM} is accepted")
    kid = header.get("kid")
    if not isinstance(kid, str) or not kid or not set(header) <= ALLOWED_HEADER:
        raise AssertionMalformed("the header must be exactly alg, kid and typ")
    key = jwks.key_for(kid)
    try:
        payload = jws.deserialize_compact(token, key, algorithms=[ALGORITHM]).payload
    except BadSignatureError as exc:
        raise AssertionBadSignature() from exc
    except (JoseError, ValueError, TypeError) as exc:
        raise AssertionMalformed() from exc
    try:
        claims = json.loads(payload)
    except ValueError as exc:
        raise AssertionMalformed("the payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise AssertionMalformed("the payload is not a JSON object")
    _check_claims(claims, issuer=issuer, audience=audience, now=now, leeway=leeway,
                  max_lifetime=max_lifetime)
    if transaction is not None:
        txn = claims.get("txn")
        if not isinstance(txn, dict) or not isinstance(txn.get("hash"), str):
            raise AssertionTxnMissing()
        if not hmac.compare_digest(txn["hash"].lower().encode(), transaction.hash().encode()):
            raise AssertionTxnMismatch()
    if jti_store is not None and not jti_store.use_once(claims["jti"], claims["exp"] + leeway, now):
        raise AssertionReplayed()
    return claims


def _check_claims(claims: dict[str, Any], *, issuer: str, audience: str, now: float, leeway: int,
                  max_lifetime: int) -> None:
    if not isinstance(claims.get("iss"), str) or not hmac.compare_digest(claims["iss"].encode(),
                                                                         issuer.encode()):
        raise AssertionWrongIssuer()
    if not isinstance(claims.get("aud"), str) or not hmac.compare_digest(claims["aud"].encode(),
                                                                         audience.encode()):
        raise AssertionWrongAudience()
    iat, exp = claims.get("iat"), claims.get("exp")
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (iat, exp)) or exp <= iat:
        raise AssertionMalformed("iat and exp must be integers, exp after iat")
    if exp - iat > max_lifetime:
        raise AssertionLifetimeTooLong(f"exp - iat must be at most {max_lifetime} s")
    if now > exp + leeway:
        raise AssertionExpired()
    if iat > now + leeway:
        raise AssertionNotYetValid()
    for name in ("sub", "jti"):
        if not isinstance(claims.get(name), str) or not claims[name]:
            raise AssertionMalformed(f"{name} must be a non-empty string")


def main() -> int:
    """One job on stdin -> the claims, or ``{"error": code}`` and exit status 1."""
    job = json.load(sys.stdin)
    body = job.get("body")
    try:
        transaction = None
        if body is not None:
            transaction = transfer_from_body(body if isinstance(body, str) else json.dumps(body))
        claims = verify_assertion(job["token"], jwks=JwksCache(job["jwks_url"]), issuer=job["issuer"],
                                  audience=job["audience"], now=time.time(), transaction=transaction)
    except AssertionRefused as exc:
        print(json.dumps({"error": exc.code}))
        return 1
    print(json.dumps(claims))
    return 0


if __name__ == "__main__":
    sys.exit(main())
