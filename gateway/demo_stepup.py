"""The demo's step-up chapter: approvals with SMS armor, FIDO2, a cloud
certificate and a branch-issued hardware key, each over the exact transaction.

The client holds what a customer's phone and key ring would: the SMS arrives
in the demo's outbox (printed), the FIDO2 key is a software authenticator,
the cloud certificate key and the "hardware key" are P-256 keys in memory.
Which tool each payment needs is read from the challenge, because the risk
engine may move a tier up (a large transfer at night, say); the transcript
says why.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from auth_tools.sms_senders import DevOutbox
from mobile_client import ApiResponse, MobileClient, stepup
from mobile_client.soft_authenticator import SoftAuthenticator

__all__ = ["Wallet", "stepup_chapter"]

_CODE_RE = re.compile(r"[Cc]ode (?:is )?(\d{6,8})")


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _csr(key: ec.EllipticCurvePrivateKey) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "riskgate demo device")])
    csr = x509.CertificateSigningRequestBuilder().subject_name(name).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


@dataclass
class Wallet:
    """What the customer holds besides the phone's device key."""

    password: str
    origin: str
    fido: SoftAuthenticator = field(default_factory=SoftAuthenticator)
    cloud_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    hardware_key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))


class StepUp:
    def __init__(self, t, stack, phone: MobileClient, wallet: Wallet) -> None:  # noqa: ANN001
        self.t, self.stack, self.phone, self.wallet = t, stack, phone, wallet

    async def _sms_text(self) -> str:
        (latest, *_) = await DevOutbox.read(self.stack.services.redis)
        return str(latest["text"])

    def show_challenge(self, resp: ApiResponse) -> dict:
        doc = resp.json()
        txn = doc["transaction"]
        self.t.say(f"    challenge: {doc['required_tier']} for {txn['action']} {txn['amount']} "
                   f"{txn['currency']} to {txn['payee'] or '-'}"
                   + (f"  (amount needs {doc['reason']['amount_tier']}, risk {doc['reason']['risk_level']}"
                      + (f": {', '.join(doc['reason']['rules'])}" if doc["reason"].get("rules") else "")
                      + ")" if doc.get("reason") else ""))
        self.t.say(f"    acceptable: {', '.join('+'.join(c) for c in doc['acceptable'][:6])}")
        return doc

    async def _tool(self, cid: str, tool: str, answer, begin_body: dict | None = None) -> ApiResponse:  # noqa: ANN001
        begun = await stepup.begin_tool(self.phone, cid, tool, begin_body)
        if begun.status != 200:
            return begun
        if tool in ("sms", "sms_armor"):
            self.t.say(f"    SMS to {begun.json()['sent_to']}: \"{await self._sms_text()}\"")
        body = await answer(begun.json())
        return await stepup.complete_tool(self.phone, cid, tool, body)

    async def approve(self, challenge: dict) -> str | None:
        """Run the tools this customer holds for the required tier; the approval token."""
        cid, tier = challenge["challenge_id"], int(challenge["required_tier"][1:])
        plan = {2: ["sms_armor"], 3: ["sms_armor"], 4: ["fido"], 5: ["hardware_cert"]}[max(2, tier)]
        if tier == 4 and self.prefer_cert:
            plan = ["cloud_cert"]
        done: ApiResponse | None = None
        for tool in plan:
            done = await self._tool(cid, tool, self._answer(tool))
            self.t.step(f"   complete {tool} over challenge {cid[:14]}...", done,
                        lambda r: r.status == 200)
        if done is None or done.status != 200 or done.json().get("status") != "approved":
            return None
        self.t.say(f"    approved: acr {done.json()['acr']}, amr {done.json()['amr']}")
        return str(done.json()["approval_token"])

    prefer_cert = False

    def _answer(self, tool: str):  # noqa: ANN202
        async def sms(_: dict) -> dict:
            return {"code": _CODE_RE.search(await self._sms_text()).group(1)}  # type: ignore[union-attr]

        def signer(key: ec.EllipticCurvePrivateKey):  # noqa: ANN202
            async def sign(options: dict) -> dict:
                payload = _unb64url(str(options["payload"]))
                return {"signature": _b64url(key.sign(payload, ec.ECDSA(hashes.SHA256())))}
            return sign

        async def fido(options: dict) -> dict:
            return {"response": self.wallet.fido.get(options["publicKey"], self.wallet.origin)}

        return {"sms_armor": sms, "sms": sms, "fido": fido,
                "cloud_cert": signer(self.wallet.cloud_key),
                "hardware_cert": signer(self.wallet.hardware_key)}[tool]

    async def transfer(self, title: str, amount: str, payee: str, source: str, *,
                       notice: bool = False) -> bool:
        headers = {"Idempotency-Key": f"demo-{amount}-{payee}"}
        if notice:
            headers["X-Large-Transfer-Notice"] = "confirmed"
        body = {"from_account": source, "payee_account": payee, "amount": amount, "currency": "CNY"}
        first = await self.phone.call("POST", "/v1/transfers", body, headers=headers)
        if first.status == 428:
            self.t.step(f"{title}: above 300,000 today, the large-transfer notice comes first", first,
                        lambda r: r.error == "large_transfer_notice_required")
            headers["X-Large-Transfer-Notice"] = "confirmed"
            first = await self.phone.call("POST", "/v1/transfers", body, headers=headers)
        self.t.step(f"{title}: the gateway asks for a step-up", first,
                    lambda r: r.status == 401 and r.error == "insufficient_user_authentication")
        if first.status != 401:
            return False
        approval = await self.approve(self.show_challenge(first))
        if approval is None:
            return False
        headers["X-Approval-Token"] = approval
        again = await self.phone.call("POST", "/v1/transfers", body, headers=headers)
        self.t.step(f"{title}: repeated with the approval", again, lambda r: r.status == 201)
        return again.status == 201

    async def enrol(self, tool: str, begin_body: dict, answer) -> bool:  # noqa: ANN001
        first = await stepup.enrol_begin(self.phone, tool, begin_body)
        self.t.step(f"enrol {tool}: a sensitive change, step-up first", first,
                    lambda r: r.status == 401 and r.error == "insufficient_user_authentication")
        if first.status != 401:
            return False
        approval = await self.approve(self.show_challenge(first))
        if approval is None:
            return False
        begun = await stepup.enrol_begin(self.phone, tool, begin_body, approval=approval)
        if begun.status != 200:
            self.t.step(f"enrol {tool}: begin", begun, lambda r: False)
            return False
        options = begun.json()
        done = await stepup.enrol_complete(self.phone, tool, {"enrolment_id": options["enrolment_id"],
                                                              **await answer(options)})
        self.t.step(f"enrol {tool}: done", done, lambda r: r.status == 201)
        return done.status == 201


