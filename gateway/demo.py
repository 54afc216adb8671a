"""``riskgate demo``: everything on 127.0.0.1 and the reference client's journey.

Starts the embedded Redis, the reference upstream and the gateway in one
process, seeds the demo customers, walks the client through the journey and
prints a transcript. With ``once`` it exits (0 when every step behaved as
expected); otherwise it keeps serving until Ctrl-C.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import ssl
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import orjson

from gateway.app import create_app
from gateway.config import Config, load_config
from gateway.demo_devices import device_change_chapter
from gateway.demo_stepup import Wallet, stepup_chapter
from gateway.demo_tls import make_demo_pki
from gateway.servers import pick_port, serving
from gateway.tls_serving import uvicorn_tls_options
from mobile_client import AiohttpTransport, ApiResponse, MobileClient

__all__ = ["DEMO_PASSWORD", "DemoStack", "run_demo"]

DEMO_USER = "alice"
DEMO_PASSWORD = "correct horse battery staple"
ALICE_MAIN = "6222020000000001"
BOB_ACCOUNT = "6222020000000003"
DEMO_CUSTOMERS = {"alice": DEMO_PASSWORD, "bob": "bob's long password", "carol": "carol's long password"}
CUSTOMER_SINCE = 400 * 86_400.0
# Reserved phone numbers for SMS codes (the demo's SMS sender only prints them).
DEMO_PHONES = {"alice": "+8613800000001", "bob": "+8613800000003", "carol": "+8613800000004"}


class AssertionTap:
    """Demo only: remembers the assertion the upstream received per request id,
    so the transcript can show its claims. It sits in front of the upstream app
    and changes nothing."""

    def __init__(self, app: object) -> None:
        self.app = app
        self.seen: dict[str, dict[str, object]] = {}

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "http":
            headers = dict(scope["headers"])
            token = headers.get(b"x-riskgate-assertion")
            rid = headers.get(b"x-request-id", b"").decode()
            if token and rid:
                payload = token.split(b".")[1]
                self.seen[rid] = orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        await self.app(scope, receive, send)  # type: ignore[operator]


@dataclass
class DemoStack:
    """The running demo: URLs, the gateway's services and the upstream tap."""

    gateway_url: str
    upstream_url: str
    config: Config
    app: object
    tap: AssertionTap
    data_dir: Path
    _stack: contextlib.AsyncExitStack = field(repr=False, default_factory=contextlib.AsyncExitStack)
    admin_token: str = field(repr=False, default="")
    # With --tls: the client context that trusts the demo's own CA.
    client_ssl: ssl.SSLContext | None = field(repr=False, default=None)

    def transport(self) -> AiohttpTransport:
        return AiohttpTransport(ssl=self.client_ssl)

    async def admin_call(self, method: str, path: str, json: object = None) -> ApiResponse:
        """Call the admin API (the bank's back office) with the demo's admin token."""
        transport = self.transport()
        try:
            body = orjson.dumps(json) if json is not None else b""
            return await transport.send(method, f"{self.gateway_url}{path}", {
                "Authorization": f"Bearer {self.admin_token}", "Content-Type": "application/json",
                "X-Request-Id": secrets.token_hex(8)}, body)
        finally:
            await transport.close()

    @property
    def services(self):  # noqa: ANN201
        return self.app.state.services  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self._stack.aclose()


