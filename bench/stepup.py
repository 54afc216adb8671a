"""Latency of each step-up tool: begin + complete over real sockets.

Starts ``riskgate demo`` (embedded Redis, upstream and gateway, one process,
127.0.0.1) as a separate process, registers a fresh device for alice and, for
each tool, repeats: a request answered with a challenge (enrolling another OTP
token, T2), then the tool's ``begin`` and ``complete`` calls. The figure is the wall time of those
two HTTP calls as the client sees them (p50 / p90 / max over the samples).

SMS codes are read from the demo's dev outbox (a Redis list); TOTP codes come
from pyotp with the enrolled seed. A TOTP code is accepted once per 30 s step
per token, so the TOTP row enrols four tokens and uses the previous, current
and next step of each (12 samples); its ``complete`` tries the user's tokens
in turn, as it would for a user with four tokens.

    .venv/bin/python bench/stepup.py [--samples 30]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import orjson
import pyotp
import redis.asyncio as aioredis
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from auth_tools import biometric  # noqa: E402
from bench.loadgen import free_port, stop_server  # noqa: E402
from gateway.demo import DEMO_PASSWORD  # noqa: E402
from mobile_client import AiohttpTransport, MobileClient, stepup  # noqa: E402
from mobile_client.soft_authenticator import SoftAuthenticator  # noqa: E402

BIO_SET = "bench-fingerprints-v1"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()

_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6})")
Driver = Callable[["Bench", str], Awaitable[float]]


class Bench:
    def __init__(self, gateway_url: str, redis: aioredis.Redis) -> None:
        self.gateway_url = gateway_url
        self.redis = redis
        self.transport = AiohttpTransport()
        self.client = MobileClient(gateway_url, self.transport)
        self.totp_codes: list[str] = []
        self.origin = "http://localhost:" + gateway_url.rsplit(":", 1)[1]
        self.fido = SoftAuthenticator()
        self.bio_key = ec.generate_private_key(ec.SECP256R1())
        self.cloud_key = ec.generate_private_key(ec.SECP256R1())
        self.hw_key = ec.generate_private_key(ec.SECP256R1())

    async def setup(self) -> None:
        deadline = time.monotonic() + 20
        while (await self.client.register_device("alice", DEMO_PASSWORD)).status != 201:
            if time.monotonic() > deadline:
                raise RuntimeError("could not register a device for alice")
            await asyncio.sleep(0.2)
        login = await self.client.login(DEMO_PASSWORD)
        assert login.status == 200, login.body
        binding = login.json().get("binding")
        if binding:  # alice already has a bound phone: this one is new and must be bound first
            approval = await self.approve_t2(str(binding["challenge_id"]))
            bound = await self.client.bind_device(approval)
            assert bound.status == 200, bound.body

    async def challenge(self) -> str:
        """A fresh challenge: asking to enrol another OTP token needs T2 every time.

        (A transfer would do as well, but this phone was just bound and sits in
        its 24-hour cool-off, where large transfers are refused before any step-up.)
        """
        resp = await stepup.enrol_begin(self.client, "totp")
        if resp.status != 401:
            raise RuntimeError(f"expected a challenge, got {resp.status} {resp.body[:200]!r}")
        return str(resp.json()["challenge_id"])

    async def sms_code(self) -> str:
        raw = await self.redis.lindex("riskgate:dev:sms_outbox", 0)
        match = _CODE_RE.search(raw.decode())
        assert match, raw
        return match.group(1)

    async def timed(self, cid: str, tool: str, begin_body: dict[str, object],
                    answer: Callable[[dict[str, object]], Awaitable[dict[str, object]]]) -> float:
        t0 = time.perf_counter()
        begun = await stepup.begin_tool(self.client, cid, tool, begin_body)
        t_begin = time.perf_counter() - t0
        if begun.status != 200:
            raise RuntimeError(f"{tool} begin: {begun.status} {begun.body[:200]!r}")
        body = await answer(begun.json())  # the user's part (reading the SMS) is not timed
        t1 = time.perf_counter()
        done = await stepup.complete_tool(self.client, cid, tool, body)
        t_complete = time.perf_counter() - t1
        if done.status != 200:
            raise RuntimeError(f"{tool} complete: {done.status} {done.body[:200]!r}")
        return (t_begin + t_complete) * 1000

    async def approve_t2(self, cid: str) -> str:
        await stepup.begin_tool(self.client, cid, "sms")
        await stepup.complete_tool(self.client, cid, "sms", {"code": await self.sms_code()})
        await stepup.begin_tool(self.client, cid, "pwd")
        done = await stepup.complete_tool(self.client, cid, "pwd", {"password": DEMO_PASSWORD})
        return str(done.json()["approval_token"])

    async def enrol(self, tool: str, answer: Callable[[dict[str, object]], dict[str, object]]) -> None:
        refused = await stepup.enrol_begin(self.client, tool)
        approval = await self.approve_t3(str(refused.json()["challenge_id"]))
        options = (await stepup.enrol_begin(self.client, tool, approval=approval)).json()
        done = await stepup.enrol_complete(self.client, tool, {"enrolment_id": options["enrolment_id"],
                                                               **answer(options)})
        assert done.status == 201, done.body

    async def approve_t3(self, cid: str) -> str:
        await stepup.begin_tool(self.client, cid, "sms_armor")
        done = await stepup.complete_tool(self.client, cid, "sms_armor", {"code": await self.sms_code()})
        return str(done.json()["approval_token"])

    async def enrol_keys(self, admin: Callable[[str], Awaitable[None]]) -> None:
        n = self.bio_key.public_key().public_numbers()
        jwk = {"kty": "EC", "crv": "P-256", "x": _b64url(n.x.to_bytes(32, "big")),
               "y": _b64url(n.y.to_bytes(32, "big"))}

        def bio(options: dict[str, object]) -> dict[str, object]:
            payload = biometric.enrollment_payload("alice", str(options["nonce"]), BIO_SET)
            return {"public_key": jwk, "biometric_set_id": BIO_SET, "modality": "fingerprint",
                    "signature": _b64url(self.bio_key.sign(payload, ec.ECDSA(hashes.SHA256())))}
        await self.enrol("biometric", bio)
        await self.enrol("fido", lambda o: {"response": self.fido.create(o["publicKey"], self.origin)})  # type: ignore[arg-type]
        await self.enrol("cloud_cert", lambda _o: {"csr": _csr(self.cloud_key)})
        await admin(_csr(self.hw_key))

    async def enrol_totp_tokens(self, count: int) -> None:
        now = time.time()
        for _ in range(count):
            refused = await stepup.enrol_begin(self.client, "totp")
            approval = await self.approve_t2(str(refused.json()["challenge_id"]))
            options = (await stepup.enrol_begin(self.client, "totp", approval=approval)).json()
            totp = pyotp.TOTP(pyotp.parse_uri(str(options["otpauth_uri"])).secret)
            done = await stepup.enrol_complete(self.client, "totp", {
                "enrolment_id": options["enrolment_id"], "code": totp.at(now - 30)})
            assert done.status == 201, done.body
            self.totp_codes += [totp.at(now), totp.at(now + 30)]


async def _pwd(b: Bench, cid: str) -> float:
    async def answer(_: dict[str, object]) -> dict[str, object]:
        return {"password": DEMO_PASSWORD}
    return await b.timed(cid, "pwd", {}, answer)


def _sms(tool: str) -> Driver:
    async def drive(b: Bench, cid: str) -> float:
        async def answer(_: dict[str, object]) -> dict[str, object]:
            return {"code": await b.sms_code()}
        return await b.timed(cid, tool, {}, answer)
    return drive


async def _totp(b: Bench, cid: str) -> float:
    if not b.totp_codes:
        raise _Exhausted()
    code = b.totp_codes.pop(0)

    async def answer(_: dict[str, object]) -> dict[str, object]:
        return {"code": code}
    return await b.timed(cid, "totp", {}, answer)


class _Exhausted(Exception):
    pass


def _signer(key: ec.EllipticCurvePrivateKey, tool: str, extra: dict[str, object] | None = None) -> Driver:
    async def drive(b: Bench, cid: str) -> float:
        async def answer(options: dict[str, object]) -> dict[str, object]:
            payload = _unb64url(str(options["payload"]))
            return {"signature": _b64url(key.sign(payload, ec.ECDSA(hashes.SHA256()))), **(extra or {})}
        return await b.timed(cid, tool, {}, answer)
    return drive


async def _fido(b: Bench, cid: str) -> float:
    async def answer(options: dict[str, object]) -> dict[str, object]:
        return {"response": b.fido.get(options["publicKey"], b.origin)}  # type: ignore[arg-type]
    return await b.timed(cid, "fido", {}, answer)


def _drivers(b: Bench) -> dict[str, Driver]:
    return {"pwd": _pwd, "sms": _sms("sms"), "sms_armor": _sms("sms_armor"), "totp": _totp,
            "biometric": _signer(b.bio_key, "biometric", {"biometric_set_id": BIO_SET}),
            "fido": _fido, "cloud_cert": _signer(b.cloud_key, "cloud_cert"),
            "hardware_cert": _signer(b.hw_key, "hardware_cert")}


async def _run(gateway_url: str, redis_sock: str, samples: int, admin_token: str
               ) -> dict[str, list[float]]:
    redis = aioredis.Redis(unix_socket_path=redis_sock)

    async def admin(csr: str) -> None:
        """The branch issues the hardware-key certificate."""
        transport = AiohttpTransport()
        try:
            resp = await transport.send("POST", f"{gateway_url}/admin/users/alice/hardware-cert",
                                        {"Authorization": f"Bearer {admin_token}",
                                         "Content-Type": "application/json"},
                                        orjson.dumps({"csr": csr}))
            assert resp.status == 201, resp.body
        finally:
            await transport.close()

    bench = Bench(gateway_url, redis)
    try:
        await bench.setup()
        await bench.enrol_totp_tokens(4)
        await bench.enrol_keys(admin)
        results: dict[str, list[float]] = {}
        for tool, drive in _drivers(bench).items():
            results[tool] = []
            for _ in range(samples):
                cid = await bench.challenge()
                try:
                    results[tool].append(await drive(bench, cid))
                except _Exhausted:
                    break
        return results
    finally:
        await bench.transport.close()
        await redis.aclose()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args(argv)
    gport, uport = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="riskgate-bench-stepup-") as tmp:
        cmd = [sys.executable, "-m", "gateway", "--log-level", "warning", "demo", "--port", str(gport),
               "--upstream-port", str(uport), "--data-dir", tmp]
        admin_token = secrets.token_urlsafe(24)
        env = {**os.environ, "RISKGATE_ADMIN_TOKEN": admin_token}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                text=True)
        try:
            # The demo walks its own journey first; measure once it says it is serving.
            assert proc.stdout is not None
            for line in proc.stdout:
                if line.startswith("serving until"):
                    break
            else:
                raise RuntimeError(f"riskgate demo exited with {proc.wait()} before serving")
            threading.Thread(target=proc.stdout.read, daemon=True).start()
            results = asyncio.run(_run(f"http://127.0.0.1:{gport}", f"{tmp}/gateway/redis.sock",
                                       args.samples, admin_token))
        finally:
            stop_server(proc)  # type: ignore[arg-type]
    print("step-up tool latency: begin + complete, HTTP over 127.0.0.1 to `riskgate demo` "
          "(one uvicorn process, embedded Redis)")
    print(f"{'tool':<14}{'samples':>8}{'p50 ms':>10}{'p90 ms':>10}{'max ms':>10}")
    for tool, values in results.items():
        if not values:
            print(f"{tool:<14}{0:>8}")
            continue
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))]
        print(f"{tool:<14}{len(values):>8}{statistics.median(ordered):>10.2f}{p90:>10.2f}"
              f"{ordered[-1]:>10.2f}")


if __name__ == "__main__":
    main()
