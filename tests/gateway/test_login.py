"""Registration, login, lockout, sessions bound to the device, logout."""

from __future__ import annotations

import time

import pytest

PASSWORD = "a long enough password"  # the gateway fixtures enrol users with it

pytestmark = pytest.mark.asyncio


async def test_register_and_login_returns_opaque_session(gateway):
    phone = await gateway.enrolled("alice")
    assert phone.device_id.startswith("alice.")
    assert phone.session_token.startswith("alice.")
    assert len(phone.session_token.split(".", 1)[1]) == 43  # 256 bits, base64url


async def test_redis_holds_only_the_session_hash(gateway, redis):
    phone = await gateway.enrolled("alice")
    secret = phone.session_token.encode()
    async for key in redis.scan_iter():
        assert secret not in key
        if await redis.type(key) == b"hash":
            for field, value in (await redis.hgetall(key)).items():
                assert secret not in field and secret not in value


async def test_session_idle_timeout_is_the_key_ttl(gateway, redis):
    await gateway.enrolled("alice")
    keys = [k async for k in redis.scan_iter(match="{u:alice}:sess:*")]
    assert len(keys) == 1
    ttl = await redis.ttl(keys[0])
    assert 0 < ttl <= gateway.config.session.idle_timeout


async def test_session_absolute_timeout(gateway):
    sessions = gateway.services.sessions
    token, session = await sessions.create("alice", "alice.AAAAAAAAAAAAAAAAAAAAAA", {"pwd": 0.0}, 1000.0)
    raw = await gateway.services.redis.hgetall(session.key)
    later = 1000.0 + gateway.config.session.absolute_timeout + 1
    from gateway.errors import Unauthorized

    with pytest.raises(Unauthorized) as err:
        sessions.parse(session.key, raw, device_id=session.device_id, now=later)
    assert err.value.code == "session_invalid"


async def test_wrong_password_and_unknown_user_look_the_same(gateway):
    await gateway.enrolled("alice")
    phone = gateway.client()
    wrong = await phone.register_device("alice", "not the password")
    unknown = await phone.register_device("nobody", "not the password")
    assert wrong.status == unknown.status == 401
    assert wrong.json() == unknown.json()
    assert wrong.error == "invalid_credentials"


async def test_login_lockout_after_five_failures(gateway):
    phone = await gateway.enrolled("alice")
    for _ in range(4):
        resp = await phone.login("wrong password")
        assert (resp.status, resp.error) == (401, "invalid_credentials")
    fifth = await phone.login("wrong password")
    assert (fifth.status, fifth.error) == (429, "login_locked")
    # Locked: even the right password is refused now.
    right = await phone.login(PASSWORD)
    assert (right.status, right.error) == (429, "login_locked")


async def test_success_resets_the_failure_count(gateway):
    phone = await gateway.enrolled("alice")
    for _ in range(4):
        await phone.login("wrong password")
    assert (await phone.login(PASSWORD)).status == 200
    for _ in range(4):
        assert (await phone.login("wrong password")).error == "invalid_credentials"


async def test_session_from_another_device_refused(gateway):
    alice_phone = await gateway.enrolled("alice")
    thief = gateway.client()
    assert (await thief.register_device("alice", PASSWORD)).status == 201
    thief.session_token = alice_phone.session_token  # stolen token, other device
    resp = await thief.accounts()
    assert (resp.status, resp.error) == (401, "session_device_mismatch")


async def test_missing_or_garbage_session_refused(gateway):
    phone = await gateway.enrolled("alice")
    token = phone.session_token
    phone.session_token = None
    assert (await phone.accounts()).error == "session_required"
    phone.session_token = "alice." + "A" * 43
    assert (await phone.accounts()).error == "session_invalid"
    phone.session_token = "not-a-token"
    assert (await phone.accounts()).error == "session_invalid"
    phone.session_token = token


async def test_logout_ends_the_session(gateway):
    phone = await gateway.enrolled("alice")
    token = phone.session_token
    assert (await phone.logout()).status == 200
    phone.session_token = token
    resp = await phone.accounts()
    assert (resp.status, resp.error) == (401, "session_invalid")


async def test_login_replay_refused(gateway):
    phone = await gateway.enrolled("alice")
    first = await phone.login(PASSWORD)
    assert first.status == 200
    again = await phone.send(first.request)
    assert (again.status, again.error) == (401, "device_nonce_replayed")


async def test_admin_enrolment_api(gateway_factory):
    gw = await gateway_factory(admin={"token": "t" * 32})
    phone = gw.client()
    http = phone.transport
    no_token = await http.send("POST", "http://gateway/admin/users", {}, b'{"user_id":"dave","password":"dave long password"}')
    assert (no_token.status, no_token.error) == (401, "admin_token_required")
    bad = await http.send("POST", "http://gateway/admin/users", {"Authorization": "Bearer " + "x" * 32},
                          b'{"user_id":"dave","password":"dave long password"}')
    assert (bad.status, bad.error) == (403, "admin_token_invalid")
    ok = await http.send("POST", "http://gateway/admin/users", {"Authorization": "Bearer " + "t" * 32},
                         b'{"user_id":"dave","password":"dave long password"}')
    assert ok.status == 201
    assert (await phone.register_device("dave", "dave long password")).status == 201


async def test_admin_api_disabled_without_token(gateway):
    phone = gateway.client()
    resp = await phone.transport.send("POST", "http://gateway/admin/users", {}, b"{}")
    assert (resp.status, resp.error) == (404, "admin_disabled")


async def test_passwords_are_stored_as_argon2(gateway, redis):
    await gateway.services.users.create("erin", "erin's long password", time.time())
    stored = await redis.hget("{u:erin}:user", "pwd")
    assert stored.startswith(b"$argon2id$")
