"""FIDO Metadata Service: a BLOB we sign ourselves under our own root, read from a file.

No network: the root CA, the BLOB signer and the authenticator vendors'
attestation PKI are all made here with cryptography.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

import pytest

from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import (
    FidoAttestationInvalid,
    FidoAuthenticatorCompromised,
    FidoMetadataInvalid,
    FidoMetadataStale,
)
from auth_tools.fido import (
    FidoConfig,
    begin_authentication,
    begin_registration,
    complete_authentication,
    complete_registration,
)
from auth_tools.fido_metadata import FidoMetadata, load_metadata, parse_metadata
from tests.auth_tools.fido_testkit import (
    ORIGIN,
    RP_ID,
    SoftAuthenticator,
    b64url,
    issue,
    make_ca,
    metadata_entry,
    pem,
    sign_blob,
)

CONFIG = FidoConfig(RP_ID, "Riskgate Bank", (ORIGIN,))
TXN = Transaction("transfer", 30_000_000, "CNY", "6222000011112222", "6222000099998888")
PAST = "2024-06-01"
FUTURE = "2098-01-01"


@pytest.fixture(scope="module")
def mds_pki():
    """Our stand-in for the FIDO Alliance root and its BLOB signing certificate (RSA, as FIDO)."""
    root, root_key = make_ca("Test MDS Root", rsa_key=True)
    signer, signer_key = issue(root, root_key, "Test MDS BLOB signer", rsa_key=True)
    return root, root_key, signer, signer_key


@pytest.fixture(scope="module")
def vendor():
    """An authenticator vendor's attestation root and one batch attestation certificate."""
    root, root_key = make_ca("Vendor Attestation Root")
    key = SoftAuthenticator(attestation="packed")
    leaf = issue(root, root_key, "Vendor Key Batch 1", ou="Authenticator Attestation",
                 aaguid=key.aaguid)
    return root, root_key, leaf, key.aaguid


def packed_key(vendor, **kwargs) -> SoftAuthenticator:
    root, _, leaf, aaguid = vendor
    return SoftAuthenticator(aaguid=aaguid, attestation="packed", attestation_chain=[leaf], **kwargs)


def blob_metadata(mds_pki, entries, tmp_path: Path, **kwargs) -> FidoMetadata:
    root, _, signer, signer_key = mds_pki
    path = tmp_path / "mds3.jwt"
    path.write_bytes(sign_blob(entries, signer, signer_key, **kwargs))
    return load_metadata(path, pem(root), time.time())


def register(key: SoftAuthenticator, metadata: FidoMetadata | None):
    options, state = begin_registration(CONFIG, "u7", "bob", [], now=time.time())
    return complete_registration(state, key.create(options), time.time(), metadata=metadata)


def authenticate(key, credential, metadata):
    options, state = begin_authentication(CONFIG, "ch-m", TXN, [credential], now=time.time())
    return complete_authentication(state, key.get(options), credential, time.time(),
                                   metadata=metadata)


def aaguid_text(aaguid: bytes) -> str:
    import uuid
    return str(uuid.UUID(bytes=aaguid))


def test_blob_lookup_reports_certification(mds_pki, vendor, tmp_path) -> None:
    root = vendor[0]
    aaguid = aaguid_text(vendor[3])
    metadata = blob_metadata(mds_pki, [metadata_entry(
        aaguid, [("FIDO_CERTIFIED_L1", "2023-01-01"), ("FIDO_CERTIFIED_L2", PAST)], [root])],
        tmp_path)
    found = metadata.lookup(aaguid.upper())
    assert found.certification == "FIDO_CERTIFIED_L2" and found.certified_l2
    assert found.compromise is None and found.attestation_roots_pem == (pem(root),)
    assert metadata.lookup("00000000-0000-0000-0000-000000000001") is None
    assert metadata.serial == 7


def test_certified_l2_attested_device_bound_key_reaches_t4(mds_pki, vendor, tmp_path) -> None:
    metadata = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L2", PAST)], [vendor[0]])], tmp_path)
    key = packed_key(vendor)
    credential = register(key, metadata)
    assert credential.attestation_trusted and credential.attestation_format == "packed"
    result = authenticate(key, credential, metadata)
    assert (result.max_tier, result.amr) == (4, ("hwk", "user"))


def test_l1_unlisted_or_unattested_keys_stop_at_t3(mds_pki, vendor, tmp_path) -> None:
    l1 = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L1", PAST)], [vendor[0]])], tmp_path)
    key = packed_key(vendor)
    assert authenticate(key, register(key, l1), l1).max_tier == 3

    l2 = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L2", PAST)], [vendor[0]])], tmp_path)
    # Same AAGUID but no attestation ("none"): the AAGUID is only a claim.
    claimer = SoftAuthenticator(aaguid=vendor[3])
    credential = register(claimer, l2)
    assert not credential.attestation_trusted
    assert authenticate(claimer, credential, l2).max_tier == 3
    # Not in the BLOB at all.
    stranger = SoftAuthenticator()
    assert authenticate(stranger, register(stranger, l2), l2).max_tier == 3
    # Certification that only takes effect in the future does not count yet.
    later = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L2", FUTURE)], [vendor[0]])], tmp_path)
    assert later.lookup(aaguid_text(vendor[3])).certification is None


