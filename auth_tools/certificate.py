"""The certificate tool: cloud certificates (T4) and branch-issued hardware keys (T5).

Lifecycle, as the gateway drives it:

1. ``create_ca`` once; the gateway encrypts the CA key at rest and loads both
   with ``GatewayCA.from_pem``.
2. Enrolment. Cloud certificate: the app makes a key pair in its keystore and
   sends a PKCS#10 request; after the step-up the config requires, the
   gateway calls ``issue_from_csr(..., CertificateProfile.CLOUD, ...)``.
   Hardware key: the admin API (standing for issuance at a branch) calls it
   with ``CertificateProfile.HARDWARE``. The profile's policy OID (under
   ``PRIVATE_ARC``) is what later decides the tier: T4 or T5.
3. Approval. ``begin(challenge_id, txn)`` gives the payload to sign;
   ``complete(state, cert, signature, ca=..., revoked=..., now=...)`` checks the
   chain at ``now``, key usage, policy, revocation, the user and the signature
   over ``signing_payload(challenge_id, txn)``.
4. Revocation. ``revoke(serial, reason, now)`` is the record to store;
   ``build_crl`` signs the list published at ``/pki/crl``.

The PIN is the device's business: it unlocks the private key locally (the
app's keystore with user authentication for a cloud certificate; the token
itself, with its own retry counter, for a hardware key) and never travels to
the gateway. A valid signature therefore stands for key + PIN (amr ``swk`` or
``hwk`` plus ``pin``).

mTLS: a client certificate from the TLS handshake (see
``gateway.tls_protocol``) goes through ``verify_certificate``; it proves the
key but is not bound to a transaction.
"""

from __future__ import annotations

from auth_tools.certificate_ca import (
    POLICY_CLOUD,
    POLICY_HARDWARE,
    PRIVATE_ARC,
    CertificateProfile,
    GatewayCA,
    IssuedCertificate,
    create_ca,
    issue_from_csr,
    user_uri,
)
from auth_tools.certificate_revocation import (
    Crl,
    Revocation,
    RevocationReason,
    build_crl,
    revoke,
    revoked_serials,
)
from auth_tools.certificate_signing import (
    CertificateApproval,
    VerifiedCertificate,
    begin,
    complete,
    load_certificate,
    verify_certificate,
    verify_transaction_signature,
)

__all__ = [
    "PRIVATE_ARC",
    "POLICY_CLOUD",
    "POLICY_HARDWARE",
    "CertificateApproval",
    "CertificateProfile",
    "Crl",
    "GatewayCA",
    "IssuedCertificate",
    "Revocation",
    "RevocationReason",
    "VerifiedCertificate",
    "begin",
    "build_crl",
    "complete",
    "create_ca",
    "issue_from_csr",
    "load_certificate",
    "revoke",
    "revoked_serials",
    "user_uri",
    "verify_certificate",
    "verify_transaction_signature",
]
