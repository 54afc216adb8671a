"""What an operator sees: Prometheus metrics, readiness, JSON log lines with the request id."""

from __future__ import annotations

import io
import logging
import time

import httpx
import orjson

from gateway.log_format import JsonFormatter
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from tests.gateway.stepup_flows import challenge_of

SOURCE = "6222020000000001"
PAYEE = "6217000000004321"


def _http(gw, client_ip: str = "127.0.0.1") -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=gw.app, client=(client_ip, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://gateway")


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample, 0 when it is absent."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def _customer(gw):
    client = await gw.enrolled("alice")
    await set_reserved_phone(gw.services, "alice", "+8613912345678", time.time())
    await gw.services.accounts.set("alice", {SOURCE: AccountClass.I})
    return client


async def _transfer(client, amount: str):
    body = {"from_account": SOURCE, "payee_account": PAYEE, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body,
                             headers={"Idempotency-Key": f"o-{time.monotonic_ns()}"})


async def test_decisions_step_ups_and_responses_are_counted(gateway_factory, echo_upstream):
    _, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    assert (await _transfer(client, "100.00")).status == 200
    challenged = await _transfer(client, "20000.00")
    assert challenged.status == 401
    challenge = challenge_of(challenged)
    base = f"/auth/challenges/{challenge['challenge_id']}/pwd"
    assert (await client.call("POST", f"{base}/begin", {})).status == 200
    wrong = await client.call("POST", f"{base}/complete", {"password": "not the password"})
    assert wrong.status == 401 and wrong.json()["error"] == "verification_failed"

    async with _http(gw) as http:
        resp = await http.get("/metrics")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/plain")
    text = resp.text
    assert _sample(text, "riskgate_decisions_total", outcome="allowed", level="low") >= 1
    assert _sample(text, "riskgate_decisions_total", outcome="step_up") >= 1
    assert _sample(text, "riskgate_stepups_total", tool="pwd", result="ok") == 0
    assert _sample(text, "riskgate_stepups_total", tool="pwd", result="verification_failed") == 1
    assert _sample(text, "riskgate_http_responses_total", status="401", kind="v1") >= 1
    assert _sample(text, "riskgate_http_responses_total", status="200", kind="v1") >= 1
    assert _sample(text, "riskgate_stage_seconds_count", stage="risk") >= 2
    assert _sample(text, "riskgate_risk_score_count") >= 2


async def test_limit_refusals_are_counted(gateway_factory, echo_upstream):
    _, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    # Password and SMS reach T2 at most: 2,000,000 is above every tier they reach.
    resp = await _transfer(client, "2000000.00")
    assert resp.status == 403 and resp.json()["error"] == "limit_exceeded"
    async with _http(gw) as http:
        text = (await http.get("/metrics")).text
    assert _sample(text, "riskgate_limit_rejections_total", action="transfer") == 1
    assert _sample(text, "riskgate_decisions_total", outcome="limit_exceeded") == 1


async def test_metrics_need_the_token_or_a_loopback_client(gateway_factory):
    open_gw = await gateway_factory()
    async with _http(open_gw, client_ip="203.0.113.7") as http:
        resp = await http.get("/metrics")
    assert resp.status_code == 403 and resp.json()["error"] == "metrics_loopback_only"

    gw = await gateway_factory(server={"metrics_token": "scrape-secret-0123456789"})
    async with _http(gw, client_ip="203.0.113.7") as http:
        anonymous = await http.get("/metrics")
        wrong = await http.get("/metrics", headers={"Authorization": "Bearer nope"})
        right = await http.get("/metrics",
                               headers={"Authorization": "Bearer scrape-secret-0123456789"})
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "metrics_token_required"
    assert wrong.status_code == 401
    assert right.status_code == 200 and "riskgate_http_responses_total" in right.text


async def test_readyz_names_an_unreachable_upstream(gateway_factory, echo_upstream):
    down = await gateway_factory()  # upstream 127.0.0.1:9, nothing listens
    async with _http(down) as http:
        resp = await http.get("/readyz")
    assert resp.status_code == 503
    assert resp.json() == {"status": "upstream_unavailable", "redis": True, "upstream": False}

    _, url = echo_upstream
    up = await gateway_factory(upstream={"url": url})
    async with _http(up) as http:
        resp = await http.get("/readyz")
    assert resp.status_code == 200 and resp.json()["status"] == "ready"


async def test_access_log_lines_are_json_with_the_request_id(gateway):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    access = logging.getLogger("riskgate.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        async with _http(gateway) as http:
            resp = await http.get("/healthz", headers={"X-Request-Id": "trace-0123456789"})
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert resp.headers["x-request-id"] == "trace-0123456789"
    line = orjson.loads(out.getvalue().strip().splitlines()[-1])
    assert line["request_id"] == "trace-0123456789"
    assert line["logger"] == "riskgate.access" and line["msg"].startswith("GET /healthz 200 ")
    assert line["ts"].endswith("Z") and line["level"] == "INFO"
