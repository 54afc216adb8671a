"""The demo's device-change chapter: a new phone, its step-up, binding and cool-off.

The customer buys a new phone: its registration is recognised as a new
device, the login comes back with the binding challenge (password + SMS to
the reserved phone), the bank texts a notice once it is bound, and the new
phone runs on the cool-off daily limit for 24 hours.
"""

from __future__ import annotations

import re

from auth_tools.sms_senders import DevOutbox
from mobile_client import ApiResponse, MobileClient, stepup
from mobile_client.client import reference_attributes

__all__ = ["device_change_chapter"]

_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6,8})")


async def device_change_chapter(t, services, old_phone: MobileClient, *, password: str,  # noqa: ANN001
                                user_id: str, source: str, payee: str) -> MobileClient:
    """Run the chapter on ``t`` (the demo transcript); returns the new, bound phone.

    ``services`` is the gateway's (the dev SMS outbox lives in its Redis).
    """
    async def last_sms() -> str:
        (latest, *_) = await DevOutbox.read(services.redis)
        return str(latest["text"])

    t.say("")
    t.say("-- device change: a new phone must pass step-up before it is bound --")
    new_phone = MobileClient(old_phone.base_url, old_phone.transport,
                             attributes=reference_attributes(model="HUAWEI ALN-AL00", screen="1260x2720"),
                             encrypt=old_phone.cipher is not None)
    t.step(f"register a new phone for {user_id} (attributes unlike any bound device)",
           await new_phone.register_device(user_id, password),
           lambda r: r.status == 201 and r.json().get("recognition") == "new")
    login = t.step("log in from the new phone: a session, but only for the binding challenge",
                   await new_phone.login(password),
                   lambda r: r.status == 200 and "binding" in r.json())
    t.step("the new phone asks for its balance before binding",
           await new_phone.balance(source),
           lambda r: r.status == 401 and r.error == "insufficient_user_authentication")
    binding = login.json().get("binding") or {}
    cid = str(binding.get("challenge_id", ""))
    t.say(f"    binding challenge: {binding.get('required_tier')} via {binding.get('acceptable')}")
    await stepup.begin_tool(new_phone, cid, "pwd")
    t.step("re-enter the password on the binding challenge",
           await stepup.complete_tool(new_phone, cid, "pwd", {"password": password}),
           lambda r: r.status == 200)
    t.step("SMS code to the reserved phone", await stepup.begin_tool(new_phone, cid, "sms"),
           lambda r: r.status == 200)
    t.say(f"    SMS: {await last_sms()}")
    match = _CODE_RE.search(await last_sms())
    approved: ApiResponse = t.step(
        "type the SMS code: the binding is approved",
        await stepup.complete_tool(new_phone, cid, "sms", {"code": match.group(1) if match else ""}),
        lambda r: r.status == 200 and r.json().get("status") == "approved")
    token = str(approved.json().get("approval_token", "")) if approved.status == 200 else ""
    t.step("bind the new phone with the approval", await new_phone.bind_device(token),
           lambda r: r.status == 200 and r.json().get("status") == "bound")
    t.say(f"    SMS: {await last_sms()}")
    t.step("the new phone's balance", await new_phone.balance(source), lambda r: r.status == 200)
    t.step("transfer 6,000.00 CNY from the new phone (cool-off: 5,000.00 per day for 24 h)",
           await new_phone.transfer(source, payee, "6000.00"),
           lambda r: r.status == 403 and r.error == "limit_exceeded")
    return new_phone