async def start_stack(*, gateway_port: int = 8080, upstream_port: int = 8081,
                      data_dir: Path | None = None,
                      overrides: dict[str, dict[str, object]] | None = None,
                      customers: dict[str, str] | None = None, tls: bool = False) -> DemoStack:
    """Start Redis, upstream and gateway on 127.0.0.1 and seed the demo customers.

    With ``tls`` the gateway serves HTTPS with a certificate from a CA made for
    this run (``gateway.demo_tls``); the demo's client and upstream trust that CA.
    """
    from banking_upstream import DEMO_CUSTOMERS as UPSTREAM_CUSTOMERS
    from banking_upstream import Ledger, UpstreamConfig, create_upstream_app, seed_demo
    from gateway.demo_history import seed_history
    from gateway.stepup_sms import set_reserved_phone
    from limits.account_classes import AccountClass

    stack = contextlib.AsyncExitStack()
    try:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="riskgate-demo-")))
        gport, uport = pick_port(gateway_port), pick_port(upstream_port)
        if uport == gport:
            uport = pick_port(0)
        scheme = "https" if tls else "http"
        gateway_url, upstream_url = f"{scheme}://127.0.0.1:{gport}", f"http://127.0.0.1:{uport}"
        pki = make_demo_pki(data_dir / "pki") if tls else None
        # The demo's back office: RISKGATE_ADMIN_TOKEN when set (to use the admin API
        # against a running demo), else a random token for this run.
        admin_token = os.environ.get("RISKGATE_ADMIN_TOKEN") or secrets.token_urlsafe(24)
        merged: dict[str, dict[str, object]] = {
            "server": {"port": gport, "data_dir": str(data_dir / "gateway")},
            "upstream": {"url": upstream_url},
            "admin": {"token": admin_token},
            "stepup": {"rp_id": "localhost", "origins": f"{scheme}://localhost:{gport}"},
        }
        if pki is not None:
            merged["tls"] = {"cert_file": str(pki.cert_file), "key_file": str(pki.key_file)}
        for section, values in (overrides or {}).items():
            merged.setdefault(section, {}).update(values)
        config = load_config(None, env={}, overrides=merged)
        app = create_app(config)
        await stack.enter_async_context(serving(app, gport, **uvicorn_tls_options(config.tls)))

        ledger_path = data_dir / "upstream" / "ledger.sqlite3"
        ledger_path.parent.mkdir(parents=True, exist_ok=True)
        ledger = Ledger.open(str(ledger_path))
        seed_demo(ledger)
        ledger.close()
        up_config = UpstreamConfig(db_path=str(ledger_path), jwks_url=f"{gateway_url}/.well-known/jwks.json",
                                   issuer=config.assertion.issuer, audience=config.upstream.audience,
                                   jwks_ca_file=str(pki.ca_file) if pki is not None else "")
        tap = AssertionTap(create_upstream_app(up_config))
        await stack.enter_async_context(serving(tap, uport))

        svc = app.state.services
        now = time.time()
        for user_id, password in (customers or DEMO_CUSTOMERS).items():
            if not await svc.users.exists(user_id):
                # Customers of long standing: their accounts were opened a year ago.
                await svc.users.create(user_id, password, now - CUSTOMER_SINCE)
            accounts, _payees = UPSTREAM_CUSTOMERS.get(user_id, ([], []))
            await svc.accounts.set(user_id, {a: AccountClass(c) for a, c, _ in accounts})
            if user_id in DEMO_PHONES:
                await set_reserved_phone(svc, user_id, DEMO_PHONES[user_id], now)
            if payees := [account for _name, account in _payees]:
                await seed_history(svc.risk.history, user_id, payees, now)
        return DemoStack(gateway_url, upstream_url, config, app, tap, data_dir, stack,
                         admin_token=config.admin.token,
                         client_ssl=pki.client_context() if pki is not None else None)
    except BaseException:
        await stack.aclose()
        raise


@dataclass
class _Step:
    title: str
    ok: bool


class Transcript:
    def __init__(self, out: TextIO, tap: AssertionTap) -> None:
        self.out = out
        self.tap = tap
        self.steps: list[_Step] = []

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def step(self, title: str, resp: ApiResponse, expect: Callable[[ApiResponse], bool]) -> ApiResponse:
        ok = expect(resp)
        self.steps.append(_Step(title, ok))
        n = len(self.steps)
        verdict = "allowed" if resp.status < 300 else f"refused: {resp.error or resp.status}"
        mark = "ok" if ok else "UNEXPECTED"
        self.say(f"{n:>2}. {title}")
        self.say(f"    -> HTTP {resp.status} {verdict}  ({resp.elapsed_ms:.1f} ms)  [{mark}]")
        doc = resp.json() if resp.body and resp.headers.get("content-type", "").startswith("application/json") else None
        if isinstance(doc, dict) and resp.status < 300:
            shown = {k: v for k, v in doc.items() if k not in ("session_token",)}
            if "session_token" in doc:
                shown["session_token"] = str(doc["session_token"])[:12] + "... (opaque, 256 bits)"
            self.say(f"    body: {orjson.dumps(shown).decode()[:200]}")
        elif isinstance(doc, dict):
            self.say(f"    message: {doc.get('message')}")
        claims = self.tap.seen.get(resp.headers.get("x-request-id", ""))
        if claims:
            keys = ("sub", "acr", "amr", "dev", "txn", "exp", "jti")
            summary = {k: claims[k] for k in keys if k in claims}
            if "exp" in summary:
                summary["exp"] = f"iat+{int(claims['exp']) - int(claims['iat'])}s"
            self.say(f"    assertion: {orjson.dumps(summary).decode()}")
        return resp

    @property
    def all_ok(self) -> bool:
        return all(s.ok for s in self.steps)


