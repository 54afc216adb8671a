"""TOTP tokens: enrolment, RFC 6238 vectors, oathtool interop, the challenge ceremony."""

from __future__ import annotations

import base64
import shutil
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlsplit

import orjson
import pyotp
import pytest

from auth_tools import totp
from auth_tools.dynamic_linking import Transaction, txn_hash
from auth_tools.errors import (
    BadToolInput,
    ChallengeExpired,
    Replayed,
    TotpCodeInvalid,
    TotpCodeReused,
    TotpConfigInvalid,
    TotpStateMismatch,
    VerificationFailed,
)
from auth_tools.totp import TotpAlgorithm, TotpParams

NOW = 1_800_000_000.0  # a fixed instant, on a 60 s step boundary
TXN = Transaction("transfer", 2_000_000, "CNY", "6222020000000001", "6217000000004321")
OATHTOOL = shutil.which("oathtool")
needs_oathtool = pytest.mark.skipif(
    OATHTOOL is None, reason="Debian oathtool not installed (apt-get install -y oathtool)")

PARAM_GRID = [
    TotpParams(),
    TotpParams(digits=8),
    TotpParams(algorithm=TotpAlgorithm.SHA256),
    TotpParams(digits=8, step=60, algorithm=TotpAlgorithm.SHA256),
    TotpParams(digits=6, step=60),
]


def oathtool(seed: str, params: TotpParams, at: float | None = None) -> str:
    """The code Debian's oathtool prints for ``seed`` (at ``at``, or now)."""
    args = [OATHTOOL, f"--totp={params.algorithm.value.lower()}", "-d", str(params.digits),
            "-s", str(params.step), "-b", seed]
    if at is not None:
        args += ["-N", f"@{int(at)}"]
    return subprocess.run(args, capture_output=True, text=True, check=True).stdout.strip()


def app_code(seed: str, params: TotpParams, at: float, offset: int = 0) -> str:
    """What an authenticator app (pyotp standing in for it) shows at ``at``."""
    app = pyotp.TOTP(seed, digits=params.digits, digest=params.algorithm.digest,
                     interval=params.step)
    return app.at(at, counter_offset=offset)


def enrolled(params: TotpParams | None = None, at: float = NOW) -> totp.TotpCredential:
    params = params or TotpParams()
    _, state = totp.enroll("u42", "Riskgate Bank", at, params=params)
    seed = str(state["seed_b32"])
    code = app_code(seed, params, at)
    return totp.confirm_enrollment(roundtrip(state), code, at)


def roundtrip(state: dict[str, object]) -> dict[str, object]:
    """States travel through Redis as JSON."""
    return orjson.loads(orjson.dumps(state))


def code_at(cred: totp.TotpCredential, at: float, offset: int = 0) -> str:
    return app_code(cred.seed_b32, cred.params, at, offset)


# --- RFC 6238 appendix B ------------------------------------------------------

RFC6238 = [
    (59, "94287082", "46119246"),
    (1111111109, "07081804", "68084774"),
    (1111111111, "14050471", "67062674"),
    (1234567890, "89005924", "91819424"),
    (2000000000, "69279037", "90698825"),
    (20000000000, "65353130", "77737706"),
]
SEED_SHA1 = base64.b32encode(b"12345678901234567890").decode()
SEED_SHA256 = base64.b32encode(b"12345678901234567890123456789012").decode()


@pytest.mark.parametrize(("at", "sha1", "sha256"), RFC6238)
def test_rfc6238_vectors_verify(at: int, sha1: str, sha256: str) -> None:
    p1 = TotpParams(digits=8, algorithm=TotpAlgorithm.SHA1)
    p256 = TotpParams(digits=8, algorithm=TotpAlgorithm.SHA256)
    assert totp.verify_totp(SEED_SHA1, sha1, at, None, params=p1) == at // 30
    assert totp.verify_totp(SEED_SHA256, sha256, at, None, params=p256) == at // 30


