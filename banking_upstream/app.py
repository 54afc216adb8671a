"""The reference banking upstream as a Starlette app.

It trusts only the gateway: every ``/v1`` request carries ``X-Riskgate-Assertion``
(docs/assertion.md). Order of checks in a handler: assertion (signature and
claims) -> input -> transaction hash -> account ownership -> single use of
``jti`` together with the write, in one SQLite transaction.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from auth_tools.dynamic_linking import format_amount
from banking_upstream.assertion import (
    VerifiedAssertion,
    check_transaction,
    read_header,
    verify_assertion,
)
from banking_upstream.bodies import (
    parse_payee,
    parse_transfer,
    payee_transaction,
    transfer_transaction,
)
from banking_upstream.config import UpstreamConfig
from banking_upstream.errors import (
    AssertionMissing,
    AssertionRefused,
    AssertionSubjectMismatch,
    BadRequest,
    IdempotencyKeyMissing,
    IdempotencyKeyReused,
    InsufficientFunds,
    JwksUnavailable,
    LedgerIntegrityError,
    PayeeExists,
    PayloadTooLarge,
    SameAccount,
    UpstreamError,
)
from banking_upstream.jwks import JwksCache
from banking_upstream.ledger import Account, HistoryItem, Ledger, TransferReceipt

__all__ = ["create_upstream_app"]

log = logging.getLogger(__name__)

ASSERTION_HEADER = "x-riskgate-assertion"
MAX_BODY_BYTES = 64 * 1024
MAX_HISTORY_LIMIT = 100
_IDEMPOTENCY_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")

# One table from failure to HTTP status, looked up along the exception's MRO.
_STATUS: dict[type[UpstreamError], int] = {
    AssertionRefused: 401,
    JwksUnavailable: 503,
    BadRequest: 400,
    PayloadTooLarge: 413,
    IdempotencyKeyMissing: 400,
    IdempotencyKeyReused: 409,
    PayeeExists: 409,
    InsufficientFunds: 422,
    SameAccount: 422,
    LedgerIntegrityError: 500,
}


@dataclass(frozen=True, slots=True)
class _Services:
    config: UpstreamConfig
    ledger: Ledger
    jwks: JwksCache


def create_upstream_app(config: UpstreamConfig) -> Starlette:
    """The upstream ASGI app; the ledger and the JWKS client live for its lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        ledger = Ledger.open(config.db_path)
        connector = (aiohttp.TCPConnector(ssl=ssl.create_default_context(cafile=config.jwks_ca_file))
                     if config.jwks_ca_file else None)
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3.0, connect=1.0),
                                        connector=connector)
        app.state.services = _Services(
            config, ledger, JwksCache(session, config.jwks_url,
                                      min_refetch_interval=config.jwks_min_refetch_interval))
        try:
            yield
        finally:
            await session.close()
            ledger.close()

    routes = [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/v1/accounts", list_accounts, methods=["GET"]),
        Route("/v1/accounts/{account_id}/balance", account_balance, methods=["GET"]),
        Route("/v1/accounts/{account_id}/history", account_history, methods=["GET"]),
        Route("/v1/payees", list_payees, methods=["GET"]),
        Route("/v1/payees", add_payee, methods=["POST"]),
        Route("/v1/transfers", create_transfer, methods=["POST"]),
    ]
    handlers = {UpstreamError: _upstream_error, HTTPException: _http_error, Exception: _internal_error}
    return Starlette(routes=routes, lifespan=lifespan, exception_handlers=handlers)  # type: ignore[arg-type]


# -- handlers -------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return _json({"status": "ok"})


