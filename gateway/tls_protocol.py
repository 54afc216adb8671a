"""Client certificates for the gateway: the ASGI ``tls`` extension and proxy headers.

Stock uvicorn never puts the peer certificate in the ASGI scope.
``TlsHttpToolsProtocol`` (pass it as uvicorn's ``http=`` setting) adds the
ASGI TLS extension to every request scope of a TLS connection::

    scope["extensions"]["tls"] = {
        "server_cert": None,             # Python's ssl does not expose our own certificate
        "client_cert_chain": [leaf_pem],  # Python 3.11 exposes only the leaf
        "client_cert_name": "UID=alice,CN=alice" or None,
        "client_cert_error": None,       # a certificate that fails verification fails the handshake
        "tls_version": 0x0304,
        "cipher_suite": 0x1302,          # IANA number
    }

``client_certificate_from_scope`` reads the certificate from that extension or,
behind a TLS-terminating proxy, from a header the proxy sets (URL-encoded PEM,
as nginx's ``$ssl_client_escaped_cert``), but only when the request comes from
one of the configured proxy addresses. The certificate it returns is only
*presented*: verify it with ``auth_tools.certificate.verify_certificate``.
"""

from __future__ import annotations

import functools
import ipaddress
import ssl
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import unquote

from cryptography import x509
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from auth_tools.errors import CertificateMalformed

__all__ = ["UNIX_PEER", "TlsHttpToolsProtocol", "client_certificate_from_scope", "tls_extension"]

_TLS_VERSIONS = {"TLSv1": 0x0301, "TLSv1.1": 0x0302, "TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
UNIX_PEER = "unix"
"""Put in ``trusted_proxies`` to trust a proxy that connects over a unix socket."""


class TlsHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol plus the ASGI ``tls`` scope extension."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tls: dict[str, Any] | None = None

    def connection_made(self, transport) -> None:  # type: ignore[no-untyped-def,override]
        super().connection_made(transport)
        # asyncio calls connection_made after the handshake, so the peer is known.
        self._tls = tls_extension(transport.get_extra_info("ssl_object"))

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._tls is not None:
            tls = dict(self._tls, client_cert_chain=list(self._tls["client_cert_chain"]))
            self.scope.setdefault("extensions", {})["tls"] = tls  # type: ignore[typeddict-item]


def tls_extension(ssl_object: ssl.SSLObject | None) -> dict[str, Any] | None:
    """The ASGI ``tls`` extension for a connection, or None when it is not TLS."""
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    chain: list[str] = []
    name = None
    if der:
        chain = [ssl.DER_cert_to_PEM_cert(der)]
        name = x509.load_der_x509_certificate(der).subject.rfc4514_string()
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": name,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": _iana_cipher_id(cipher[0]) if cipher else None,
    }


def client_certificate_from_scope(
    scope: Mapping[str, Any],
    trusted_proxy_header: str | None = None,
    trusted_proxies: Iterable[str] = (),
) -> x509.Certificate | None:
    """The client certificate presented for this request, or None.

    The TLS extension wins. Otherwise ``trusted_proxy_header`` (e.g.
    ``"x-ssl-client-cert"``) is read only when the peer address is in
    ``trusted_proxies`` (addresses or CIDR networks; ``"unix"`` for a unix
    socket peer): from anyone else the header is ignored, since any client
    can send it. Two copies of the header are refused rather than guessed.
    """
    tls = (scope.get("extensions") or {}).get("tls")
    if tls and tls.get("client_cert_chain"):
        return _load_pem(tls["client_cert_chain"][0])
    if not trusted_proxy_header or not _peer_trusted(scope.get("client"), trusted_proxies):
        return None
    wanted = trusted_proxy_header.lower().encode("latin-1")
    values = [value for name, value in scope.get("headers", ()) if name.lower() == wanted]
    if not values:
        return None
    if len(values) > 1:
        raise CertificateMalformed("the client certificate header was sent more than once")
    text = unquote(values[0].decode("latin-1")).strip()
    if not text or text == "-":  # nginx sends an empty value when there is no certificate
        return None
    return _load_pem(text)


def _peer_trusted(client: Any, trusted_proxies: Iterable[str]) -> bool:
    host = client[0] if client else None
    entries = list(trusted_proxies)
    if host is None:
        return UNIX_PEER in entries
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    # A malformed entry is a configuration error and raises ValueError.
    return any(address in ipaddress.ip_network(entry, strict=False)
               for entry in entries if entry != UNIX_PEER)


def _load_pem(pem: str) -> x509.Certificate:
    try:
        return x509.load_pem_x509_certificate(pem.encode("latin-1"))
    except (ValueError, UnicodeEncodeError, x509.InvalidVersion) as exc:
        raise CertificateMalformed() from exc


@functools.cache
def _iana_cipher_id(name: str) -> int | None:
    # OpenSSL ids are 0x0300XXXX with the IANA number in the low 16 bits; the
    # table is a fact of the linked OpenSSL, so it is looked up once per name.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.set_ciphers("ALL:@SECLEVEL=0")
    for cipher in context.get_ciphers():
        if cipher["name"] == name:
            return int(cipher["id"]) & 0xFFFF
    return None
