"""The request path for proxied calls (``/v1/...``), as one pure ASGI app.

device signature -> session -> route policy -> required tier (limits) -> step-up
gate (approval or challenge) -> spend reservation -> assertion -> forward ->
commit or release the reservation.
Each step either passes a value to the next or raises a typed error that
:mod:`gateway.asgi_edge` turns into a JSON response.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable

from device_fingerprint.registry import Device, user_of_device
from gateway.assertion import AssertionClaims
from gateway.decision import decide, finish
from gateway.device_check import SignedRequest
from gateway.errors import GatewayError, NotFound, Unauthorized, UpstreamUnavailable
from gateway.first_read import FirstReader
from gateway.proxy import HOP_BY_HOP, STRIPPED_REQUEST, UpstreamResponse
from gateway.services import Services
from gateway.switches import MOBILE
from gateway.switches_store import ops_settings
from limits import Reservation, ReservationCommitted, ReservationReleased, ReservationState
from risk_engine import Outcome

__all__ = ["ProxyPipeline"]


def _bearer(headers: dict[bytes, bytes]) -> str:
    raw = headers.get(b"authorization", b"")
    scheme, _, token = raw.decode("latin-1").partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("session_required", "this call needs a session (Authorization: Bearer)")
    return token.strip()


class ProxyPipeline:
    def __init__(self, services: Callable[[], Services], clock: Callable[[], float] = time.time) -> None:
        self._services = services
        self._clock = clock
        self._first_read = FirstReader()

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001 - ASGI
        svc = self._services()
        now = self._clock()
        method: str = scope["method"]
        path: str = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        body: bytes = scope["riskgate.body"]
        headers: dict[bytes, bytes] = scope["riskgate.headers"]

        matched = svc.policy.match(method, path)
        if matched is None:
            raise NotFound("route_not_found", f"{method} {path} is not a gateway route")
        # Operations switches: a stopped service or channel is refused before anything is read.
        ops = await ops_settings(svc, now)
        ops.check_channel(MOBILE, now)
        ops.check_action(matched.route.action.value, now)
        txn = matched.route.transaction(body)

        # 2-3: device, session, the nonce claim, the risk history and for a money movement
        # the limits, spend and tools, in one round trip (gateway.first_read). Everything is
        # read before the signature is checked, and the only write is the nonce claim: a
        # request that fails the check burns its own nonce, nothing else. The session's
        # idle timer moves only once the request verified.
        req = SignedRequest(method, path, query, body, headers)
        token = _bearer(headers)
        session_key = svc.sessions.key_for(token)
        moves_money = txn is not None and matched.route.action.moves_money
        first = await self._first_read(
            svc, device_id=req.device_id, user=user_of_device(req.device_id), session_key=session_key,
            nonce_key=svc.device_check.nonce_key(req), payee=txn.payee if txn is not None else "",
            moves_money=moves_money, now=now)
        device = Device.from_hash(req.device_id, first.device)
        svc.device_check.verify(device, req, now)
        svc.device_check.nonce_claimed(first.claimed)
        ops.check_device(device, now)  # the mobile.<os> channel
        session = svc.sessions.parse(session_key, first.session, device_id=device.device_id, now=now)
        svc.decision_writer.touch(session_key, svc.sessions.idle_ttl(session, now))

        # 5-7: risk, required tier, step-up gate, spend reservation.
        decision_id = secrets.token_hex(12)
        client = scope.get("client")
        d = await decide(svc, matched=matched, txn=txn, session=session, device=device,
                         headers=headers, client_ip=client[0] if client else "", now=now,
                         decision_id=decision_id, user_rows=first.user_rows, history=first.history,
                         money_rows=first.money_rows)
        assert d.reached is not None
        token_str, claims = await svc.signer.sign(AssertionClaims(
            sub=session.user_id, sid=session.sid, device_id=device.device_id,
            device_status=(d.device or device).status.value, acr=f"T{d.reached.tier}", amr=d.reached.amr,
            auth_time=int(session.auth_time), decision_id=decision_id, txn=txn, limit=d.limit_claim,
            risk=d.risk.claims(),
        ), now)
        try:
            resp = await self._upstream(svc, scope, headers, body, token_str)
        except BaseException as exc:
            svc.metrics.upstream_errors.labels(getattr(exc, "code", type(exc).__name__)).inc()
            if d.reservation is not None:
                await _settle(svc, d.reservation, ok=False, now=self._clock())
            finish(svc, d, Outcome.UPSTREAM_ERROR, now=now, assertion=claims,
                   upstream={"error": getattr(exc, "code", type(exc).__name__)})
            if isinstance(exc, GatewayError):  # the client can quote the decision to support
                exc.headers.setdefault("x-riskgate-decision", decision_id)
            raise
        ok, failed = 200 <= resp.status < 300, resp.status >= 500
        if failed:
            svc.metrics.upstream_errors.labels(f"status_{resp.status}").inc()
        if d.reservation is not None:
            await _settle(svc, d.reservation, ok=ok, now=self._clock())
        finish(svc, d, Outcome.ALLOWED if ok else Outcome.UPSTREAM_ERROR, now=now, completed=ok,
               assertion=claims, upstream={"status": resp.status})
        if failed:
            raise _upstream_failed(resp, decision_id)
        resp_headers = list(resp.headers)
        resp_headers.append((b"content-length", str(len(resp.body)).encode()))
        resp_headers.append((b"x-riskgate-decision", decision_id.encode()))
        await send({"type": "http.response.start", "status": resp.status, "headers": resp_headers})
        await send({"type": "http.response.body", "body": resp.body})

    async def _upstream(self, svc: Services, scope, headers: dict[bytes, bytes],  # noqa: ANN001
                        body: bytes, assertion: str):  # noqa: ANN202 - proxy.UpstreamResponse
        out: list[tuple[str, str]] = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k not in HOP_BY_HOP and k not in STRIPPED_REQUEST
        ]
        client = scope.get("client")
        request_id: str = scope["riskgate.request_id"]
        out += [
            ("X-Forwarded-For", client[0] if client else "unknown"),
            ("X-Forwarded-Proto", scope.get("scheme", "http")),
            ("X-Request-Id", request_id),
            ("X-Riskgate-Assertion", assertion),
        ]
        qs = scope.get("query_string", b"")
        path_qs = scope["path"] + ("?" + qs.decode("latin-1") if qs else "")
        return await svc.upstream.forward(scope["method"], path_qs, out, body)


def _upstream_failed(resp: UpstreamResponse, decision_id: str) -> UpstreamUnavailable:
    """A 5xx from the upstream reaches the client as 502 ``upstream_error``: its
    body is the bank's internals, not the client's business. A ``Retry-After``
    it sent is kept."""
    headers = {"x-riskgate-decision": decision_id}
    for name, value in resp.headers:
        if name == b"retry-after":
            headers["retry-after"] = value.decode("latin-1")
    return UpstreamUnavailable("upstream_error", "the banking service failed to handle the request",
                               headers=headers)


async def _settle(svc: Services, reservation: Reservation, *, ok: bool, now: float) -> None:
    """Commit the spend when the upstream did the transfer, else give it back.

    A retry under the same idempotency key finds its first reservation; if
    that one is already settled, there is nothing left to do.
    """
    if reservation.state is not ReservationState.RESERVED:
        return
    try:
        if ok:
            await svc.reservations.commit(reservation.user_id, reservation.idempotency_key, now=now)
        else:
            await svc.reservations.release(reservation.user_id, reservation.idempotency_key, now=now)
    except (ReservationCommitted, ReservationReleased):
        pass
