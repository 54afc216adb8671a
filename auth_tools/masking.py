"""What a user may see of an account, a name or a phone number.

Shown in SMS texts and step-up screens, which are read by whoever holds the
phone: enough to recognise the payee, not enough to learn the account.
Follows the habits of Chinese banking apps (``**** 0003``, ``*三``,
``138****5678``).
"""

from __future__ import annotations

import unicodedata

__all__ = ["mask_account", "mask_name", "mask_phone"]


def mask_account(account: str) -> str:
    """The last four characters of an account: ``"6222020000000003" -> "**** 0003"``.

    Accounts of four characters or fewer are masked entirely.
    """
    compact = "".join(account.split())
    if not compact:
        return ""
    return f"**** {compact[-4:]}" if len(compact) > 4 else "****"


def _is_cjk(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith(("CJK UNIFIED", "CJK COMPATIBILITY"))


def mask_name(name: str) -> str:
    """A recognisable but masked name.

    Chinese names keep only the last character (``"张三" -> "*三"``,
    ``"欧阳娜娜" -> "***娜"``); other names keep the initial of each word
    (``"Bob Smith" -> "B** S**"``), with a fixed number of stars so the
    length is not revealed.
    """
    name = " ".join(name.split())
    if not name:
        return ""
    if any(_is_cjk(ch) for ch in name):
        chars = name.replace(" ", "")
        return "*" * max(len(chars) - 1, 1) + chars[-1] if len(chars) > 1 else "*"
    return " ".join(f"{word[0]}**" for word in name.split(" "))


def mask_phone(phone: str) -> str:
    """A phone number with its middle hidden: ``"13812345678" -> "138****5678"``.

    A leading ``+`` and country code are kept (``"+8613812345678" ->
    "+86138****5678"``); shorter numbers show only their last four digits
    (``"****4567"``) and numbers under five digits nothing but stars.
    """
    digits = "".join(ch for ch in phone if ch.isdigit())
    if not digits:
        return ""
    if len(digits) >= 11:
        prefix = "+" if phone.strip().startswith("+") else ""
        return f"{prefix}{digits[:-8]}****{digits[-4:]}"
    return f"****{digits[-4:]}" if len(digits) > 4 else "****"
