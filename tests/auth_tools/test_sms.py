"""SMS codes and SMS armor: codes bound to challenge, amount and payee."""

from __future__ import annotations

import re
import secrets

import orjson
import pytest

from auth_tools import sms
from auth_tools.dynamic_linking import Transaction
from auth_tools.errors import (
    BadToolInput,
    SmsCodeExpired,
    SmsCodeInvalid,
    SmsCodeReused,
    SmsConfigInvalid,
    SmsResendLimit,
    SmsResendTooSoon,
)
from auth_tools.masking import mask_account, mask_name, mask_phone
from auth_tools.sms import SmsMode, SmsPolicy

NOW = 1_763_800_000.0
KEY = secrets.token_bytes(32)
PHONE = "+8613812345678"
TXN = Transaction("transfer", 2_000_000, "CNY", "6222020000000001", "6222020000000003")


def code_in(text: str) -> str:
    match = re.search(r"\b(\d{6,8})\b", text)
    assert match, text
    return match.group(1)


def other_code(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_armor_text_shows_amount_and_masked_payee_and_state_keeps_no_secret() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, payee_name="张三")
    code = code_in(message.text)
    assert message.phone == PHONE
    assert "CNY 20,000.00" in message.text and "*三 (**** 0003)" in message.text
    assert "6222020000000003" not in message.text and "张三" not in message.text
    dumped = orjson.dumps(state).decode()  # what the gateway stores in Redis
    assert code not in dumped and "13812345678" not in dumped
    assert state["phone_hint"] == "+86138****5678"
    assert code not in repr(message) and PHONE not in repr(message)


def test_plain_text_carries_only_the_code() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, mode=SmsMode.PLAIN)
    assert "20,000" not in message.text and "0003" not in message.text
    result = sms.complete(state, code_in(message.text), NOW + 5, key=KEY, challenge_id="ch1", txn=TXN)
    assert result.tool == "sms" and result.amr == ("sms",)


def test_armor_happy_path() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    result = sms.complete(state, code_in(message.text), NOW + 299, key=KEY, challenge_id="ch1", txn=TXN)
    assert result.mode is SmsMode.ARMOR and result.tool == "sms_armor"
    assert result.challenge_id == "ch1" and result.amr == ("sms",)


def test_code_with_spaces_accepted() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    code = code_in(message.text)
    sms.complete(state, f"{code[:3]} {code[3:]}", NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)


@pytest.mark.parametrize("entered", ["wrong", "", "1234567", "12345"])
def test_wrong_or_malformed_code_refused(entered: str) -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    code = code_in(message.text)
    entered = other_code(code) if entered == "wrong" else entered
    with pytest.raises(SmsCodeInvalid) as err:
        sms.complete(state, entered, NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)
    assert err.value.code == "sms_code_invalid"


def test_non_string_code_is_bad_input() -> None:
    _, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(BadToolInput):
        sms.complete(state, 123456, NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)


def test_expired_code_refused() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(SmsCodeExpired) as err:
        sms.complete(state, code_in(message.text), NOW + 300, key=KEY, challenge_id="ch1", txn=TXN)
    assert err.value.code == "sms_code_expired"


def test_replayed_code_refused() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    code = code_in(message.text)
    result = sms.complete(state, code, NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)
    with pytest.raises(SmsCodeReused) as err:
        sms.complete(result.state, code, NOW + 2, key=KEY, challenge_id="ch1", txn=TXN)
    assert err.value.code == "sms_code_reused"
    with pytest.raises(SmsCodeReused):
        sms.resend(result.state, TXN, PHONE, NOW + 100, key=KEY)


@pytest.mark.parametrize("other", [
    Transaction("transfer", 2_000_001, "CNY", "6222020000000001", "6222020000000003"),  # +0.01 CNY
    Transaction("transfer", 2_000_000, "CNY", "6222020000000001", "6222020000000004"),  # other payee
    Transaction("transfer", 2_000_000, "CNY", "6222020000000002", "6222020000000003"),  # other source
    Transaction("pay", 2_000_000, "CNY", "6222020000000001", "6222020000000003"),
])
def test_code_for_another_transaction_refused(other: Transaction) -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(SmsCodeInvalid):
        sms.complete(state, code_in(message.text), NOW + 1, key=KEY, challenge_id="ch1", txn=other)


