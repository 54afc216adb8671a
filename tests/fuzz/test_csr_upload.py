"""PKCS#10 uploads: any CSR (PEM, DER, damaged) is issued or refused as a BadToolInput."""

from __future__ import annotations

import base64
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from auth_tools import certificate
from auth_tools.certificate import CertificateProfile, GatewayCA
from auth_tools.errors import AuthToolError, BadToolInput
from tests.fuzz.fuzzing import FUZZ, edits, mutate

NOW = time.time()
CA = GatewayCA.from_pem(*certificate.create_ca("riskgate fuzz CA", NOW))


def _csr(key) -> bytes:  # noqa: ANN001
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")]))
    algorithm = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    return builder.sign(key, algorithm).public_bytes(serialization.Encoding.DER)


CSRS = [_csr(ec.generate_private_key(ec.SECP256R1())), _csr(ec.generate_private_key(ec.SECP384R1())),
        _csr(rsa.generate_private_key(65537, 2048)), _csr(ed25519.Ed25519PrivateKey.generate())]


def pem(der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([b"-----BEGIN CERTIFICATE REQUEST-----", *lines,
                       b"-----END CERTIFICATE REQUEST-----", b""])


def _issued_or_refused(data: bytes | str) -> None:
    try:
        issued = certificate.issue_from_csr(data, CA, "alice", CertificateProfile.HARDWARE, NOW)
    except BadToolInput as exc:
        assert exc.code.startswith(("csr_", "bad_tool_input"))
        return
    except AuthToolError as exc:  # pragma: no cover - shows which error escaped
        raise AssertionError(f"unexpected {exc.code}") from exc
    assert x509.load_pem_x509_certificate(issued.cert_pem).serial_number == issued.serial


@FUZZ
@given(index=st.integers(0, len(CSRS) - 1), edit=edits, as_pem=st.booleans())
@example(index=0, edit=[(0, CSRS[0].find(b"\x02\x01\x00") + 2, 5)], as_pem=False)  # CSR version 5
def test_damaged_csr_is_issued_or_refused(index: int, edit, as_pem: bool) -> None:  # noqa: ANN001
    der = mutate(CSRS[index], edit)
    _issued_or_refused(pem(der) if as_pem else der)


@FUZZ
@given(data=st.one_of(st.binary(max_size=400), st.text(max_size=400),
                      st.binary(max_size=300).map(pem)))
def test_arbitrary_csr_bytes_are_refused(data: bytes | str) -> None:
    _issued_or_refused(data)