def port_of(stack: DemoStack) -> int:
    return int(stack.gateway_url.rsplit(":", 1)[1])


async def journey(stack: DemoStack, out: TextIO) -> bool:
    """The reference client's walk through the gateway; True when all went as expected."""
    t = Transcript(out, stack.tap)
    transport = stack.transport()
    try:
        phone = MobileClient(stack.gateway_url, transport)
        t.say(f"riskgate demo: gateway {stack.gateway_url}, upstream {stack.upstream_url}")
        t.say(f"state: {stack.services.redis_runtime.description}")
        if stack.client_ssl is not None:
            t.say(f"TLS: the gateway serves HTTPS with a certificate from a CA made for this run "
                  f"({stack.data_dir / 'pki' / 'demo-ca.pem'}); the client trusts only that CA")
        t.say("")
        t.step(f"register this phone's P-256 device key for {DEMO_USER} (password + proof of possession)",
               await phone.register_device(DEMO_USER, DEMO_PASSWORD), lambda r: r.status == 201)
        t.step("log in from the registered device", await phone.login(DEMO_PASSWORD),
               lambda r: r.status == 200)
        t.step(f"balance of {ALICE_MAIN} (view: session on a bound device, T0)",
               await phone.balance(ALICE_MAIN), lambda r: r.status == 200)
        small = await phone.transfer(ALICE_MAIN, BOB_ACCOUNT, "500.00")
        t.step("transfer 500.00 CNY to Bob (password entered in the last 5 minutes, T1)", small,
               lambda r: r.status == 201)
        t.step("transfer 20,000.00 CNY to Bob (above the T1 limit)",
               await phone.transfer(ALICE_MAIN, BOB_ACCOUNT, "20000.00"),
               lambda r: r.status == 401 and r.error == "insufficient_user_authentication")
        t.step("replay the exact signed 500.00 CNY request (same nonce and signature)",
               await phone.send(small.request),
               lambda r: r.status == 401 and r.error == "device_nonce_replayed")
        direct = await transport.send("GET", f"{stack.upstream_url}/v1/accounts/{ALICE_MAIN}/balance",
                                      {"X-Request-Id": secrets.token_hex(8)}, b"")
        t.step("call the upstream directly, bypassing the gateway (no assertion)", direct,
               lambda r: r.status == 401 and r.error == "assertion_missing")
        await stepup_chapter(t, stack, phone, Wallet(DEMO_PASSWORD, f"{stack.gateway_url.split(':')[0]}://localhost:{port_of(stack)}"),
                             source=ALICE_MAIN, payee=BOB_ACCOUNT, user_id=DEMO_USER)
        phone = await device_change_chapter(t, stack.services, phone, password=DEMO_PASSWORD,
                                            user_id=DEMO_USER, source=ALICE_MAIN, payee=BOB_ACCOUNT)
        t.say("")
        t.step(f"balance of {ALICE_MAIN} after the journey", await phone.balance(ALICE_MAIN),
               lambda r: r.status == 200)
        t.say("")
        t.say("journey complete: every step behaved as expected" if t.all_ok
              else "journey FAILED: see the UNEXPECTED steps above")
        return t.all_ok
    finally:
        await transport.close()


async def run_demo(*, once: bool, gateway_port: int = 8080, upstream_port: int = 8081,
                   data_dir: Path | None = None, out: TextIO = sys.stdout, tls: bool = False) -> int:
    stack = await start_stack(gateway_port=gateway_port, upstream_port=upstream_port, data_dir=data_dir,
                              tls=tls)
    try:
        ok = await journey(stack, out)
        if once:
            return 0 if ok else 1
        print("", file=out)
        print(f"gateway:  {stack.gateway_url}  (JWKS at {stack.gateway_url}/.well-known/jwks.json)", file=out)
        print(f"upstream: {stack.upstream_url}  (refuses anything without a gateway assertion)", file=out)
        print(f"demo login: user {DEMO_USER!r}, password {DEMO_PASSWORD!r}", file=out)
        print("serving until Ctrl-C", file=out, flush=True)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.Event().wait()
        return 0 if ok else 1
    finally:
        await stack.close()