async def list_accounts(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    if not svc.ledger.customer_exists(claims.sub):
        raise AssertionSubjectMismatch("the assertion's subject is not a customer")
    _consume(svc, claims)
    return _json({"accounts": [_account_doc(a) for a in svc.ledger.accounts(claims.sub)]})


async def account_balance(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    account_id = request.path_params["account_id"]
    _require_owner(svc, claims, account_id)
    _consume(svc, claims)
    account = svc.ledger.account(account_id)
    assert account is not None  # ownership implies existence
    return _json(_account_doc(account))


async def account_history(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    account_id = request.path_params["account_id"]
    limit = _limit(request.query_params.get("limit", "20"))
    before = _decode_cursor(request.query_params.get("cursor"))
    _require_owner(svc, claims, account_id)
    _consume(svc, claims)
    page = svc.ledger.history(account_id, limit=limit, before=before)
    return _json({
        "account_id": account_id,
        "items": [_history_doc(item) for item in page.items],
        "next_cursor": _encode_cursor(page.next_before) if page.next_before is not None else None,
    })


async def list_payees(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    if not svc.ledger.customer_exists(claims.sub):
        raise AssertionSubjectMismatch("the assertion's subject is not a customer")
    _consume(svc, claims)
    payees = svc.ledger.payees(claims.sub)
    return _json({"payees": [{"payee_id": p.payee_id, "name": p.name, "account": p.account}
                             for p in payees]})


async def add_payee(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    payee = parse_payee(await _body(request))
    check_transaction(claims, payee_transaction(payee))
    added = svc.ledger.add_payee(claims.sub, payee.name, payee.account, time.time(),
                                 jti=claims.jti, keep_until=_keep_until(svc, claims))
    return _json({"payee_id": added.payee_id, "name": added.name, "account": added.account},
                 status=201)


async def create_transfer(request: Request) -> Response:
    svc = _services(request)
    claims = await _authenticate(request)
    key = request.headers.get("idempotency-key")
    if key is None:
        raise IdempotencyKeyMissing()
    if not _IDEMPOTENCY_KEY.match(key):
        raise BadRequest("idempotency_key_invalid", "Idempotency-Key must be 1-255 visible ASCII characters")
    transfer = parse_transfer(await _body(request))
    check_transaction(claims, transfer_transaction(transfer))
    _require_owner(svc, claims, transfer.from_account)
    receipt = svc.ledger.transfer(claims.sub, transfer, idempotency_key=key, now=time.time(),
                                  jti=claims.jti, keep_until=_keep_until(svc, claims),
                                  decision_id=claims.decision_id)
    headers = {"Idempotent-Replayed": "true"} if receipt.replayed else None
    return _json(_receipt_doc(receipt), status=201, headers=headers)


# -- assertion and request helpers ------------------------------------------------------


def _services(request: Request) -> _Services:
    return request.app.state.services


async def _authenticate(request: Request) -> VerifiedAssertion:
    svc = _services(request)
    token = request.headers.get(ASSERTION_HEADER)
    if not token:
        raise AssertionMissing()
    header = read_header(token)
    key = await svc.jwks.key_for(header.kid, time.monotonic())
    cfg = svc.config
    return verify_assertion(token, key=key, issuer=cfg.issuer, audience=cfg.audience,
                            now=time.time(), max_lifetime=cfg.max_assertion_lifetime,
                            leeway=cfg.leeway)


def _keep_until(svc: _Services, claims: VerifiedAssertion) -> float:
    # The jti must be remembered for as long as the assertion could still be accepted.
    return float(claims.exp + svc.config.leeway)


def _consume(svc: _Services, claims: VerifiedAssertion) -> None:
    svc.ledger.consume_jti(claims.jti, _keep_until(svc, claims), time.time())


def _require_owner(svc: _Services, claims: VerifiedAssertion, account_id: str) -> None:
    # An unknown account answers like someone else's: no probing which accounts exist.
    if not svc.ledger.owns(claims.sub, account_id):
        raise AssertionSubjectMismatch()


async def _body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY_BYTES):
        raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _limit(raw: str) -> int:
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_HISTORY_LIMIT:
        raise BadRequest("invalid_limit", f"limit must be an integer from 1 to {MAX_HISTORY_LIMIT}")
    return int(raw)


def _encode_cursor(entry_id: int) -> str:
    return base64.urlsafe_b64encode(f"e{entry_id}".encode()).rstrip(b"=").decode()


def _decode_cursor(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        text = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError) as exc:
        raise BadRequest("invalid_cursor", "cursor is not one this service returned") from exc
    if not text.startswith("e") or not text[1:].isdigit() or len(text) > 20:
        raise BadRequest("invalid_cursor", "cursor is not one this service returned")
    return int(text[1:])


# -- response documents -----------------------------------------------------------------


def _json(doc: object, *, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(doc), status_code=status, headers=headers,
                    media_type="application/json")


def _account_doc(account: Account) -> dict[str, str]:
    return {"account_id": account.account_id, "class": account.account_class.value,
            "currency": account.currency, "balance": format_amount(account.balance)}


def _history_doc(item: HistoryItem) -> dict[str, object]:
    return {"entry_id": item.entry_id, "transfer_id": item.transfer_id, "kind": item.kind,
            "direction": item.direction, "amount": format_amount(item.amount),
            "balance_after": format_amount(item.balance_after), "counterparty": item.counterparty,
            "memo": item.memo, "created_at": item.created_at}


def _receipt_doc(receipt: TransferReceipt) -> dict[str, str]:
    return {"transfer_id": receipt.transfer_id, "status": "completed",
            "from_account": receipt.from_account, "payee_account": receipt.payee_account,
            "amount": format_amount(receipt.amount), "currency": receipt.currency,
            "balance_after": format_amount(receipt.balance_after)}


# -- errors ---------------------------------------------------------------------------------


def _status_for(exc: UpstreamError) -> int:
    for cls in type(exc).__mro__:
        if cls in _STATUS:
            return _STATUS[cls]
    return 400


async def _upstream_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, UpstreamError)
    status = _status_for(exc)
    if status == 401:
        log.info("assertion refused: %s", exc.code)
    return _json({"error": exc.code, "message": exc.message}, status=status)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _json({"error": code, "message": str(exc.detail)}, status=exc.status_code,
                 headers=exc.headers)


async def _internal_error(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error in the upstream", exc_info=exc)
    return _json({"error": "internal_error", "message": "the upstream failed"}, status=500)