@needs_oathtool
@pytest.mark.parametrize(("at", "sha1", "sha256"), RFC6238)
def test_oathtool_reproduces_rfc6238_vectors(at: int, sha1: str, sha256: str) -> None:
    assert oathtool(SEED_SHA1, TotpParams(digits=8), at) == sha1
    assert oathtool(SEED_SHA256, TotpParams(digits=8, algorithm=TotpAlgorithm.SHA256), at) == sha256


# --- enrolment ----------------------------------------------------------------


def test_enrol_returns_otpauth_uri_and_qr_with_the_seed_in_a_named_field() -> None:
    params = TotpParams(digits=8, step=60, algorithm=TotpAlgorithm.SHA256)
    prov, state = totp.enroll("u42", "Riskgate Bank", NOW, params=params)
    parts = urlsplit(prov.otpauth_uri)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    assert unquote(parts.path) == "/Riskgate Bank:u42"
    assert query == {"secret": state["seed_b32"], "issuer": "Riskgate Bank",
                     "algorithm": "SHA256", "digits": "8", "period": "60"}
    # 32 random bytes for HMAC-SHA256, unpadded base32
    assert len(base64.b32decode(str(state["seed_b32"]) + "====")) == 32
    assert prov.qr_png.startswith(b"\x89PNG\r\n\x1a\n")
    assert prov.qr_svg.startswith("<svg") and prov.qr_svg.rstrip().endswith("</svg>")
    options = orjson.loads(orjson.dumps(prov.as_options()))
    assert options["qr_png"].startswith("data:image/png;base64,")
    assert "seed_b32" in state and state["seed_b32"] not in repr(prov)


def test_each_enrolment_draws_a_new_seed() -> None:
    seeds = {totp.enroll("u42", "Riskgate Bank", NOW)[1]["seed_b32"] for _ in range(20)}
    assert len(seeds) == 20


def test_enrolment_is_confirmed_by_a_first_valid_code_which_is_then_used_up() -> None:
    prov, state = totp.enroll("u42", "Riskgate Bank", NOW)
    seed = str(state["seed_b32"])
    first = app_code(seed, TotpParams(), NOW)
    with pytest.raises(TotpCodeInvalid):
        totp.confirm_enrollment(state, "000000" if first != "000000" else "111111", NOW)
    cred = totp.confirm_enrollment(roundtrip(state), first, NOW)
    assert cred.seed_b32 == seed and cred.last_timecode == int(NOW) // 30
    assert seed not in repr(cred)
    assert totp.TotpCredential.from_dict(roundtrip(cred.as_dict())) == cred
    # The confirming code cannot approve a transaction afterwards.
    _, cstate = totp.begin("ch-1", TXN, NOW + 1)
    with pytest.raises(TotpCodeReused):
        totp.complete(cstate, first, cred.seed_b32, cred.last_timecode, NOW + 1,
                      challenge_id="ch-1", txn=TXN)


def test_expired_enrolment_is_refused() -> None:
    _, state = totp.enroll("u42", "Riskgate Bank", NOW, ttl=600)
    code = app_code(str(state["seed_b32"]), TotpParams(), NOW + 600)
    with pytest.raises(ChallengeExpired):
        totp.confirm_enrollment(state, code, NOW + 600)


def test_unsupported_parameters_are_refused() -> None:
    for bad in ({"digits": 7}, {"step": 45}, {"algorithm": "MD5"}):
        with pytest.raises(TotpConfigInvalid):
            TotpParams(**bad)  # type: ignore[arg-type]


# --- oathtool interop ---------------------------------------------------------