def test_attestation_from_another_vendor_claiming_a_certified_aaguid_is_refused(
        mds_pki, vendor, tmp_path) -> None:
    metadata = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L2", PAST)], [vendor[0]])], tmp_path)
    rogue_root, rogue_root_key = make_ca("Rogue Root")
    rogue_leaf = issue(rogue_root, rogue_root_key, "Rogue", ou="Authenticator Attestation",
                       aaguid=vendor[3])
    rogue = SoftAuthenticator(aaguid=vendor[3], attestation="packed", attestation_chain=[rogue_leaf])
    with pytest.raises(FidoAttestationInvalid):
        register(rogue, metadata)


def test_attestation_certificate_naming_another_aaguid_is_refused(mds_pki, vendor, tmp_path) -> None:
    other = SoftAuthenticator().aaguid
    metadata = blob_metadata(mds_pki, [metadata_entry(
        aaguid_text(other), [("FIDO_CERTIFIED_L2", PAST)], [vendor[0]])], tmp_path)
    # The vendor's batch certificate vouches for vendor[3], not for ``other``.
    key = SoftAuthenticator(aaguid=other, attestation="packed", attestation_chain=[vendor[2]])
    with pytest.raises(FidoAttestationInvalid):
        register(key, metadata)


@pytest.mark.parametrize("status", ["USER_VERIFICATION_BYPASS", "REVOKED",
                                    "USER_KEY_REMOTE_COMPROMISE", "USER_KEY_PHYSICAL_COMPROMISE"])
def test_compromised_model_is_refused_at_authentication_and_registration(
        mds_pki, vendor, tmp_path, status) -> None:
    aaguid = aaguid_text(vendor[3])
    clean = blob_metadata(mds_pki, [metadata_entry(aaguid, [("FIDO_CERTIFIED_L2", PAST)],
                                                   [vendor[0]])], tmp_path)
    key = packed_key(vendor)
    credential = register(key, clean)
    # The next BLOB reports the model compromised: existing credentials stop working.
    bad = blob_metadata(mds_pki, [metadata_entry(
        aaguid, [("FIDO_CERTIFIED_L2", PAST), (status, "2025-01-02")], [vendor[0]])], tmp_path,
        no=8)
    with pytest.raises(FidoAuthenticatorCompromised) as err:
        authenticate(key, credential, bad)
    assert err.value.code == "fido_authenticator_compromised" and status in err.value.message
    with pytest.raises(FidoAuthenticatorCompromised):
        register(packed_key(vendor), bad)


def test_attestation_key_compromise_withdraws_t4(mds_pki, vendor, tmp_path) -> None:
    aaguid = aaguid_text(vendor[3])
    clean = blob_metadata(mds_pki, [metadata_entry(aaguid, [("FIDO_CERTIFIED_L2", PAST)],
                                                   [vendor[0]])], tmp_path)
    key = packed_key(vendor)
    credential = register(key, clean)
    leaked = blob_metadata(mds_pki, [metadata_entry(
        aaguid, [("FIDO_CERTIFIED_L2", PAST), ("ATTESTATION_KEY_COMPROMISE", "2025-02-01")],
        [vendor[0]], compromised_cert=vendor[2][0])], tmp_path)
    assert authenticate(key, credential, leaked).max_tier == 3
    with pytest.raises(FidoAuthenticatorCompromised):
        register(packed_key(vendor), leaked)  # attests with the leaked batch certificate


def test_tampered_blob_is_refused(mds_pki, vendor) -> None:
    root, _, signer, signer_key = mds_pki
    blob = sign_blob([metadata_entry(aaguid_text(vendor[3]), [("FIDO_CERTIFIED_L1", PAST)],
                                     [vendor[0]])], signer, signer_key)
    header, payload, signature = blob.split(b".")
    doc = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
    doc["entries"][0]["statusReports"][0]["status"] = "FIDO_CERTIFIED_L3"
    forged = b".".join([header, b64url(json.dumps(doc).encode()).encode(), signature])
    with pytest.raises(FidoMetadataInvalid):
        parse_metadata(forged, pem(root), time.time())
    assert parse_metadata(blob, pem(root), time.time()).lookup(aaguid_text(vendor[3]))


def test_blob_signed_under_another_root_is_refused(mds_pki) -> None:
    other_root, other_key = make_ca("Not the MDS root", rsa_key=True)
    signer, signer_key = issue(other_root, other_key, "Impostor signer", rsa_key=True)
    with pytest.raises(FidoMetadataInvalid):
        parse_metadata(sign_blob([], signer, signer_key), pem(mds_pki[0]), time.time())


def test_expired_signer_and_stale_blob(mds_pki) -> None:
    root, root_key, signer, signer_key = mds_pki
    expired, expired_key = issue(root, root_key, "Old signer", rsa_key=True,
                                 not_before_days=-400, not_after_days=-10)
    with pytest.raises(FidoMetadataInvalid):
        parse_metadata(sign_blob([], expired, expired_key), pem(root), time.time())
    stale = sign_blob([], signer, signer_key, next_update="2025-01-01")
    with pytest.raises(FidoMetadataStale):
        parse_metadata(stale, pem(root), time.time())
    # An operator may allow a grace period while a new BLOB is fetched.
    assert len(parse_metadata(stale, pem(root), time.time(), stale_grace=1e9)) == 0


def test_missing_or_garbage_blob_file(mds_pki, tmp_path) -> None:
    with pytest.raises(FidoMetadataInvalid):
        load_metadata(tmp_path / "absent.jwt", pem(mds_pki[0]), time.time())
    (tmp_path / "garbage.jwt").write_bytes(b"not.a.jwt")
    with pytest.raises(FidoMetadataInvalid):
        load_metadata(tmp_path / "garbage.jwt", pem(mds_pki[0]), time.time())
