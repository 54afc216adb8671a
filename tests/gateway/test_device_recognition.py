"""Device recognition through the gateway's HTTP API: re-install vs new phone,
new-device step-up and binding, cool-off, the tier cap of a tampered runtime,
the maximum device count and unbinding.
"""

from __future__ import annotations

import time

import pytest

from device_fingerprint.registry import device_key
from mobile_client.client import reference_attributes
from risk_engine import read_decisions
from tests.gateway.device_flows import (
    PASSWORD,
    PHONE,
    approve_pwd_sms,
    approve_sms_armor,
    client_at,
    first_device,
    new_bound_device,
    settle_background,
    transfer,
)
from tests.gateway.stepup_flows import hold_hardware_key


@pytest.fixture
async def gw(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    return await gateway_factory(upstream={"url": url})


async def test_reinstalled_app_is_known_and_another_phone_is_new(gw):
    phone, first = await first_device(gw)
    assert first.json()["recognition"] == "first" and first.json()["status"] == "bound"

    again = phone.reinstalled()  # same phone: new key and install id, same hardware and SIM
    reinstall = (await again.register_device("alice", PASSWORD)).json()
    assert reinstall["recognition"] == "known_reinstalled" and reinstall["status"] == "pending"
    assert reinstall["replaces"] == phone.device_id and reinstall["similarity"] >= 0.85

    same_model_other_sim = client_at(gw)  # the same model bought twice is still another phone
    other = (await same_model_other_sim.register_device("alice", PASSWORD)).json()
    assert other["recognition"] == "new" and other["similarity"] < 0.85

    different = client_at(gw, attributes=reference_attributes(model="HUAWEI ALN-AL00", screen="1260x2720"))
    other = (await different.register_device("alice", PASSWORD)).json()
    assert (other["recognition"], other["similarity"]) == ("new", 0.0)


async def test_new_device_login_needs_step_up_then_binds_with_notice(gw):
    phone, _ = await first_device(gw)
    new = client_at(gw)
    assert (await new.register_device("alice", PASSWORD)).json()["step_up_required"] is True
    login = await new.login(PASSWORD)
    assert login.status == 200 and login.json()["device_status"] == "pending"
    binding = login.json()["binding"]
    assert binding["required_tier"] == "T2" and binding["transaction"]["action"] == "bind_device"

    # Until the step-up passes the session reaches nothing: not the bank, not the user's settings.
    refused = await new.accounts()
    assert (refused.status, refused.error) == (401, "insufficient_user_authentication")
    assert refused.json()["transaction"]["action"] == "bind_device"
    assert (await new.call("GET", "/auth/tools")).error == "device_not_bound"
    assert (await new.devices()).error == "device_not_bound"
    assert (await new.bind_device()).error == "insufficient_user_authentication"

    token = await approve_pwd_sms(gw, new, binding["challenge_id"])
    bound = await new.bind_device(token)
    assert bound.status == 200 and bound.json()["status"] == "bound"
    assert bound.json()["cool_off_until"] == pytest.approx(time.time() + 86_400, abs=60)
    assert (await new.accounts()).status == 200

    notice = gw.services.sms_sender.last_text(PHONE)
    assert "new device" in notice and "riskgate reference r1" in notice
    await settle_background(gw)
    events = [e for _, e in await read_decisions(gw.services.redis, count=50)
              if e.action == "bind_device"]
    assert [e.outcome for e in events][-1] == "allowed" and events[-1].user_id == "alice"

    listed = (await phone.devices()).json()
    assert sorted(d["status"] for d in listed["devices"]) == ["bound", "bound"]
    assert [e["kind"] for e in listed["history"]][:2] == ["bind", "bind"]


async def test_any_v1_call_with_the_binding_approval_binds_the_device(gw):
    await first_device(gw)
    new = client_at(gw)
    await new.register_device("alice", PASSWORD)
    await new.login(PASSWORD)
    challenge = (await new.accounts()).json()
    token = await approve_pwd_sms(gw, new, challenge["challenge_id"])
    resp = await new.call("GET", "/v1/accounts", headers={"X-Approval-Token": token})
    assert resp.status == 200
    assert (await new.devices()).status == 200  # bound now


async def test_binding_approval_cannot_bind_another_pending_device(gw):
    await first_device(gw)
    a, b = client_at(gw), client_at(gw)
    for phone in (a, b):
        await phone.register_device("alice", PASSWORD)
    login_a = await a.login(PASSWORD)
    await b.login(PASSWORD)
    token = await approve_pwd_sms(gw, a, login_a.json()["binding"]["challenge_id"])
    stolen = await b.bind_device(token)
    assert (stolen.status, stolen.error) == (401, "approval_invalid")


async def test_reinstall_replaces_the_old_record(gw):
    phone, _ = await first_device(gw)
    again = phone.reinstalled()
    await again.register_device("alice", PASSWORD)
    login = await again.login(PASSWORD)
    token = await approve_pwd_sms(gw, again, login.json()["binding"]["challenge_id"])
    assert (await again.bind_device(token)).status == 200
    gone = await phone.accounts()
    assert (gone.status, gone.error) == (401, "device_revoked")
    devices = (await again.devices()).json()["devices"]
    assert [d["device_id"] for d in devices] == [again.device_id]


async def test_new_device_cool_off_holds_for_24_hours(gw):
    phone, _ = await first_device(gw)
    new = await new_bound_device(gw)
    # The enrolment device has no cool-off: 6,000 CNY needs T3, a challenge.
    assert (await transfer(phone, "6000.00")).error == "insufficient_user_authentication"
    refused = await transfer(new, "6000.00")
    assert (refused.status, refused.error) == (403, "limit_exceeded")
    assert refused.json()["cap"] == "device_cooloff" and refused.json()["limit"] == "5000.00"
    # 24 hours later the registry holds the same bind time, a day older.
    await gw.services.redis.hset(device_key(new.device_id), "bound_at", repr(time.time() - 86_401))
    challenge = await transfer(new, "6000.00")
    assert challenge.json()["required_tier"] == "T3"
    token = await approve_sms_armor(gw, new, challenge.json()["challenge_id"])
    assert (await transfer(new, "6000.00", approval=token)).status == 200


async def test_emulator_cannot_reach_t4_even_when_it_stops_saying_so(gw):
    phone, first = await first_device(gw, signals={"emulator": True})
    assert first.json()["max_tier"] == "T3" and first.json()["signals"] == ["emulator"]
    await hold_hardware_key(gw)  # the customer's tools reach T5; this device may not
    capped = await transfer(phone, "60000.00")  # T4 amount
    assert (capped.status, capped.error) == (403, "device_tier_capped")
    assert capped.json()["max_tier"] == "T3" and capped.json()["required_tier"] == "T4"
    # T3 is still reachable.
    challenge = await transfer(phone, "20000.00")
    token = await approve_sms_armor(gw, phone, challenge.json()["challenge_id"])
    assert (await transfer(phone, "20000.00", approval=token)).status == 200
    # A tampered app can stop reporting; the cap stays with the device.
    phone.signals = {}
    assert (await phone.login(PASSWORD)).json()["max_tier"] == "T3"
    assert (await transfer(phone, "60000.00")).error == "device_tier_capped"


async def test_repackaged_app_is_capped_by_its_signature(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    genuine = reference_attributes()["app_signature_hash"]
    gw = await gateway_factory(upstream={"url": url}, device={"expected_app_signatures": genuine})
    _phone, first = await first_device(gw, attributes=reference_attributes(app_signature_hash="ab" * 32))
    assert first.json()["signals"] == ["signature_mismatch"] and first.json()["max_tier"] == "T3"
    _ok, clean = await first_device(gw, user_id="bob")
    assert clean.json()["max_tier"] == "T5"


async def test_maximum_device_count_is_enforced(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, device={"max_devices": 2})
    phone, _ = await first_device(gw)
    await new_bound_device(gw)
    third = await client_at(gw).register_device("alice", PASSWORD)
    assert (third.status, third.error) == (409, "device_limit_reached")
    # Re-installing a bound phone replaces it, so it does not count.
    again = await phone.reinstalled().register_device("alice", PASSWORD)
    assert again.status == 201 and again.json()["recognition"] == "known_reinstalled"


async def test_unbinding_needs_step_up_over_that_device(gw):
    phone, _ = await first_device(gw)
    second = await new_bound_device(gw)
    third = await new_bound_device(gw)
    first_try = await phone.unbind_device(second.device_id)
    assert (first_try.status, first_try.error) == (401, "insufficient_user_authentication")
    assert first_try.json()["transaction"]["action"] == "unbind_device"
    token = await approve_pwd_sms(gw, phone, first_try.json()["challenge_id"])
    # The approval names the second phone: it cannot remove the third.
    wrong = await phone.unbind_device(third.device_id, token)
    assert (wrong.status, wrong.error) == (401, "approval_mismatch")
    again = await phone.unbind_device(second.device_id)
    token = await approve_pwd_sms(gw, phone, again.json()["challenge_id"])
    done = await phone.unbind_device(second.device_id, token)
    assert done.status == 200 and done.json()["status"] == "unbound"
    assert (await second.accounts()).error == "device_revoked"
    assert (await phone.unbind_device("alice.AAAAAAAAAAAAAAAAAAAAAA")).error == "device_not_found"


async def test_malformed_attributes_and_signals_are_refused(gw):
    await first_device(gw)
    typo = client_at(gw, attributes={**reference_attributes(), "modle": "x"})
    resp = await typo.register_device("alice", PASSWORD)
    assert (resp.status, resp.error) == (400, "device_attribute_unknown")
    lying = client_at(gw, signals={"rooted": "no"})
    resp = await lying.register_device("alice", PASSWORD)
    assert (resp.status, resp.error) == (400, "device_signals_invalid")


async def test_demo_chapter_shows_the_device_change_and_its_step_up(gw):
    import io
    from types import SimpleNamespace

    from gateway.demo import Transcript
    from gateway.demo_devices import device_change_chapter
    from tests.gateway.device_flows import PAYEE, SOURCE

    phone, _ = await first_device(gw)
    out = io.StringIO()
    t = Transcript(out, SimpleNamespace(seen={}))
    await device_change_chapter(t, gw.services, phone, password=PASSWORD, user_id="alice",
                                source=SOURCE, payee=PAYEE)
    assert all(step.ok for step in t.steps), out.getvalue()
    assert "was bound to your account" in out.getvalue()


async def test_with_a_face_provider_a_new_phone_binds_with_sms_and_face(gateway_factory, echo_upstream):
    """The default device-change step-up is SMS to the reserved phone + face once a
    face provider is configured: password + SMS no longer binds."""
    from auth_tools.face_test_provider import TestFaceProvider
    from tests.gateway.device_flows import run_tool, sms_code

    provider = TestFaceProvider("https://face-test-provider.invalid")
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url}, stepup={
        "face_provider_key": provider.public_jwk_json(), "face_issuer": provider.issuer})
    await first_device(gw)
    new = client_at(gw)
    assert (await new.register_device("alice", PASSWORD)).json()["status"] == "pending"
    await new.login(PASSWORD)
    refused = await new.accounts()
    assert (refused.status, refused.error) == (401, "insufficient_user_authentication")
    challenge = refused.json()
    assert challenge["acceptable"] == [["sms", "face"]]
    cid = challenge["challenge_id"]

    pwd = await run_tool(new, cid, "pwd", lambda: {"password": PASSWORD})
    assert pwd.json()["status"] == "pending"
    sms = await run_tool(new, cid, "sms", lambda: {"code": sms_code(gw)})
    assert sms.json()["status"] == "pending"  # password + SMS is not the combination
    begun = await new.call("POST", f"/auth/challenges/{cid}/face/begin", {})
    assert begun.status == 200, begun.json()
    token = provider.issue_result(begun.json()["nonce"], "alice")
    done = await new.call("POST", f"/auth/challenges/{cid}/face/complete", {"token": token})
    assert done.json()["status"] == "approved", done.json()
    bound = await new.bind_device(done.json()["approval_token"])
    assert bound.status == 200 and bound.json()["status"] == "bound"
