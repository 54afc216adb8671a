"""Client certificates: the header of a TLS-terminating proxy, and the certificate check itself."""

from __future__ import annotations

import base64
import datetime as dt
from urllib.parse import quote

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from auth_tools import certificate
from auth_tools.certificate import CertificateProfile, GatewayCA
from auth_tools.errors import AuthToolError, CertificateMalformed
from gateway.tls_protocol import client_certificate_from_scope
from tests.fuzz.fuzzing import FUZZ, edits, mutate

_KEY = ec.generate_private_key(ec.SECP256R1())
_NAME = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "alice")])
_NOW = dt.datetime.now(dt.UTC)
PEM = (x509.CertificateBuilder().subject_name(_NAME).issuer_name(_NAME).public_key(_KEY.public_key())
       .serial_number(1).not_valid_before(_NOW).not_valid_after(_NOW + dt.timedelta(days=1))
       .sign(_KEY, hashes.SHA256()).public_bytes(serialization.Encoding.PEM))
HEADER = "x-ssl-client-cert"


@FUZZ
@given(value=st.one_of(st.binary(max_size=200), edits.map(lambda e: quote(mutate(PEM, e)).encode()),
                       edits.map(lambda e: mutate(quote(PEM).encode(), e))),
       copies=st.integers(1, 2), peer=st.sampled_from([("127.0.0.1", 1), ("10.9.9.9", 1), None]))
def test_any_client_cert_header_parses_or_is_malformed(value: bytes, copies: int, peer) -> None:  # noqa: ANN001
    scope = {"type": "http", "client": peer, "headers": [(HEADER.encode(), value)] * copies}
    try:
        cert = client_certificate_from_scope(scope, HEADER, ["127.0.0.1", "unix"])
    except CertificateMalformed:
        return
    assert cert is None or isinstance(cert, x509.Certificate)


CA = GatewayCA.from_pem(*certificate.create_ca("riskgate fuzz CA", _NOW.timestamp()))
_CSR = (x509.CertificateSigningRequestBuilder().subject_name(_NAME).sign(_KEY, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM))
ISSUED = certificate.issue_from_csr(_CSR, CA, "alice", CertificateProfile.CLOUD, _NOW.timestamp()).cert_pem
ISSUED_DER = x509.load_pem_x509_certificate(ISSUED).public_bytes(serialization.Encoding.DER)


@FUZZ
@given(edit=edits, as_pem=st.booleans())
@example(edit=[(0, ISSUED_DER.find(b"\xa0\x03\x02\x01\x02") + 4, 1)], as_pem=False)  # version 4
def test_damaged_client_certificate_verifies_or_is_refused(edit, as_pem: bool) -> None:  # noqa: ANN001
    der = mutate(ISSUED_DER, edit)
    data = (b"-----BEGIN CERTIFICATE-----\n" + base64.encodebytes(der)
            + b"-----END CERTIFICATE-----\n") if as_pem else der
    try:
        verified = certificate.verify_certificate(data, ca=CA, revoked=set(), now=_NOW.timestamp() + 60)
    except AuthToolError:
        return
    assert verified.user_id == "alice"
