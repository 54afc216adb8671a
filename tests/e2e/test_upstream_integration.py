"""The upstream integration examples (examples/upstream/) against a live gateway.

A real gateway on uvicorn forwards a phone's transfer to a capturing upstream;
the Python and the Node verifiers check that assertion against the gateway's
published JWKS URL, agree on the claims, and both refuse a changed amount, a
changed payee, the wrong audience, an altered signature, an expired token, an
unknown key and a foreign algorithm. The Python verifier refuses a replay.
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import json
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

from auth_tools.dynamic_linking import Transaction, txn_hash
from gateway.app import build_services, close_services, create_app
from gateway.assertion import AssertionClaims
from gateway.config import load_config
from gateway.servers import free_port, serving
from gateway.services import Services
from limits.account_classes import AccountClass
from mobile_client import AiohttpTransport, MobileClient
from risk_engine import Rule, RuleEffect, RuleMode, RuleSet

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "upstream"
PASSWORD = "a long enough password"
SOURCE, PAYEE = "6222020000000001", "6217000000004321"
ISSUER, AUDIENCE = "riskgate", "riskgate-upstream"


def _load_python_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_assertion_example", EXAMPLES / "verify_assertion.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[spec.name] = module  # type: ignore[union-attr]  # dataclasses look the module up
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


example = _load_python_example()


class CapturingUpstream:
    """Answers 200 to everything and keeps each request's headers and body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, object]] = []

    async def __call__(self, scope, receive, send) -> None:  # noqa: ANN001
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append({"headers": {k.decode(): v.decode() for k, v in scope["headers"]},
                              "body": body.decode()})
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": b'{"ok": true}'})


@dataclass
class LiveTransfer:
    services: Services
    jwks_url: str
    token: str
    body: str


@pytest.fixture
async def live_transfer(redis, redis_url: str, tmp_path: Path) -> AsyncIterator[LiveTransfer]:
    """A phone's 800.00 transfer through a gateway on 127.0.0.1, as the upstream received it."""
    upstream = CapturingUpstream()
    up_port, gw_port = free_port(), free_port()
    config = load_config(None, env={}, overrides={
        "redis": {"url": redis_url}, "server": {"data_dir": str(tmp_path / "gateway")},
        "upstream": {"url": f"http://127.0.0.1:{up_port}"}})
    services = await build_services(config)
    transport = AiohttpTransport()
    try:
        quiet = Rule("quiet", "false", RuleEffect.TAG, "no analyst rules", mode=RuleMode.SHADOW, tag="t")
        await services.risk.rule_store.publish(RuleSet((quiet,)), author="tests", reason="examples only",
                                               now=time.time())
        await services.users.create("alice", PASSWORD, time.time())
        await services.accounts.set("alice", {SOURCE: AccountClass.I})
        base = f"http://127.0.0.1:{gw_port}"
        async with serving(upstream, up_port), serving(create_app(config, services=services), gw_port):
            phone = MobileClient(base, transport)
            assert (await phone.register_device("alice", PASSWORD)).status == 201
            assert (await phone.login(PASSWORD)).status == 200
            sent = await phone.transfer(SOURCE, PAYEE, "800.00")
            assert sent.status == 200, sent.body
            forwarded = upstream.requests[-1]
            yield LiveTransfer(services, f"{base}/.well-known/jwks.json",
                               str(forwarded["headers"]["x-riskgate-assertion"]), str(forwarded["body"]))
    finally:
        await transport.close()
        await close_services(services)


@pytest.fixture(scope="module")
def node_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (CI installs the Debian packages nodejs and npm)")
    work = tmp_path_factory.mktemp("node-upstream")
    result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "jose@5"],
                            cwd=work, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.skip(f"npm could not install jose: {result.stderr.strip()[:300]}")
    shutil.copy(EXAMPLES / "verify_assertion.mjs", work / "verify_assertion.mjs")
    return work


async def _run(cmd: list[str], job: dict, cwd: Path | None = None) -> dict:
    """Run a verifier script on one job without blocking the loop serving the gateway."""
    proc = await asyncio.create_subprocess_exec(*cmd, cwd=cwd, stdin=subprocess.PIPE,
                                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(json.dumps(job).encode()), 60)
    doc = json.loads(out or b"null")
    assert isinstance(doc, dict), err.decode()
    assert (proc.returncode == 1) == ("error" in doc), (proc.returncode, doc, err.decode())
    return doc


async def _both(live: LiveTransfer, node_dir: Path, *, token: str | None = None, body: str | None = None,
                audience: str = AUDIENCE) -> tuple[dict, dict]:
    job = {"jwks_url": live.jwks_url, "token": live.token if token is None else token, "body": body or live.body,
           "issuer": ISSUER, "audience": audience}
    return (await _run([sys.executable, str(EXAMPLES / "verify_assertion.py")], job),
            await _run(["node", "verify_assertion.mjs"], job, cwd=node_dir))


def _with_body(body: str, **changes: str) -> str:
    return json.dumps(json.loads(body) | changes)


def _with_header(token: str, header: dict) -> str:
    encoded = base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode()
    return ".".join([encoded, *token.split(".")[1:]])