async def stepup_chapter(t, stack, phone: MobileClient, wallet: Wallet, *, source: str, payee: str,  # noqa: ANN001
                         user_id: str) -> None:
    """20,000 with SMS armor, a FIDO2 key, 300,000 with a cloud certificate, 2,000,000 with a hardware key."""
    s = StepUp(t, stack, phone, wallet)
    t.say("")
    t.say("-- step-up: every approval is computed over the challenge and the transaction --")
    await s.transfer("transfer 20,000.00 CNY to Bob", "20000.00", payee, source)

    async def fido_answer(options: dict) -> dict:
        return {"response": wallet.fido.create(options["publicKey"], wallet.origin), "label": "demo key"}
    await s.enrol("fido", {}, fido_answer)
    await s.transfer("transfer 30,000.00 CNY to Bob (over 50,000 to others today: T4)", "30000.00",
                     payee, source)

    # The branch issues a hardware key: the admin API stands for the counter.
    admin = await stack.admin_call("POST", f"/admin/users/{user_id}/hardware-cert",
                                   {"csr": _csr(wallet.hardware_key)})
    t.step("the branch issues alice a hardware key certificate (admin API)", admin,
           lambda r: r.status == 201)

    async def csr_answer(_: dict) -> dict:
        return {"csr": _csr(wallet.cloud_key)}
    await s.enrol("cloud_cert", {}, csr_answer)
    s.prefer_cert = True
    await s.transfer("transfer 300,000.00 CNY to Bob", "300000.00",
                     payee, source)

    await s.transfer("transfer 2,000,000.00 CNY to Bob", "2000000.00",
                     payee, source, notice=True)
