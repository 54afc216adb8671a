"""Client certificates reaching the app: the ASGI tls extension over real mTLS, and proxy headers."""

from __future__ import annotations

import asyncio
import socket
import ssl
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote

import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from auth_tools import certificate
from auth_tools.certificate import CertificateProfile, GatewayCA
from auth_tools.errors import AuthToolError
from gateway.tls_protocol import TlsHttpToolsProtocol, client_certificate_from_scope


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, check=True, timeout=30)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """Gateway CA + a client certificate it issued from an openssl CSR, a server certificate,
    and a client certificate from a CA the server does not trust."""
    work = tmp_path_factory.mktemp("mtls")
    now = time.time()
    ca_pem, ca_key = certificate.create_ca("riskgate mTLS test CA", now)
    (work / "ca.pem").write_bytes(ca_pem)
    ca = GatewayCA.from_pem(ca_pem, ca_key)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "client.key", "-out", "client.csr", "-subj", "/CN=device", cwd=work)
    issued = certificate.issue_from_csr((work / "client.csr").read_bytes(), ca, "alice",
                                        CertificateProfile.HARDWARE, now)
    (work / "client.pem").write_bytes(issued.cert_pem)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "server.key", "-out", "server.pem", "-days", "2", "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1", cwd=work)
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "stranger.key", "-out", "stranger.pem", "-days", "2", "-subj",
            "/CN=stranger", "-addext", "extendedKeyUsage=clientAuth", cwd=work)
    return {"dir": work, "ca": ca, "issued": issued}


def echo_app(ca: GatewayCA) -> Starlette:
    async def whoami(request: Request) -> JSONResponse:
        tls = request.scope.get("extensions", {}).get("tls")
        cert = client_certificate_from_scope(request.scope)
        body: dict[str, object] = {"tls": tls is not None, "subject": None}
        if tls is not None:
            body.update(name=tls["client_cert_name"], version=tls["tls_version"],
                        cipher=tls["cipher_suite"])
        if cert is not None:
            verified = certificate.verify_certificate(cert, ca=ca, revoked=frozenset(),
                                                      now=time.time())
            body.update(subject=cert.subject.rfc4514_string(), user=verified.user_id,
                        tier=verified.max_tier)
        return JSONResponse(body)

    return Starlette(routes=[Route("/", whoami)])


@pytest.fixture
async def mtls_server(pki: dict[str, object]) -> AsyncIterator[int]:
    work: Path = pki["dir"]  # type: ignore[assignment]
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        echo_app(pki["ca"]),  # type: ignore[arg-type]
        http=TlsHttpToolsProtocol, lifespan="off", log_level="warning",
        ssl_certfile=str(work / "server.pem"), ssl_keyfile=str(work / "server.key"),
        ssl_ca_certs=str(work / "ca.pem"), ssl_cert_reqs=ssl.CERT_OPTIONAL,
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.01)
        assert server.started
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


async def curl(work: Path, port: int, *args: str) -> tuple[int, bytes]:
    proc = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "10", "--cacert", "server.pem", *args,
        f"https://127.0.0.1:{port}/", cwd=work,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, _ = await proc.communicate()
    return proc.returncode or 0, out


@pytest.mark.slow
async def test_curl_client_certificate_reaches_the_app(pki: dict[str, object],
                                                       mtls_server: int) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    rc, out = await curl(work, mtls_server, "--cert", "client.pem", "--key", "client.key")
    assert rc == 0, out
    body = orjson.loads(out)
    assert body["tls"] is True
    assert body["user"] == "alice" and body["tier"] == 5
    assert body["name"] == "UID=alice,CN=alice" == body["subject"]
    assert body["version"] in (0x0303, 0x0304) and isinstance(body["cipher"], int)

    # No certificate: still TLS, no client certificate.
    rc, out = await curl(work, mtls_server)
    assert rc == 0, out
    assert orjson.loads(out) == {"tls": True, "subject": None, "name": None,
                                 "version": body["version"], "cipher": body["cipher"]}

    # A certificate from a CA the server does not trust fails the handshake.
    rc, _ = await curl(work, mtls_server, "--cert", "stranger.pem", "--key", "stranger.key")
    assert rc != 0


# --- client_certificate_from_scope without a socket ---------------------------


def proxied_scope(pem: bytes, peer: tuple[str, int] | None, *extra: tuple[bytes, bytes]) -> dict:
    # nginx: proxy_set_header X-SSL-Client-Cert $ssl_client_escaped_cert;
    headers = [(b"x-ssl-client-cert", quote(pem.decode(), safe="").encode()), *extra]
    return {"type": "http", "client": peer, "headers": headers}


def test_header_from_a_trusted_proxy_gives_the_certificate(pki: dict[str, object]) -> None:
    pem = pki["issued"].cert_pem  # type: ignore[attr-defined]
    cert = client_certificate_from_scope(proxied_scope(pem, ("10.0.0.5", 40000)),
                                         "X-SSL-Client-Cert", ["10.0.0.0/24"])
    assert cert is not None and cert.subject.rfc4514_string() == "UID=alice,CN=alice"
    unix = client_certificate_from_scope(proxied_scope(pem, None), "x-ssl-client-cert", ["unix"])
    assert unix == cert


def test_header_from_anyone_else_is_ignored(pki: dict[str, object]) -> None:
    pem = pki["issued"].cert_pem  # type: ignore[attr-defined]
    scope = proxied_scope(pem, ("203.0.113.9", 40000))
    assert client_certificate_from_scope(scope, "x-ssl-client-cert", ["10.0.0.0/24"]) is None
    assert client_certificate_from_scope(scope) is None  # no header configured
    assert client_certificate_from_scope(proxied_scope(pem, None), "x-ssl-client-cert",
                                         ["10.0.0.0/24"]) is None


def test_duplicate_or_garbage_header_is_refused_and_empty_means_none(
        pki: dict[str, object]) -> None:
    pem = pki["issued"].cert_pem  # type: ignore[attr-defined]
    peer = ("127.0.0.1", 40000)
    twice = proxied_scope(pem, peer, (b"x-ssl-client-cert", b"x"))
    garbage = {"client": peer, "headers": [(b"x-ssl-client-cert", b"-----BEGIN%20CERT")]}
    for scope in (twice, garbage):
        with pytest.raises(AuthToolError) as exc_info:
            client_certificate_from_scope(scope, "x-ssl-client-cert", ["127.0.0.1"])
        assert exc_info.value.code == "certificate_malformed"
    empty = {"client": peer, "headers": [(b"x-ssl-client-cert", b"")]}
    assert client_certificate_from_scope(empty, "x-ssl-client-cert", ["127.0.0.1"]) is None


def test_tls_extension_wins_over_the_header(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    stranger = (work / "stranger.pem").read_bytes()
    scope = proxied_scope(stranger, ("127.0.0.1", 1))
    scope["extensions"] = {"tls": {"client_cert_chain": [pki["issued"].cert_pem.decode()]}}  # type: ignore[attr-defined]
    cert = client_certificate_from_scope(scope, "x-ssl-client-cert", ["127.0.0.1"])
    assert cert is not None and "alice" in cert.subject.rfc4514_string()