def test_code_for_another_challenge_refused() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(SmsCodeInvalid):
        sms.complete(state, code_in(message.text), NOW + 1, key=KEY, challenge_id="ch2", txn=TXN)


def test_tampered_state_refused() -> None:
    # An attacker who can write the state swaps in the txn_hash of another transfer,
    # or downgrades the mode: the HMAC no longer matches.
    other = Transaction("transfer", 99_999_900, "CNY", "6222020000000001", "6222020000000666")
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    code = code_in(message.text)
    _, other_state = sms.begin("ch1", other, PHONE, NOW, key=KEY)
    forged = {**state, "txn_hash": other_state["txn_hash"]}
    with pytest.raises(SmsCodeInvalid):
        sms.complete(forged, code, NOW + 1, key=KEY, challenge_id="ch1", txn=other)
    with pytest.raises(SmsCodeInvalid):
        sms.complete({**state, "mode": "sms"}, code, NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)


def test_state_from_a_server_with_another_key_refused() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(SmsCodeInvalid):
        sms.complete(state, code_in(message.text), NOW + 1, key=secrets.token_bytes(32),
                     challenge_id="ch1", txn=TXN)


def test_resend_throttling_and_limit() -> None:
    policy = SmsPolicy(resend_interval=60, max_sends=3)
    first, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, policy=policy)
    assert sms.options(state, NOW + 10, policy=policy)["resend_in"] == 50
    with pytest.raises(SmsResendTooSoon) as err:
        sms.resend(state, TXN, PHONE, NOW + 10, key=KEY, policy=policy)
    assert err.value.code == "sms_resend_too_soon" and err.value.retry_after == 50

    second, state2 = sms.resend(state, TXN, PHONE, NOW + 60, key=KEY, policy=policy)
    assert state2["sends"] == 2 and state2["expires_at"] == NOW + 60 + 300
    # The earlier code stops working once a new one is sent (unless both happen to be equal).
    if code_in(first.text) != code_in(second.text):
        with pytest.raises(SmsCodeInvalid):
            sms.complete(state2, code_in(first.text), NOW + 61, key=KEY, challenge_id="ch1", txn=TXN)

    _, state3 = sms.resend(state2, TXN, PHONE, NOW + 120, key=KEY, policy=policy)
    assert sms.options(state3, NOW + 120, policy=policy)["resends_left"] == 0
    with pytest.raises(SmsResendLimit) as limit:
        sms.resend(state3, TXN, PHONE, NOW + 500, key=KEY, policy=policy)
    assert limit.value.code == "sms_resend_limit"


def test_resent_code_verifies() -> None:
    _, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    message, state2 = sms.resend(state, TXN, PHONE, NOW + 60, key=KEY)
    result = sms.complete(state2, code_in(message.text), NOW + 61, key=KEY, challenge_id="ch1", txn=TXN)
    assert result.txn_hash == state["txn_hash"]


def test_resend_for_another_transaction_is_refused() -> None:
    other = Transaction("transfer", 2_000_000, "CNY", "6222020000000001", "6222020000000004")
    _, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(BadToolInput):
        sms.resend(state, other, PHONE, NOW + 60, key=KEY)


def test_options_never_show_the_code_or_number() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    opts = sms.options(state, NOW + 30)
    assert opts == {"tool": "sms_armor", "sent_to": "+86138****5678", "digits": 6, "expires_in": 270.0,
                    "resend_in": 30.0, "resends_left": 2}
    assert code_in(message.text) not in str(opts)


def test_codes_are_six_random_digits() -> None:
    codes = {code_in(sms.begin("c", TXN, PHONE, NOW, key=KEY)[0].text) for _ in range(300)}
    assert len(codes) > 290  # no fixed or low-entropy code