@needs_oathtool
@pytest.mark.parametrize("params", PARAM_GRID, ids=lambda p: f"{p.algorithm.value}-{p.digits}-{p.step}")
def test_oathtool_codes_enrol_and_approve(params: TotpParams) -> None:
    _, state = totp.enroll("u42", "Riskgate Bank", NOW, params=params)
    seed = str(state["seed_b32"])
    cred = totp.confirm_enrollment(roundtrip(state), oathtool(seed, params, NOW), NOW)

    later = NOW + 3 * params.step
    options, cstate = totp.begin("ch-1", TXN, later, params=cred.params)
    assert options["digits"] == params.digits
    result = totp.complete(roundtrip(cstate), oathtool(seed, params, later), cred.seed_b32,
                           cred.last_timecode, later, challenge_id="ch-1", txn=TXN)
    assert result.timecode == int(later) // params.step
    assert result.amr == ("otp",) and result.txn_hash == txn_hash(TXN)


@needs_oathtool
def test_oathtool_code_for_the_current_time_is_accepted() -> None:
    _, state = totp.enroll("u42", "Riskgate Bank", time.time())
    code = oathtool(str(state["seed_b32"]), TotpParams())
    # The test reads the clock only to pass it in; +-1 step covers a boundary in between.
    cred = totp.confirm_enrollment(state, code, time.time())
    assert abs(cred.last_timecode - int(time.time()) // 30) <= 1


@needs_oathtool
def test_oathtool_code_from_another_seed_is_refused() -> None:
    cred = enrolled()
    other = str(totp.enroll("u43", "Riskgate Bank", NOW)[1]["seed_b32"])
    with pytest.raises(TotpCodeInvalid):
        totp.verify_totp(cred.seed_b32, oathtool(other, TotpParams(), NOW + 30), NOW + 30,
                         cred.last_timecode)


# --- verification window and reuse -------------------------------------------


def test_window_is_one_step_either_side() -> None:
    cred = enrolled()
    at = NOW + 300
    for offset in (-1, 0, 1):
        assert totp.verify_totp(cred.seed_b32, code_at(cred, at, offset), at,
                                cred.last_timecode) == int(at) // 30 + offset
    for offset in (-2, 2):
        with pytest.raises(TotpCodeInvalid):
            totp.verify_totp(cred.seed_b32, code_at(cred, at, offset), at, cred.last_timecode)


def test_a_code_is_accepted_once_and_an_older_one_never_after() -> None:
    cred = enrolled()
    at = NOW + 300
    used = totp.verify_totp(cred.seed_b32, code_at(cred, at), at, cred.last_timecode)
    with pytest.raises(TotpCodeReused) as exc:
        totp.verify_totp(cred.seed_b32, code_at(cred, at), at + 5, used)
    assert isinstance(exc.value, Replayed) and exc.value.code == "totp_code_reused"
    with pytest.raises(TotpCodeReused):  # the previous step's code, still inside the window
        totp.verify_totp(cred.seed_b32, code_at(cred, at, -1), at, used)
    assert totp.verify_totp(cred.seed_b32, code_at(cred, at, 1), at, used) == used + 1


def test_wrong_and_malformed_codes() -> None:
    cred = enrolled()
    at = NOW + 300
    right = code_at(cred, at)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"
    for code in (wrong, "", "12345", "1234567", "abcdef", right + "0"):
        with pytest.raises(TotpCodeInvalid) as exc:
            totp.verify_totp(cred.seed_b32, code, at, cred.last_timecode)
        assert isinstance(exc.value, VerificationFailed) and exc.value.code == "totp_code_invalid"
    assert totp.verify_totp(cred.seed_b32, f"{right[:3]} {right[3:]}", at, cred.last_timecode)
    with pytest.raises(BadToolInput):
        totp.verify_totp(cred.seed_b32, 123456, at, cred.last_timecode)  # type: ignore[arg-type]


def test_codes_of_a_removed_token_fail_after_reenrolment() -> None:
    old = enrolled()
    new = enrolled(at=NOW + 600)
    at = NOW + 900
    with pytest.raises(TotpCodeInvalid):
        totp.verify_totp(new.seed_b32, code_at(old, at), at, new.last_timecode)


# --- the challenge ceremony ----------------------------------------------------


def test_begin_shows_the_transaction_with_the_payee_masked() -> None:
    options, state = totp.begin("ch-1", TXN, NOW, params=TotpParams(digits=8))
    assert options["transaction"] == {"action": "transfer", "amount": "20000.00",
                                      "currency": "CNY", "payee": "**** 4321"}
    assert options["txn_hash"] == txn_hash(TXN) and options["digits"] == 8
    assert TXN.payee not in orjson.dumps(options).decode()
    assert state["challenge_id"] == "ch-1" and state["txn_hash"] == txn_hash(TXN)
    assert not any("seed" in key for key in state)


def test_happy_path() -> None:
    cred = enrolled()
    at = NOW + 90
    _, state = totp.begin("ch-1", TXN, at)
    result = totp.complete(roundtrip(state), code_at(cred, at), cred.seed_b32, cred.last_timecode,
                           at + 10, challenge_id="ch-1", txn=TXN)
    assert result == totp.TotpResult("ch-1", txn_hash(TXN), int(at + 10) // 30, ("otp",))


def test_wrong_code_in_the_ceremony() -> None:
    cred = enrolled()
    _, state = totp.begin("ch-1", TXN, NOW + 90)
    right = code_at(cred, NOW + 90)
    with pytest.raises(TotpCodeInvalid):
        totp.complete(state, f"{(int(right) + 7) % 1_000_000:06d}", cred.seed_b32,
                      cred.last_timecode, NOW + 90, challenge_id="ch-1", txn=TXN)


def test_expired_challenge_state() -> None:
    cred = enrolled()
    _, state = totp.begin("ch-1", TXN, NOW + 90, ttl=300)
    at = NOW + 90 + 300
    with pytest.raises(ChallengeExpired):
        totp.complete(state, code_at(cred, at), cred.seed_b32, cred.last_timecode, at,
                      challenge_id="ch-1", txn=TXN)


def test_replayed_code_on_another_challenge() -> None:
    cred = enrolled()
    at = NOW + 90
    _, s1 = totp.begin("ch-1", TXN, at)
    code = code_at(cred, at)
    r1 = totp.complete(s1, code, cred.seed_b32, cred.last_timecode, at, challenge_id="ch-1", txn=TXN)
    _, s2 = totp.begin("ch-2", TXN, at + 5)
    with pytest.raises(TotpCodeReused):
        totp.complete(s2, code, cred.seed_b32, r1.timecode, at + 5, challenge_id="ch-2", txn=TXN)


@pytest.mark.parametrize("other", [
    Transaction("transfer", 2_000_001, "CNY", TXN.source, TXN.payee),
    Transaction("transfer", 2_000_000, "CNY", TXN.source, "6217000000009999"),
], ids=["amount+0.01", "other-payee"])
def test_a_state_for_one_transaction_does_not_approve_another(other: Transaction) -> None:
    cred = enrolled()
    at = NOW + 90
    _, state = totp.begin("ch-1", TXN, at)
    with pytest.raises(TotpStateMismatch) as exc:
        totp.complete(state, code_at(cred, at), cred.seed_b32, cred.last_timecode, at,
                      challenge_id="ch-1", txn=other)
    assert isinstance(exc.value, VerificationFailed)


def test_a_state_for_one_challenge_does_not_complete_another() -> None:
    cred = enrolled()
    _, state = totp.begin("ch-1", TXN, NOW + 90)
    with pytest.raises(TotpStateMismatch):
        totp.complete(state, code_at(cred, NOW + 90), cred.seed_b32, cred.last_timecode, NOW + 90,
                      challenge_id="ch-2", txn=TXN)


def test_an_enrolment_state_is_not_a_challenge_state() -> None:
    cred = enrolled()
    _, enrol_state = totp.enroll("u42", "Riskgate Bank", NOW)
    with pytest.raises(BadToolInput):
        totp.complete(enrol_state, code_at(cred, NOW), cred.seed_b32, cred.last_timecode, NOW,
                      challenge_id="ch-1", txn=TXN)
