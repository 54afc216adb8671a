"""The certificate tool against keys, CSRs, certificates and signatures made by the openssl CLI."""

from __future__ import annotations

import base64
import json
import subprocess
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from auth_tools import certificate
from auth_tools.certificate import (
    POLICY_CLOUD,
    POLICY_HARDWARE,
    PRIVATE_ARC,
    CertificateProfile,
    GatewayCA,
    Revocation,
    RevocationReason,
)
from auth_tools.dynamic_linking import Transaction, signing_payload
from auth_tools.errors import (
    AuthToolError,
    CredentialRevoked,
    VerificationFailed,
)

DAY = 86_400.0
TXN = Transaction(action="transfer", amount=25_000_000, source="6222000011112222",
                  payee="6222000033334444")


def openssl(*args: str, cwd: Path, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["openssl", *args], cwd=cwd, input=stdin, capture_output=True,
                          check=True, timeout=30)


def error_code(exc_info: pytest.ExceptionInfo[AuthToolError]) -> str:
    return exc_info.value.code


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A gateway CA (cryptography) and device keys + CSRs (openssl)."""
    work = tmp_path_factory.mktemp("pki")
    # Real time: openssl stamps its own certificates with the wall clock.
    now = time.time()
    ca_pem, ca_key_pem = certificate.create_ca("riskgate test CA", now)
    (work / "ca.pem").write_bytes(ca_pem)
    (work / "ca.key").write_bytes(ca_key_pem)
    # The device's subject is a lie on purpose: the CA must ignore it.
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "ec.key", "-out", "ec.csr", "-subj", "/CN=mallory/UID=mallory", cwd=work)
    openssl("req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", "rsa.key", "-out",
            "rsa.csr", "-subj", "/CN=device", cwd=work)
    return {"dir": work, "now": now, "ca": GatewayCA.from_pem(ca_pem, ca_key_pem)}


def issue(pki: dict[str, object], csr: str = "ec.csr", user: str = "alice",
          profile: CertificateProfile = CertificateProfile.CLOUD, **kwargs: object):
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = certificate.issue_from_csr((work / csr).read_bytes(), pki["ca"], user, profile,
                                        pki["now"], **kwargs)  # type: ignore[arg-type]
    return issued


def sign(work: Path, key: str, payload: bytes) -> bytes:
    (work / "payload.bin").write_bytes(payload)
    return openssl("dgst", "-sha256", "-sign", key, "payload.bin", cwd=work).stdout


def verify(pki: dict[str, object], cert: bytes, signature: bytes, *, txn: Transaction = TXN,
           challenge_id: str = "ch-1", revoked: frozenset[int] = frozenset(),
           now: float | None = None, user: str | None = "alice"):
    return certificate.verify_transaction_signature(
        cert, signature, challenge_id, txn, ca=pki["ca"], revoked=revoked,  # type: ignore[arg-type]
        now=pki["now"] + 60 if now is None else now, expected_user_id=user)


def ca_signed(pki: dict[str, object], name: str, extensions: str, *, ca: str = "ca") -> bytes:
    """A certificate for the EC device key signed by openssl with a CA key (ours by default)."""
    work: Path = pki["dir"]  # type: ignore[assignment]
    (work / f"{name}.ext").write_text(extensions)
    openssl("x509", "-req", "-in", "ec.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
            "-set_serial", "4242", "-days", "30", "-sha256", "-extfile", f"{name}.ext",
            "-out", f"{name}.pem", cwd=work)
    return (work / f"{name}.pem").read_bytes()


GOOD_EXT = (f"basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n"
            f"extendedKeyUsage=clientAuth\nsubjectAltName=URI:urn:riskgate:user:alice\n"
            f"certificatePolicies={POLICY_CLOUD.dotted_string}\n"
            f"subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")


# --- the CA and issuance ------------------------------------------------------


def test_ca_is_a_p256_root_that_openssl_accepts(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    openssl("verify", "-CAfile", "ca.pem", "ca.pem", cwd=work)
    text = openssl("x509", "-in", "ca.pem", "-noout", "-text", cwd=work).stdout.decode()
    assert "prime256v1" in text and "CA:TRUE" in text and "Certificate Sign, CRL Sign" in text
    openssl("pkey", "-in", "ca.key", "-noout", cwd=work)


def test_issued_cloud_certificate_names_the_user_not_the_csr(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki, crl_url="https://gateway.example/pki/crl")
    (work / "alice.pem").write_bytes(issued.cert_pem)
    # openssl agrees it is a client certificate under our CA.
    openssl("verify", "-CAfile", "ca.pem", "-purpose", "sslclient", "alice.pem", cwd=work)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    assert cert.subject.get_attributes_for_oid(NameOID.USER_ID)[0].value == "alice"
    assert "mallory" not in cert.subject.rfc4514_string()
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [POLICY_CLOUD]
    assert POLICY_CLOUD.dotted_string.startswith(PRIVATE_ARC + ".")
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and not usage.key_cert_sign
    assert issued.not_after - issued.not_before == pytest.approx(365 * DAY, abs=1)
    assert issued.fingerprint == cert.fingerprint(hashes.SHA256()).hex()


def test_rsa_2048_csr_is_accepted_and_weak_or_odd_keys_are_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    assert issue(pki, csr="rsa.csr").serial > 0
    openssl("req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "weak.key", "-out",
            "weak.csr", "-subj", "/CN=x", cwd=work)
    openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-384", "-nodes",
            "-keyout", "p384.key", "-out", "p384.csr", "-subj", "/CN=x", cwd=work)
    for csr in ("weak.csr", "p384.csr"):
        with pytest.raises(AuthToolError) as exc_info:
            issue(pki, csr=csr)
        assert error_code(exc_info) == "csr_key_unsupported"


def test_csr_with_a_broken_signature_or_garbage_is_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    der = openssl("req", "-in", "ec.csr", "-outform", "DER", cwd=work).stdout
    # Flip a byte of the subject: the proof of possession no longer verifies.
    tampered = der.replace(b"mallory", b"mallorz", 1)
    for bad in (tampered, b"not a csr", b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n"):
        with pytest.raises(AuthToolError) as exc_info:
            certificate.issue_from_csr(bad, pki["ca"], "alice", CertificateProfile.CLOUD,  # type: ignore[arg-type]
                                       pki["now"])  # type: ignore[arg-type]
        assert error_code(exc_info) == "csr_invalid"


def test_issuing_needs_the_ca_key(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    public_only = GatewayCA.from_pem((work / "ca.pem").read_bytes())
    with pytest.raises(AuthToolError) as exc_info:
        certificate.issue_from_csr((work / "ec.csr").read_bytes(), public_only, "alice",
                                   CertificateProfile.CLOUD, pki["now"])  # type: ignore[arg-type]
    assert error_code(exc_info) == "ca_key_unavailable"


# --- transaction signing ------------------------------------------------------


def test_cloud_certificate_signature_approves_the_transaction_for_t4(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)
    now = pki["now"] + 10  # type: ignore[operator]
    options, state = certificate.begin("ch-1", TXN, now=now)
    state = json.loads(json.dumps(state))  # it goes through Redis as JSON
    payload = base64.urlsafe_b64decode(options["payload"] + "==")  # type: ignore[operator]
    assert payload == signing_payload("ch-1", TXN)
    signature = sign(work, "ec.key", payload)
    approval = certificate.complete(state, issued.cert_pem, signature, ca=pki["ca"],  # type: ignore[arg-type]
                                    revoked=frozenset(), now=now + 5, expected_user_id="alice")
    assert approval.txn_hash == options["txn_hash"]
    assert approval.certificate.user_id == "alice"
    assert approval.certificate.serial == issued.serial
    assert approval.certificate.max_tier == 4
    assert approval.certificate.amr == ("swk", "pin")


def test_hardware_key_certificate_reaches_t5_with_an_rsa_key(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki, csr="rsa.csr", profile=CertificateProfile.HARDWARE)
    cert = x509.load_pem_x509_certificate(issued.cert_pem)
    policies = cert.extensions.get_extension_for_class(x509.CertificatePolicies).value
    assert [p.policy_identifier for p in policies] == [POLICY_HARDWARE]
    verified = verify(pki, issued.cert_pem, sign(work, "rsa.key", signing_payload("ch-1", TXN)))
    assert verified.max_tier == 5
    assert verified.amr == ("hwk", "pin")


def test_raw_r_s_signature_as_webcrypto_makes_it_is_accepted(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)
    r, s = decode_dss_signature(sign(work, "ec.key", signing_payload("ch-1", TXN)))
    raw = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    assert verify(pki, issued.cert_pem, raw).user_id == "alice"


@pytest.mark.parametrize("changed", [
    {"txn": Transaction(action="transfer", amount=25_000_001, source=TXN.source, payee=TXN.payee)},
    {"txn": Transaction(action="transfer", amount=TXN.amount, source=TXN.source,
                        payee="6222000055556666")},
    {"challenge_id": "ch-2"},
], ids=["other-amount", "other-payee", "other-challenge"])
def test_signature_for_one_transaction_never_approves_another(pki: dict[str, object],
                                                              changed: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)
    signature = sign(work, "ec.key", signing_payload("ch-1", TXN))
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, issued.cert_pem, signature, **changed)  # type: ignore[arg-type]
    assert error_code(exc_info) == "transaction_signature_invalid"


def test_signature_by_another_key_is_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)  # certifies ec.key; sign with the RSA key instead
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, issued.cert_pem, sign(work, "rsa.key", signing_payload("ch-1", TXN)))
    assert error_code(exc_info) == "transaction_signature_invalid"


def test_certificate_from_another_ca_is_untrusted(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "evil.key", "-out", "evil.pem", "-days", "30",
            "-subj", "/CN=evil CA", cwd=work)
    # Same subject as our CA, other key: the name alone must not be enough.
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", "twin.key", "-out", "twin.pem", "-days", "30",
            "-subj", "/O=riskgate/CN=riskgate test CA", cwd=work)
    signature = sign(work, "ec.key", signing_payload("ch-1", TXN))
    for other in ("evil", "twin"):
        forged = ca_signed(pki, f"by-{other}", GOOD_EXT, ca=other)
        with pytest.raises(VerificationFailed) as exc_info:
            verify(pki, forged, signature, now=time.time() + 5)
        assert error_code(exc_info) == "certificate_untrusted"


def test_expired_and_not_yet_valid_certificates_are_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki, validity_days=1)
    signature = sign(work, "ec.key", signing_payload("ch-1", TXN))
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, issued.cert_pem, signature, now=pki["now"] + 2 * DAY)  # type: ignore[operator]
    assert error_code(exc_info) == "certificate_expired"
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, issued.cert_pem, signature, now=pki["now"] - 3600)  # type: ignore[operator]
    assert error_code(exc_info) == "certificate_not_yet_valid"


@pytest.mark.parametrize("extensions", [
    GOOD_EXT.replace("keyUsage=critical,digitalSignature", "keyUsage=critical,keyEncipherment"),
    GOOD_EXT.replace("extendedKeyUsage=clientAuth", "extendedKeyUsage=serverAuth"),
], ids=["no-digital-signature", "no-client-auth"])
def test_certificate_without_signing_usage_is_refused(pki: dict[str, object],
                                                      extensions: str) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    cert = ca_signed(pki, "usage", extensions)  # signed with our own CA key
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, cert, sign(work, "ec.key", signing_payload("ch-1", TXN)), now=time.time() + 5)
    assert error_code(exc_info) == "certificate_key_usage"


def test_certificate_without_our_policy_is_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    cert = ca_signed(pki, "nopolicy", GOOD_EXT.replace(POLICY_CLOUD.dotted_string, "2.5.29.32.0"))
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, cert, sign(work, "ec.key", signing_payload("ch-1", TXN)), now=time.time() + 5)
    assert error_code(exc_info) == "certificate_policy_missing"


def test_path_validation_still_refuses_a_ca_certificate_as_leaf(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    cert = ca_signed(pki, "leafca", GOOD_EXT.replace("CA:FALSE", "CA:TRUE"))
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, cert, sign(work, "ec.key", signing_payload("ch-1", TXN)), now=time.time() + 5)
    assert error_code(exc_info) == "certificate_untrusted"


def test_revoked_certificate_is_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)
    signature = sign(work, "ec.key", signing_payload("ch-1", TXN))
    with pytest.raises(CredentialRevoked) as exc_info:
        verify(pki, issued.cert_pem, signature, revoked=frozenset({issued.serial}))
    assert error_code(exc_info) == "certificate_revoked"


def test_another_users_certificate_is_refused(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki, user="bob")
    with pytest.raises(VerificationFailed) as exc_info:
        verify(pki, issued.cert_pem, sign(work, "ec.key", signing_payload("ch-1", TXN)))
    assert error_code(exc_info) == "certificate_wrong_user"


def test_expired_ceremony_and_malformed_certificate(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    issued = issue(pki)
    now = pki["now"]  # type: ignore[assignment]
    _, state = certificate.begin("ch-1", TXN, now=now, ttl=60)  # type: ignore[arg-type]
    signature = sign(work, "ec.key", signing_payload("ch-1", TXN))
    with pytest.raises(AuthToolError) as exc_info:
        certificate.complete(state, issued.cert_pem, signature, ca=pki["ca"],  # type: ignore[arg-type]
                             revoked=frozenset(), now=now + 61)  # type: ignore[operator]
    assert error_code(exc_info) == "challenge_expired"
    with pytest.raises(AuthToolError) as exc_info:
        certificate.complete(state, b"-----BEGIN CERTIFICATE-----\nxx\n", signature,
                             ca=pki["ca"], revoked=frozenset(), now=now + 1)  # type: ignore[arg-type,operator]
    assert error_code(exc_info) == "certificate_malformed"


# --- revocation and the CRL ---------------------------------------------------


def test_crl_verifies_with_openssl_and_lists_the_revoked(pki: dict[str, object]) -> None:
    work: Path = pki["dir"]  # type: ignore[assignment]
    now: float = pki["now"]  # type: ignore[assignment]
    alice = issue(pki)
    (work / "revoked-alice.pem").write_bytes(alice.cert_pem)
    entries = [certificate.revoke(alice.serial, "key_compromise", now + 1),
               certificate.revoke(12345, RevocationReason.UNSPECIFIED, now + 2)]
    stored = [Revocation.from_dict(json.loads(json.dumps(e.to_dict()))) for e in entries]
    assert stored == entries
    crl = certificate.build_crl(pki["ca"], stored, now + 3, now + DAY)  # type: ignore[arg-type]
    (work / "crl.pem").write_bytes(crl.pem)
    out = openssl("crl", "-in", "crl.pem", "-CAfile", "ca.pem", "-noout", cwd=work)
    assert b"verify OK" in out.stdout + out.stderr
    text = openssl("crl", "-in", "crl.pem", "-noout", "-text", cwd=work).stdout.decode()
    assert format(alice.serial, "X") in text.replace(":", "").upper()
    assert "Key Compromise" in text and "X509v3 CRL Number" in text
    # openssl refuses the revoked certificate with our CRL.
    refused = subprocess.run(["openssl", "verify", "-crl_check", "-CAfile", "ca.pem", "-CRLfile",
                              "crl.pem", "revoked-alice.pem"], cwd=work, capture_output=True)
    assert refused.returncode != 0 and b"certificate revoked" in refused.stdout + refused.stderr
    assert certificate.revoked_serials(crl.der, pki["ca"]) == {alice.serial, 12345}  # type: ignore[arg-type]
    assert certificate.revoked_serials(crl.pem, pki["ca"]) == {alice.serial, 12345}  # type: ignore[arg-type]


def test_crl_from_another_ca_or_garbage_is_refused(pki: dict[str, object]) -> None:
    now: float = pki["now"]  # type: ignore[assignment]
    other_pem, other_key = certificate.create_ca("riskgate test CA", now)
    other = GatewayCA.from_pem(other_pem, other_key)
    crl = certificate.build_crl(other, [certificate.revoke(7, "superseded", now)], now, now + DAY)
    for data in (crl.der, b"garbage"):
        with pytest.raises(AuthToolError) as exc_info:
            certificate.revoked_serials(data, pki["ca"])  # type: ignore[arg-type]
        assert error_code(exc_info) == "crl_invalid"


def test_revoke_refuses_unknown_reasons() -> None:
    with pytest.raises(AuthToolError) as exc_info:
        certificate.revoke(1, "because", 0.0)
    assert error_code(exc_info) == "bad_tool_input"