def test_eight_digit_codes_are_made_verified_and_announced() -> None:
    policy = SmsPolicy(digits=8)
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, policy=policy)
    code = code_in(message.text)
    assert len(code) == 8 and state["digits"] == 8
    assert sms.options(state, NOW + 1, policy=policy)["digits"] == 8
    codes = {code_in(sms.begin("c", TXN, PHONE, NOW, key=KEY, policy=policy)[0].text) for _ in range(300)}
    assert {len(c) for c in codes} == {8} and len(codes) > 295
    with pytest.raises(SmsCodeInvalid):  # its first six digits are not the code
        sms.complete(state, code[:6], NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)
    with pytest.raises(SmsCodeInvalid):
        sms.complete(state, code[2:], NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)
    result = sms.complete(state, f"{code[:4]} {code[4:]}", NOW + 2, key=KEY, challenge_id="ch1", txn=TXN)
    assert result.tool == "sms_armor"


def test_a_code_keeps_the_length_it_was_sent_with() -> None:
    # Sent as 6 digits, then the bank moves to 8: the code in the customer's hands
    # still verifies (and the app still asks for 6) until it expires.
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, policy=SmsPolicy(digits=6))
    assert sms.options(state, NOW + 1, policy=SmsPolicy(digits=8))["digits"] == 6
    sms.complete(state, code_in(message.text), NOW + 2, key=KEY, challenge_id="ch1", txn=TXN)
    # A resend after the change sends a code of the new length.
    resent, state2 = sms.resend(state, TXN, PHONE, NOW + 60, key=KEY, policy=SmsPolicy(digits=8))
    assert len(code_in(resent.text)) == 8 and state2["digits"] == 8
    assert sms.options(state2, NOW + 61, policy=SmsPolicy(digits=8))["digits"] == 8


def test_a_state_made_before_codes_had_a_recorded_length_means_six_digits() -> None:
    message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    old = {k: v for k, v in state.items() if k != "digits"}
    assert sms.options(old, NOW + 1)["digits"] == 6
    with pytest.raises(SmsCodeInvalid):
        sms.complete(old, code_in(message.text) + "00", NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)
    sms.complete(old, code_in(message.text), NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)


@pytest.mark.parametrize("digits", [5, 9, 0, True, "8", 6.0])
def test_a_code_length_outside_six_to_eight_is_refused(digits: object) -> None:
    with pytest.raises(SmsConfigInvalid):
        SmsPolicy(digits=digits)  # type: ignore[arg-type]
    _, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY)
    with pytest.raises(BadToolInput):  # a state claiming another length is not ours
        sms.complete({**state, "digits": digits}, "123456", NOW + 1, key=KEY, challenge_id="ch1", txn=TXN)


def test_the_text_gives_the_lifetime_in_minutes() -> None:
    for ttl, minutes in ((300, 5), (90, 2), (1800, 30)):
        policy = SmsPolicy(ttl=ttl)
        for mode in SmsMode:
            message, state = sms.begin("ch1", TXN, PHONE, NOW, key=KEY, mode=mode, policy=policy)
            assert f"expires in {minutes} minutes" in message.text
            assert state["expires_at"] == NOW + ttl


def test_short_key_and_bad_policy_refused() -> None:
    with pytest.raises(SmsConfigInvalid):
        sms.begin("ch1", TXN, PHONE, NOW, key=b"short")
    with pytest.raises(SmsConfigInvalid):
        SmsPolicy(ttl=5)
    with pytest.raises(SmsConfigInvalid):
        SmsPolicy(max_sends=0)
    with pytest.raises(BadToolInput):
        sms.begin("ch1", TXN, "", NOW, key=KEY)


def test_masking() -> None:
    assert mask_account("6222020000000003") == "**** 0003"
    assert mask_account("6222 0200 0000 0003") == "**** 0003"
    assert mask_account("123") == "****"
    assert mask_name("张三") == "*三"
    assert mask_name("欧阳娜娜") == "***娜"
    assert mask_name("Bob Smith") == "B** S**"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("+86 138 1234 5678") == "+86138****5678"
    assert mask_phone("5551234") == "****1234"
