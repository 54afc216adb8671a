"""The embedded Redis (append-only file in ``server.data_dir``) stops and starts
again: the customer's session, today's spend and an enrolled TOTP token are
still there, whether it was shut down cleanly or killed."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import psutil
import pyotp
import pytest

from gateway.app import build_services, close_services, create_app
from mobile_client import MobileClient, stepup
from tests.gateway.conftest import PASSWORD, GatewayHarness, make_config, publish_quiet_rules
from tests.gateway.stepup_flows import customer, sms_code, transfer

pytestmark = pytest.mark.slow


async def start_gateway(config) -> GatewayHarness:  # noqa: ANN001 - Config
    services = await build_services(config)
    assert services.redis_runtime.embedded
    if await services.risk.rule_store.active_version() is None:
        await publish_quiet_rules(services)  # the 20,000 transfer must not meet the night rules
    return GatewayHarness(config, services, create_app(config, services=services), [])


async def stop_gateway(gw: GatewayHarness, how: str) -> None:
    for client in gw.clients:
        await client.transport.close()
    if how == "killed":
        # Writes Redis acknowledged survive the kill; let the decision records land first.
        await asyncio.gather(*list(gw.services.background))
        process = psutil.Process(gw.services.redis_runtime._embedded.pid)  # noqa: SLF001
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    await close_services(gw.services)


def same_phone(gw: GatewayHarness, before: MobileClient) -> MobileClient:
    """The phone that talked to the previous gateway process: same key, same session."""
    phone = gw.client(device_key=before.device_key, device_id=before.device_id)
    phone.session_token, phone.cipher = before.session_token, before.cipher
    return phone


async def enrol_totp(gw: GatewayHarness, phone: MobileClient) -> tuple[str, str]:
    """Enrol a token (T2: password + SMS) over the API; returns (seed, credential id)."""
    challenge = (await stepup.enrol_begin(phone, "totp")).json()
    cid = challenge["challenge_id"]
    await stepup.begin_tool(phone, cid, "sms")
    await stepup.complete_tool(phone, cid, "sms", {"code": sms_code(gw)})
    await stepup.begin_tool(phone, cid, "pwd")
    approval = (await stepup.complete_tool(phone, cid, "pwd", {"password": PASSWORD})).json()
    options = (await stepup.enrol_begin(phone, "totp", approval=approval["approval_token"])).json()
    seed = pyotp.parse_uri(options["otpauth_uri"]).secret
    done = await stepup.enrol_complete(phone, "totp", {"enrolment_id": options["enrolment_id"],
                                                       "code": pyotp.TOTP(seed).now()})
    assert done.status == 201, done.body
    return seed, done.json()["credential"]["id"]


@pytest.mark.parametrize("how", ["shut_down", "killed"])
async def test_session_spend_and_token_survive_an_embedded_redis_restart(echo_upstream, tmp_path, how):
    _echo, url = echo_upstream
    config = make_config("", tmp_path / "gw", upstream={"url": url})  # no URL: embedded Redis
    gw = await start_gateway(config)
    phone = await customer(gw)
    seed, cred_id = await enrol_totp(gw, phone)
    assert (await transfer(phone, "500.00")).status == 200
    await stop_gateway(gw, how)

    gw = await start_gateway(config)  # same data directory, a new redis-server process
    try:
        phone = same_phone(gw, phone)
        assert (await phone.accounts()).status == 200  # session and device binding kept
        limits = (await phone.call("GET", "/auth/limits")).json()
        assert limits["spent"]["today"] == "500.00"
        listed = (await stepup.list_tools(phone)).json()
        assert [c["id"] for c in listed["tools"]["totp"]] == [cred_id]

        # The token still approves: its sealed secret was kept and still opens.
        cid = (await transfer(phone, "20000.00")).json()["challenge_id"]
        await stepup.begin_tool(phone, cid, "totp")
        code = pyotp.TOTP(seed).at(time.time() + 30)  # the enrolment used this step's code
        done = await stepup.complete_tool(phone, cid, "totp", {"code": code})
        assert done.status == 200 and done.json()["status"] == "approved", done.body
        paid = await transfer(phone, "20000.00", approval=done.json()["approval_token"])
        assert paid.status == 200, paid.body
    finally:
        await stop_gateway(gw, "shut_down")