async def test_both_examples_verify_the_live_assertion_and_agree(live_transfer, node_example):
    python_claims, node_claims = await _both(live_transfer, node_example)
    assert python_claims == node_claims
    assert python_claims["sub"] == "alice" and python_claims["aud"] == AUDIENCE
    txn = python_claims["txn"]
    assert (txn["action"], txn["amount"], txn["payee"]) == ("transfer", "800.00", PAYEE)
    assert txn["hash"] == example.transfer_from_body(live_transfer.body).hash()


async def test_both_examples_refuse_each_tampering(live_transfer, node_example):
    live = live_transfer
    header = json.loads(base64.urlsafe_b64decode(live.token.split(".")[0] + "=="))
    head, payload, signature = live.token.split(".")
    altered = signature[:20] + ("A" if signature[20] != "A" else "B") + signature[21:]
    expired, _ = await live.services.signer.sign(AssertionClaims(
        sub="alice", sid="s", device_id="d", device_status="bound", acr="T1", amr=("pwd",), auth_time=0,
        decision_id="x", txn=Transaction("transfer", 800_00, "CNY", SOURCE, PAYEE)), time.time() - 600)
    cases = {
        "assertion_txn_mismatch": [{"body": _with_body(live.body, amount="800.01")},
                                   {"body": _with_body(live.body, payee_account="6217000000009999")}],
        "assertion_missing": [{"token": ""}],
        "assertion_wrong_audience": [{"audience": "another-service"}],
        "assertion_bad_signature": [{"token": f"{head}.{payload}.{altered}"}],
        "assertion_expired": [{"token": expired}],
        "assertion_unknown_key": [{"token": _with_header(live.token, header | {"kid": "no-such-key"})}],
        "assertion_algorithm_refused": [{"token": _with_header(live.token, header | {"alg": "HS256"})}],
        "assertion_malformed": [{"token": _with_header(live.token, header | {"jku": "http://evil"})}],
    }
    for code, variants in cases.items():
        for variant in variants:
            assert await _both(live, node_example, **variant) == ({"error": code}, {"error": code}), variant


async def test_python_example_refuses_a_replayed_jti(live_transfer):
    jwks = example.JwksCache(live_transfer.jwks_url)
    replay = example.MemoryJtiStore()

    def verify() -> dict:
        return example.verify_assertion(live_transfer.token, jwks=jwks, issuer=ISSUER, audience=AUDIENCE,
                                        now=time.time(), jti_store=replay,
                                        transaction=example.transfer_from_body(live_transfer.body))

    first = await asyncio.to_thread(verify)
    with pytest.raises(example.AssertionReplayed) as refused:
        await asyncio.to_thread(verify)
    assert refused.value.code == "assertion_replayed" and first["jti"]


async def test_python_example_rate_limits_refetches_for_unknown_kids(live_transfer):
    fetches: list[str] = []

    def counting_fetch(url: str, timeout: float) -> bytes:
        fetches.append(url)
        return example.fetch_url(url, timeout)

    jwks = example.JwksCache(live_transfer.jwks_url, min_refetch_interval=3600, fetch=counting_fetch)
    header = json.loads(base64.urlsafe_b64decode(live_transfer.token.split(".")[0] + "=="))
    await asyncio.to_thread(jwks.key_for, header["kid"])
    for i in range(5):
        with pytest.raises(example.AssertionUnknownKey):
            await asyncio.to_thread(jwks.key_for, f"sprayed-{i}")
    await asyncio.to_thread(jwks.key_for, header["kid"])  # the cached key still verifies
    assert len(fetches) == 1


def test_canonical_transaction_of_the_guide() -> None:
    """The worked example in docs/upstream-integration.md, byte for byte."""
    body = '{"from_account": "6222020000000001", "payee_account": "6217000000004321", "amount": "2500.5"}'
    txn = example.transfer_from_body(body)
    assert txn.canonical_bytes() == (b'{"action":"transfer","amount":"2500.50","currency":"CNY",'
                                     b'"from":"6222020000000001","payee":"6217000000004321"}')
    guide = (Path(__file__).resolve().parents[2] / "docs" / "upstream-integration.md").read_text()
    assert txn.hash() in guide
    assert txn_hash(Transaction("transfer", 2500_50, "CNY", SOURCE, PAYEE)) == txn.hash()  # the gateway's


async def test_python_example_follows_a_key_rotation(live_transfer):
    live = live_transfer
    jwks = example.JwksCache(live.jwks_url, min_refetch_interval=0)

    def verify(token: str) -> dict:
        return example.verify_assertion(token, jwks=jwks, issuer=ISSUER, audience=AUDIENCE, now=time.time())

    old = await asyncio.to_thread(verify, live.token)
    new_kid, previous = await live.services.keys.rotate(time.time())
    fresh, _ = await live.services.signer.sign(AssertionClaims(
        sub="alice", sid="s", device_id="d", device_status="bound", acr="T1", amr=("pwd",), auth_time=0,
        decision_id="x"), time.time())
    assert json.loads(base64.urlsafe_b64decode(fresh.split(".")[0] + "=="))["kid"] == new_kid != previous
    assert (await asyncio.to_thread(verify, fresh))["sub"] == "alice"  # unknown kid: refetched
    assert (await asyncio.to_thread(verify, live.token))["jti"] == old["jti"]  # the old key still published
