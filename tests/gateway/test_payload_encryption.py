"""End-to-end payload encryption: JWE requests and responses against the real gateway.

Requests are encrypted with jwcrypto (an independent JOSE implementation) to
the key the gateway publishes, and its responses decrypted with jwcrypto;
Node's ``jose`` does the same in the slow test. Attacks on the envelope
(tampering, an unknown or retired key, refused algorithms, off-curve keys)
are refused with their stable codes.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import orjson
import pytest
from jwcrypto import jwe as jc_jwe
from jwcrypto import jwk as jc_jwk

from gateway.encryption_keys import KEYS_HASH
from gateway.errors import JweAlgorithmNotAllowed, JweBadHeader
from gateway.payload_encryption import parse_jwe_header
from mobile_client import MobileClient
from tests.gateway.conftest import PASSWORD

ACCOUNT, PAYEE = "6222020000000001", "6222020000000002"
JOSE = "application/jose"


class JwcryptoDevice:
    """A device app built on jwcrypto: its own enc key, requests signed over the plaintext."""

    def __init__(self, gw, *, register_enc_key: bool = True) -> None:  # noqa: ANN001
        self.http = httpx.AsyncClient(transport=httpx.ASGITransport(app=gw.app), base_url="http://gateway")
        # MobileClient only signs here; encryption below is all jwcrypto.
        self.signer = MobileClient("http://gateway", transport=None)  # type: ignore[arg-type]
        self.enc_key = jc_jwk.JWK.generate(kty="EC", crv="P-256")
        self.register_enc_key = register_enc_key
        self.gateway_key: jc_jwk.JWK | None = None
        self.session: str | None = None

    async def load_jwks(self) -> dict:
        resp = await self.http.get("/.well-known/jwks.json")
        assert resp.status_code == 200
        doc = resp.json()
        enc = [k for k in doc["keys"] if k.get("use") == "enc"]
        self.gateway_key = jc_jwk.JWK(**enc[0])
        return doc

    def encrypt(self, plaintext: bytes, *, alg: str = "ECDH-ES+A256KW", enc: str = "A256GCM",
                kid: str | None = None, key: jc_jwk.JWK | None = None) -> bytes:
        key = key or self.gateway_key
        header = {"alg": alg, "enc": enc, "kid": kid or key["kid"], "cty": "application/json"}
        token = jc_jwe.JWE(plaintext, protected=json.dumps(header))
        token.add_recipient(key)
        return token.serialize(compact=True).encode()

    def decrypt(self, body: bytes) -> dict:
        token = jc_jwe.JWE()
        token.deserialize(body.decode(), key=self.enc_key)
        return orjson.loads(token.payload)

    def signed(self, method: str, path: str, plaintext: bytes, **kwargs: object) -> dict[str, str]:
        headers = self.signer.signed_headers(method, path, plaintext, **kwargs)  # type: ignore[arg-type]
        if self.session:
            headers["Authorization"] = f"Bearer {self.session}"
        return headers

    async def post(self, path: str, doc: object, *, token: bytes | None = None,
                   **sign_kwargs: object) -> httpx.Response:
        plaintext = orjson.dumps(doc)
        headers = self.signed("POST", path, plaintext, **sign_kwargs)
        headers["Content-Type"] = JOSE
        return await self.http.post(path, content=token or self.encrypt(plaintext), headers=headers)

    async def register(self, user_id: str = "alice") -> httpx.Response:
        from device_fingerprint.signature import public_key_to_jwk

        doc = {"user_id": user_id, "password": PASSWORD,
               "public_key": public_key_to_jwk(self.signer.device_key.public_key()), "attributes": {}}
        if self.register_enc_key:
            doc["enc_jwk"] = json.loads(self.enc_key.export_public())
        resp = await self.post("/devices", doc, device_id="")
        if resp.status_code == 201 and self.register_enc_key:
            self.signer.device_id = self.decrypt(resp.content)["device_id"]
        return resp

    async def login(self) -> httpx.Response:
        resp = await self.post("/auth/login", {"password": PASSWORD})
        assert resp.status_code == 200, resp.content
        self.session = self.decrypt(resp.content)["session_token"]
        return resp


@pytest.fixture
async def device_factory(gateway_factory, echo_upstream):  # noqa: ANN001, ANN201
    echo, url = echo_upstream
    made: list[JwcryptoDevice] = []

    async def make(**sections: dict[str, object]) -> tuple[object, JwcryptoDevice]:
        sections.setdefault("upstream", {"url": url})
        sections.setdefault("assertion", {"key_refresh_interval": 0.1})
        gw = await gateway_factory(**sections)
        if not await gw.services.users.exists("alice"):
            await gw.services.users.create("alice", PASSWORD, time.time())
        device = JwcryptoDevice(gw)
        await device.load_jwks()
        made.append(device)
        return gw, device

    make.echo = echo  # type: ignore[attr-defined]
    yield make
    for device in made:
        await device.http.aclose()


def _flip(segment: str) -> str:
    return ("A" if segment[0] != "A" else "B") + segment[1:]


# -- the published key ---------------------------------------------------------

async def test_jwks_publishes_a_public_encryption_key_beside_the_signing_key(device_factory) -> None:
    gw, device = await device_factory()
    doc = await device.load_jwks()
    uses = sorted(k.get("use") for k in doc["keys"])
    assert uses == ["enc", "sig"]
    enc = next(k for k in doc["keys"] if k["use"] == "enc")
    assert enc["kty"] == "EC" and enc["crv"] == "P-256" and enc["alg"] == "ECDH-ES+A256KW"
    assert "d" not in enc
    # The private half sits in Redis only sealed under the KEK.
    private = (await gw.services.enc_keys.get(enc["kid"], time.time())).private.as_dict(private=True)
    raw = b"".join((await gw.services.redis.hgetall(KEYS_HASH)).values())
    assert private["d"].encode() not in raw


# -- jwcrypto end to end -----------------------------------------------------

async def test_jwcrypto_device_registers_logs_in_and_transfers_encrypted(device_factory) -> None:
    gw, device = await device_factory()
    resp = await device.register()
    assert resp.status_code == 201 and resp.headers["content-type"] == JOSE
    assert b"device_id" not in resp.content  # the body on the wire is only the JWE
    login = await device.login()
    assert login.headers["content-type"] == JOSE

    body = {"from_account": ACCOUNT, "payee_account": PAYEE, "amount": "1.00", "currency": "CNY"}
    resp = await device.post("/v1/transfers", body)
    assert resp.status_code == 200 and resp.headers["content-type"] == JOSE
    assert device.decrypt(resp.content) == {"echo": True, "path": "/v1/transfers"}
    # The upstream got the plaintext the device signed, as JSON.
    seen = device_factory.echo.requests[-1]
    assert orjson.loads(seen["body"]) == body
    assert seen["headers"]["content-type"] == "application/json"


async def test_body_less_call_asking_for_jose_gets_an_encrypted_response(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    await device.login()
    headers = device.signed("GET", "/v1/accounts", b"") | {"Accept": JOSE}
    resp = await device.http.get("/v1/accounts", headers=headers)
    assert resp.status_code == 200 and resp.headers["content-type"] == JOSE
    assert device.decrypt(resp.content)["path"] == "/v1/accounts"
    assert device_factory.echo.requests[-1]["headers"]["accept"] == "application/json"


async def test_direct_key_agreement_is_accepted_too(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    plaintext = orjson.dumps({"password": PASSWORD})
    headers = device.signed("POST", "/auth/login", plaintext) | {"Content-Type": JOSE}
    resp = await device.http.post("/auth/login", content=device.encrypt(plaintext, alg="ECDH-ES"),
                                  headers=headers)
    assert resp.status_code == 200
    assert parse_jwe_header(resp.content).alg == "ECDH-ES"  # answered in kind
    assert "session_token" in device.decrypt(resp.content)


async def test_errors_after_decryption_are_encrypted_too(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    resp = await device.post("/auth/login", {"password": "wrong password!"})
    assert resp.status_code == 401 and resp.headers["content-type"] == JOSE
    assert device.decrypt(resp.content)["error"] == "invalid_credentials"


# -- the signature covers the plaintext ----------------------------------------

async def test_signature_over_other_plaintext_is_refused(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    await device.login()
    real = {"from_account": ACCOUNT, "payee_account": PAYEE, "amount": "1.00", "currency": "CNY"}
    forged = dict(real, amount="999.00")
    headers = device.signed("POST", "/v1/transfers", orjson.dumps(real)) | {"Content-Type": JOSE}
    resp = await device.http.post("/v1/transfers", content=device.encrypt(orjson.dumps(forged)),
                                  headers=headers)
    assert resp.status_code == 401
    assert device.decrypt(resp.content)["error"] == "device_signature_invalid"


async def test_replayed_jwe_is_refused_by_the_nonce(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    await device.login()
    plaintext = orjson.dumps({"from_account": ACCOUNT, "payee_account": PAYEE, "amount": "1.00",
                              "currency": "CNY"})
    headers = device.signed("POST", "/v1/transfers", plaintext) | {"Content-Type": JOSE}
    token = device.encrypt(plaintext)
    first = await device.http.post("/v1/transfers", content=token, headers=headers)
    again = await device.http.post("/v1/transfers", content=token, headers=headers)
    assert first.status_code == 200
    assert again.status_code == 401 and device.decrypt(again.content)["error"] == "device_nonce_replayed"


# -- attacks on the envelope ---------------------------------------------------

async def test_tampered_ciphertext_or_tag_is_refused(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    plaintext = orjson.dumps({"password": PASSWORD})
    for part in (3, 4, 1):  # ciphertext, tag, wrapped key
        parts = device.encrypt(plaintext).decode().split(".")
        parts[part] = _flip(parts[part])
        resp = await device.post("/auth/login", {"password": PASSWORD}, token=".".join(parts).encode())
        assert resp.status_code == 400, part
        assert resp.json()["error"] == "jwe_bad_tag"
    # A header edit changes the AAD: the tag no longer verifies.
    parts = device.encrypt(plaintext).decode().split(".")
    header = orjson.loads(base64.urlsafe_b64decode(parts[0] + "=="))
    header["cty"] = "json"
    parts[0] = base64.urlsafe_b64encode(orjson.dumps(header)).rstrip(b"=").decode()
    resp = await device.post("/auth/login", {}, token=".".join(parts).encode())
    assert resp.json()["error"] == "jwe_bad_tag"


async def test_unknown_kid_and_a_stranger_key_are_refused(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    plaintext = orjson.dumps({"password": PASSWORD})
    resp = await device.post("/auth/login", {}, token=device.encrypt(plaintext, kid="enc-nope"))
    assert resp.status_code == 400 and resp.json()["error"] == "jwe_unknown_kid"
    # Encrypted to some other key but naming the gateway's kid: does not decrypt.
    stranger = jc_jwk.JWK.generate(kty="EC", crv="P-256")
    token = device.encrypt(plaintext, key=stranger, kid=device.gateway_key["kid"])
    resp = await device.post("/auth/login", {}, token=token)
    assert resp.status_code == 400 and resp.json()["error"] == "jwe_bad_tag"


async def test_algorithms_outside_the_allow_list_are_refused(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    plaintext = orjson.dumps({"password": PASSWORD})
    rsa = jc_jwk.JWK.generate(kty="RSA", size=2048)
    for alg, enc in (("ECDH-ES+A128KW", "A128GCM"), ("ECDH-ES+A256KW", "A128CBC-HS256"),
                     ("ECDH-ES", "A128GCM"), ("RSA-OAEP-256", "A256GCM")):
        key = rsa if alg.startswith("RSA") else None
        token = device.encrypt(plaintext, alg=alg, enc=enc, key=key, kid=device.gateway_key["kid"])
        resp = await device.post("/auth/login", {}, token=token)
        assert resp.status_code == 400, alg
        assert resp.json()["error"] == "jwe_algorithm_not_allowed", (alg, enc)


async def test_malformed_envelopes_are_refused_as_bad_header(device_factory) -> None:
    gw, device = await device_factory()
    await device.register()
    good = device.encrypt(orjson.dumps({"password": PASSWORD})).decode().split(".")
    header = orjson.loads(base64.urlsafe_b64decode(good[0] + "=="))

    def with_header(**changes: object) -> bytes:
        doc = {k: v for k, v in (header | changes).items() if v is not None}
        seg = base64.urlsafe_b64encode(orjson.dumps(doc)).rstrip(b"=").decode()
        return ".".join([seg, *good[1:]]).encode()

    off_curve = dict(header["epk"], y=base64.urlsafe_b64encode(b"\x01" * 32).rstrip(b"=").decode())
    for token in (b"not a jwe", b"a.b.c", b"!!.b.c.d.e", with_header(kid=None), with_header(zip="DEF"),
                  with_header(crit=["exp"]), with_header(epk=off_curve), with_header(cty="text/plain")):
        resp = await device.post("/auth/login", {}, token=token)
        assert resp.status_code == 400, token
        assert resp.json()["error"] == "jwe_bad_header", token


def test_header_check_is_pure_and_checks_the_allow_list_first() -> None:
    seg = base64.urlsafe_b64encode(b'{"alg":"dir","enc":"A256GCM"}').rstrip(b"=")
    with pytest.raises(JweAlgorithmNotAllowed):
        parse_jwe_header(seg + b".x.y.z.w")
    with pytest.raises(JweBadHeader):
        parse_jwe_header(b"\xff.x.y.z.w")


async def test_a_device_without_an_enc_key_gets_no_plaintext_answer(device_factory) -> None:
    gw, device = await device_factory()
    device.register_enc_key = False
    resp = await device.register()
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_enc_key"
    # Registered in plaintext without enc_jwk: encrypted calls are refused before they run.
    phone = gw.client(encrypt=False)
    assert (await phone.register_device("alice", PASSWORD)).status == 201
    device.signer = phone
    resp = await device.post("/auth/login", {"password": PASSWORD})
    assert resp.status_code == 400 and resp.json()["error"] == "jwe_no_response_key"
    # A device the gateway does not know gets the device check's refusal, in plaintext.
    phone.device_id = "alice.AAAAAAAAAAAAAAAAAAAAAA"
    resp = await device.post("/auth/login", {"password": PASSWORD})
    assert resp.status_code == 401 and resp.json()["error"] == "device_unknown"
    # Nobody to encrypt to and nothing refused it: no plaintext success either.
    resp = await device.http.get("/healthz", headers={"Accept": JOSE})
    assert resp.status_code == 400 and resp.json()["error"] == "jwe_no_response_key"


async def test_registration_refuses_a_bad_or_reused_enc_key(device_factory) -> None:
    gw, device = await device_factory()
    phone = gw.client(encrypt=False)
    from device_fingerprint.signature import public_key_to_jwk

    signing = public_key_to_jwk(phone.device_key.public_key())
    for enc in (signing, {"kty": "EC", "crv": "P-384", "x": "AA", "y": "AA"}, "nope"):
        resp = await phone.call("POST", "/devices", {"user_id": "alice", "password": PASSWORD,
                                                     "public_key": signing, "enc_jwk": enc},
                                session=False, device_id="")
        assert resp.status == 400 and resp.error == "invalid_enc_key", enc


# -- policy ---------------------------------------------------------------------

async def test_policy_refuses_plaintext_on_auth_devices_and_money_movement(device_factory) -> None:
    gw, device = await device_factory(encryption={"require_for_money_and_auth": True})
    phone = gw.client(encrypt=False)
    resp = await phone.register_device("alice", PASSWORD)
    assert resp.status == 400 and resp.error == "encryption_required"
    await device.register()
    await device.login()
    phone.device_key, phone.device_id = device.signer.device_key, device.signer.device_id
    phone.session_token = device.session
    assert (await phone.login(PASSWORD)).error == "encryption_required"
    assert (await phone.transfer(ACCOUNT, PAYEE, "1.00")).error == "encryption_required"
    assert (await phone.call("GET", "/auth/tools")).error == "encryption_required"
    # Views may stay plaintext.
    assert (await phone.accounts()).status == 200
    assert all(r["path"] != "/v1/transfers" for r in device_factory.echo.requests)


async def test_policy_on_the_reference_client_with_encrypt_works(device_factory) -> None:
    gw, _ = await device_factory(encryption={"require_for_money_and_auth": True})
    phone = gw.client(encrypt=True)
    assert (await phone.register_device("alice", PASSWORD)).status == 201
    assert (await phone.login(PASSWORD)).status == 200
    resp = await phone.transfer(ACCOUNT, PAYEE, "1.00")
    assert resp.status == 200 and resp.json() == {"echo": True, "path": "/v1/transfers"}
    assert resp.request[2]["Content-Type"] == JOSE
    assert (await phone.call("GET", "/auth/tools")).status != 400
    assert (await phone.logout()).status == 200


# -- rotation -------------------------------------------------------------------

async def test_rotation_keeps_the_old_key_for_the_grace_period_then_retires_it(device_factory) -> None:
    gw, device = await device_factory(encryption={"key_grace_seconds": 60})
    await device.register()
    old_kid = device.gateway_key["kid"]
    store = gw.services.enc_keys
    new_kid, previous = await store.rotate(time.time())
    assert previous == old_kid
    time.sleep(0.15)  # other processes see the rotation within key_refresh_interval
    doc = await device.load_jwks()
    enc_kids = [k["kid"] for k in doc["keys"] if k.get("use") == "enc"]
    assert enc_kids == [new_kid, old_kid]  # current first
    stale = device.encrypt(orjson.dumps({"password": PASSWORD}),
                           key=jc_jwk.JWK(**next(k for k in doc["keys"] if k["kid"] == old_kid)))
    assert (await device.post("/auth/login", {"password": PASSWORD}, token=stale)).status_code == 200
    later = time.time() + 61
    assert await store.get(old_kid, later) is None
    assert [k["kid"] for k in (await store.jwks(later))["keys"]] == [new_kid]


async def test_reference_client_follows_a_rotation(device_factory) -> None:
    gw, _ = await device_factory()
    phone = gw.client(encrypt=True)
    assert (await phone.register_device("alice", PASSWORD)).status == 201
    old_kid = phone.cipher.gateway_key.kid
    await gw.services.enc_keys.rotate(time.time())
    await gw.services.redis.hdel(KEYS_HASH, old_kid)  # retired as if the grace period were over
    time.sleep(0.15)
    resp = await phone.login(PASSWORD)
    assert resp.status == 200
    assert phone.cipher.gateway_key.kid != old_kid
    assert resp.request[2]["Content-Type"] == JOSE


# -- a third implementation: Node's jose ----------------------------------------

NODE_SCRIPT = r"""
const jose = require('jose');
let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', async () => {
  const job = JSON.parse(input);
  if (job.op === 'encrypt') {
    const key = await jose.importJWK(job.jwk, job.alg);
    const jwe = await new jose.CompactEncrypt(new TextEncoder().encode(job.plaintext))
      .setProtectedHeader({ alg: job.alg, enc: 'A256GCM', kid: job.jwk.kid, cty: 'application/json' })
      .encrypt(key);
    process.stdout.write(jwe);
  } else {
    const key = await jose.importJWK(job.jwk, 'ECDH-ES+A256KW');
    const { plaintext, protectedHeader } = await jose.compactDecrypt(job.jwe, key,
      { keyManagementAlgorithms: ['ECDH-ES+A256KW', 'ECDH-ES'], contentEncryptionAlgorithms: ['A256GCM'] });
    process.stdout.write(JSON.stringify({ plaintext: new TextDecoder().decode(plaintext), header: protectedHeader }));
  }
});
"""


@pytest.fixture(scope="module")
def node_jose(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node and npm are not installed (CI installs the Debian packages nodejs and npm)")
    work = tmp_path_factory.mktemp("node-jose")
    result = subprocess.run(["npm", "install", "--no-audit", "--no-fund", "--silent", "jose@5"],
                            cwd=work, capture_output=True, text=True, timeout=180)
    if result.returncode != 0:
        pytest.skip(f"npm could not install jose: {result.stderr.strip()[:300]}")
    (work / "jose_job.js").write_text(NODE_SCRIPT)
    return work


def _node(work: Path, job: dict) -> str:
    result = subprocess.run(["node", "jose_job.js"], cwd=work, input=json.dumps(job), capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("alg", ["ECDH-ES+A256KW", "ECDH-ES"])
async def test_node_jose_encrypts_requests_and_decrypts_responses(device_factory, node_jose: Path,
                                                                  alg: str) -> None:
    gw, device = await device_factory()
    await device.register()
    gateway_jwk = json.loads(device.gateway_key.export_public())
    device_private = json.loads(device.enc_key.export_private())
    plaintext = orjson.dumps({"password": PASSWORD})
    token = _node(node_jose, {"op": "encrypt", "jwk": gateway_jwk, "alg": alg,
                              "plaintext": plaintext.decode()})
    headers = device.signed("POST", "/auth/login", plaintext) | {"Content-Type": JOSE}
    resp = await device.http.post("/auth/login", content=token.encode(), headers=headers)
    assert resp.status_code == 200, resp.content
    opened = json.loads(_node(node_jose, {"op": "decrypt", "jwk": device_private,
                                          "jwe": resp.content.decode()}))
    assert opened["header"]["alg"] == alg and opened["header"]["enc"] == "A256GCM"
    assert json.loads(opened["plaintext"])["token_type"] == "Bearer"
