"""The challenge protocol with SMS, SMS armor and TOTP, through the gateway's HTTP API.

Attacks: an approval replayed, an approval for another amount or payee, a
code made for another transaction, brute force of a code. Each must fail with
its own error and leave nothing forwarded and nothing spent.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import orjson
import pyotp
import pytest

from auth_tools.sms_senders import DevOutbox
from gateway.stepup_sms import set_reserved_phone
from limits.account_classes import AccountClass
from mobile_client import stepup

SOURCE = "6222020000000001"
PAYEE_A = "6217000000004321"
PAYEE_B = "6217000000009999"
PHONE = "+8613912345678"
_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")


async def _customer(gw, user_id: str = "alice"):
    client = await gw.enrolled(user_id)
    await set_reserved_phone(gw.services, user_id, PHONE, time.time())
    await gw.services.accounts.set(user_id, {SOURCE: AccountClass.I})
    return client


async def _transfer(client, amount: str, payee: str = PAYEE_A, *, approval: str | None = None,
                    idem: str | None = None):
    headers = {"Idempotency-Key": idem or f"t-{time.monotonic_ns()}"}
    if approval:
        headers["X-Approval-Token"] = approval
    body = {"from_account": SOURCE, "payee_account": payee, "amount": amount, "currency": "CNY"}
    return await client.call("POST", "/v1/transfers", body, headers=headers)


async def _last_sms(gw) -> str:
    (latest, *_) = await DevOutbox.read(gw.services.redis)
    return str(latest["text"])


async def _sms_code(gw) -> str:
    match = _CODE_RE.search(await _last_sms(gw))
    assert match, await _last_sms(gw)
    return match.group(1)


async def _spent_today(gw, user_id: str = "alice") -> int:
    return (await gw.services.reservations.spent(user_id, now=time.time())).day


async def _approve_with_sms_armor(gw, client, challenge_id: str) -> dict:
    begun = await stepup.begin_tool(client, challenge_id, "sms_armor")
    assert begun.status == 200, begun.body
    done = await stepup.complete_tool(client, challenge_id, "sms_armor", {"code": await _sms_code(gw)})
    assert done.status == 200, done.body
    return done.json()


async def test_large_transfer_gets_an_rfc9470_challenge_showing_the_transaction(gateway_factory,
                                                                              echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    resp = await _transfer(client, "20000.00")
    assert resp.status == 401
    assert resp.headers["www-authenticate"] == (
        'Bearer error="insufficient_user_authentication", acr_values="T3"')
    doc = resp.json()
    assert doc["error"] == "insufficient_user_authentication"
    assert doc["required_tier"] == "T3"
    assert ["sms_armor"] in doc["acceptable"] and ["totp"] in doc["acceptable"]
    assert doc["transaction"] == {"action": "transfer", "amount": "20000.00", "currency": "CNY",
                                  "payee": "**** 4321"}
    assert len(doc["txn_hash"]) == 64 and doc["expires_in"] > 0
    assert echo.requests == [] and await _spent_today(gw) == 0


async def test_sms_armor_approves_exactly_the_transaction_shown(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    challenge = (await _transfer(client, "20000.00", idem="pay-1")).json()
    done = await _approve_with_sms_armor(gw, client, challenge["challenge_id"])
    text = await _last_sms(gw)
    assert "20,000.00" in text and "4321" in text and PAYEE_A not in text
    assert done["status"] == "approved" and done["acr"] == "T3"

    ok = await _transfer(client, "20000.00", approval=done["approval_token"], idem="pay-1")
    assert ok.status == 200, ok.body  # the echo upstream answers 200
    assert len(echo.requests) == 1
    assert "x-approval-token" not in echo.requests[0]["headers"]
    assert await _spent_today(gw) == 20_000_00

    # The approval is single use.
    again = await _transfer(client, "20000.00", approval=done["approval_token"], idem="pay-2")
    assert (again.status, again.error) == (401, "approval_invalid")
    assert len(echo.requests) == 1 and await _spent_today(gw) == 20_000_00


@pytest.mark.parametrize(("amount", "payee"), [("20000.01", PAYEE_A), ("20000.00", PAYEE_B)])
async def test_approval_for_one_transaction_never_passes_another(gateway_factory, echo_upstream,
                                                                amount, payee):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    challenge = (await _transfer(client, "20000.00")).json()
    done = await _approve_with_sms_armor(gw, client, challenge["challenge_id"])
    tampered = await _transfer(client, amount, payee, approval=done["approval_token"])
    assert (tampered.status, tampered.error) == (401, "approval_mismatch")
    assert echo.requests == [] and await _spent_today(gw) == 0
    # Spent by the attempt: the genuine request cannot use it afterwards either.
    genuine = await _transfer(client, "20000.00", approval=done["approval_token"])
    assert (genuine.status, genuine.error) == (401, "approval_invalid")


async def test_code_sent_for_one_challenge_fails_on_another(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    first = (await _transfer(client, "20000.00")).json()
    assert (await stepup.begin_tool(client, first["challenge_id"], "sms_armor")).status == 200
    code_for_first = await _sms_code(gw)
    second = (await _transfer(client, "30000.00")).json()
    assert (await stepup.begin_tool(client, second["challenge_id"], "sms_armor")).status == 200
    wrong = await stepup.complete_tool(client, second["challenge_id"], "sms_armor",
                                       {"code": code_for_first})
    if code_for_first != await _sms_code(gw):  # one in a million the two codes coincide
        assert (wrong.status, wrong.error) == (401, "sms_code_invalid")


async def test_five_wrong_codes_lock_the_tool_and_nothing_passes(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    challenge = (await _transfer(client, "20000.00")).json()
    cid = challenge["challenge_id"]
    assert (await stepup.begin_tool(client, cid, "sms_armor")).status == 200
    code = await _sms_code(gw)
    wrong = f"{(int(code) + 1) % 1_000_000:06d}"
    errors = [(await stepup.complete_tool(client, cid, "sms_armor", {"code": wrong})).error
              for _ in range(5)]
    assert errors == ["sms_code_invalid"] * 5
    locked = await stepup.complete_tool(client, cid, "sms_armor", {"code": code})
    assert (locked.status, locked.error) == (429, "tool_locked")
    # Locked for a fresh challenge too, and the message never says which part was wrong.
    fresh = (await _transfer(client, "20000.00")).json()
    begun = await stepup.begin_tool(client, fresh["challenge_id"], "sms_armor")
    assert (begun.status, begun.error) == (429, "tool_locked")
    assert echo.requests == [] and await _spent_today(gw) == 0


async def test_plain_sms_with_password_is_t2_and_not_enough_for_t3(gateway_factory, echo_upstream):
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    small = (await _transfer(client, "3000.00")).json()
    assert small["required_tier"] == "T2"
    cid = small["challenge_id"]
    assert (await stepup.begin_tool(client, cid, "sms")).status == 200
    assert "approves" not in await _last_sms(gw)  # the plain text shows only the code
    pending = await stepup.complete_tool(client, cid, "sms", {"code": await _sms_code(gw)})
    assert pending.json()["status"] == "pending"  # sms alone: pwd must be re-entered in the challenge
    assert (await stepup.begin_tool(client, cid, "pwd")).status == 200
    done = (await stepup.complete_tool(client, cid, "pwd", {"password": "a long enough password"})).json()
    assert done["status"] == "approved" and done["acr"] == "T2"
    assert set(done["amr"]) >= {"pwd", "sms", "mfa"}
    assert (await _transfer(client, "3000.00", approval=done["approval_token"])).status == 200

    big = (await _transfer(client, "20000.00")).json()
    assert big["required_tier"] == "T3"
    assert ["pwd", "sms"] not in big["acceptable"]


async def _enrol_totp(gw, client) -> tuple[str, str]:
    """Enrol a token (needs T2: password + SMS); returns (seed, credential id)."""
    refused = await stepup.enrol_begin(client, "totp")
    challenge = refused.json()
    assert refused.status == 401 and challenge["required_tier"] == "T2", refused.body
    cid = challenge["challenge_id"]
    await stepup.begin_tool(client, cid, "sms")
    await stepup.complete_tool(client, cid, "sms", {"code": await _sms_code(gw)})
    await stepup.begin_tool(client, cid, "pwd")
    approval = (await stepup.complete_tool(client, cid, "pwd",
                                           {"password": "a long enough password"})).json()["approval_token"]
    begun = await stepup.enrol_begin(client, "totp", approval=approval)
    assert begun.status == 200, begun.body
    options = begun.json()
    seed = pyotp.parse_uri(options["otpauth_uri"]).secret
    assert options["qr_svg"].lstrip().startswith("<")
    done = await stepup.enrol_complete(client, "totp", {"enrolment_id": options["enrolment_id"],
                                                         "code": pyotp.TOTP(seed).now()})
    assert done.status == 201, done.body
    return seed, done.json()["credential"]["id"]


def _oathtool(seed: str, at: float) -> str:
    out = subprocess.run(["oathtool", "--totp", "-b", "-N", f"@{int(at)}", seed],
                         capture_output=True, text=True, check=True)
    return out.stdout.strip()


async def test_totp_enrolled_through_the_api_approves_with_an_oathtool_code(gateway_factory,
                                                                           echo_upstream):
    if shutil.which("oathtool") is None:
        pytest.fail("oathtool is not installed (.ci/run installs it)")
    echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    seed, cred_id = await _enrol_totp(gw, client)
    listed = (await stepup.list_tools(client)).json()
    assert [c["id"] for c in listed["tools"]["totp"]] == [cred_id]
    assert seed not in orjson.dumps(listed).decode()

    challenge = (await _transfer(client, "40000.00")).json()
    cid = challenge["challenge_id"]
    begun = (await stepup.begin_tool(client, cid, "totp")).json()
    assert begun["transaction"]["amount"] == "40000.00"
    # The enrolment used this step's code; the token's next step is within the window.
    code = _oathtool(seed, time.time() + 30)
    done = await stepup.complete_tool(client, cid, "totp", {"code": code})
    assert done.status == 200 and done.json()["acr"] == "T3", done.body
    assert "otp" in done.json()["amr"]
    assert (await _transfer(client, "40000.00", approval=done.json()["approval_token"])).status == 200

    # The same code cannot approve a second transfer (45,000 today: still T3).
    second = (await _transfer(client, "5000.00")).json()
    await stepup.begin_tool(client, second["challenge_id"], "totp")
    replay = await stepup.complete_tool(client, second["challenge_id"], "totp", {"code": code})
    assert replay.status == 401 and replay.error in {"replayed", "totp_code_reused"}
    assert len(echo.requests) == 1


async def test_removed_totp_is_refused(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    _seed, cred_id = await _enrol_totp(gw, client)
    refused = await stepup.remove_tool(client, "totp", cred_id)
    challenge = refused.json()
    assert refused.status == 401 and challenge["transaction"]["action"] == "remove_totp"
    approval = (await _approve_with_sms_armor(gw, client, challenge["challenge_id"]))["approval_token"]
    assert (await stepup.remove_tool(client, "totp", cred_id, approval=approval)).status == 200
    assert "totp" not in (await stepup.list_tools(client)).json()["tools"]
    later = (await _transfer(client, "20000.00")).json()
    begun = await stepup.begin_tool(client, later["challenge_id"], "totp")
    assert (begun.status, begun.error) == (409, "not_enrolled")


async def test_challenge_of_another_session_is_not_found(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    alice = await _customer(gw)
    other = await gw.enrolled("alice")  # a second device of the same user
    cid = (await _transfer(alice, "20000.00")).json()["challenge_id"]
    stolen = await stepup.begin_tool(other, cid, "sms_armor")
    assert (stolen.status, stolen.error) == (404, "challenge_not_found")


async def test_no_secret_is_stored_in_plaintext_after_a_full_journey(gateway_factory, echo_upstream):
    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)
    seed, _ = await _enrol_totp(gw, client)
    challenge = (await _transfer(client, "20000.00")).json()
    await _approve_with_sms_armor(gw, client, challenge["challenge_id"])
    redis = gw.services.redis
    needles = {seed.encode(), PHONE.encode(), PHONE.lstrip("+").encode(),
               client.session_token.encode()}  # type: ignore[union-attr]
    dumped = 0
    async for key in redis.scan_iter(count=500):
        kind = (await redis.type(key)).decode()
        if kind == "string":
            values = [await redis.get(key)]
        elif kind == "hash":
            values = [*(await redis.hgetall(key)).values(), *(await redis.hkeys(key))]
        elif kind == "list":
            values = await redis.lrange(key, 0, -1)
        elif kind == "set":
            values = list(await redis.smembers(key))
        elif kind == "zset":
            values = [m for m, _ in await redis.zrange(key, 0, -1, withscores=True)]
        elif kind == "stream":
            values = [orjson.dumps({k.decode(): v.decode() for k, v in f.items()})
                      for _, f in await redis.xrange(key)]
        else:
            values = []
        blob = key + b"".join(v or b"" for v in values)
        dumped += 1
        for needle in needles:
            assert needle not in blob, f"{needle!r} in plaintext under {key!r}"
    assert dumped > 10


async def test_step_up_outcomes_become_weak_labels_for_the_model(gateway_factory, echo_upstream):
    import asyncio

    from risk_engine import LABEL_STREAM

    _echo, url = echo_upstream
    gw = await gateway_factory(upstream={"url": url})
    client = await _customer(gw)

    async def labels() -> list[dict]:
        while gw.services.background:
            await asyncio.gather(*list(gw.services.background))
        rows = await gw.services.redis.xrange(LABEL_STREAM)
        return [{k.decode(): v.decode() for k, v in f.items()} for _, f in rows]

    passed = (await _transfer(client, "20000.00")).json()
    await _approve_with_sms_armor(gw, client, passed["challenge_id"])
    (legit,) = await labels()
    assert legit["y"] == "0" and float(legit["w"]) == pytest.approx(0.2)

    failed = (await _transfer(client, "20000.00")).json()
    cid = failed["challenge_id"]
    await stepup.begin_tool(client, cid, "sms_armor")
    wrong = f"{(int(await _sms_code(gw)) + 1) % 1_000_000:06d}"
    for _ in range(5):
        await stepup.complete_tool(client, cid, "sms_armor", {"code": wrong})
    *_, fraud = await labels()
    assert fraud["y"] == "1" and float(fraud["w"]) == pytest.approx(0.2)
