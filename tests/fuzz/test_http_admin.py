"""Bank-side HTTP surfaces (admin and carrier tokens): any body gets a 4xx JSON error, never a 5xx.

These callers are trusted, but their input still comes from other systems
and people: a bad CSR, rule set or report must be refused, not crash.
"""

from __future__ import annotations

import base64
import time

import orjson
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given
from hypothesis import strategies as st

from tests.fuzz.fuzzing import FUZZ, assert_refused_as_json, edits, json_values, mutate
from tests.fuzz.rule_strategies import rule_docs
from tests.gateway.conftest import PASSWORD
from tests.gateway.device_flows import CARRIER_TOKEN
from tests.gateway.stepup_flows import ADMIN_TOKEN

ADMIN = {"authorization": f"Bearer {ADMIN_TOKEN}", "content-type": "application/json"}
CSR = (x509.CertificateSigningRequestBuilder()
       .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "usb key")]))
       .sign(ec.generate_private_key(ec.SECP256R1()), hashes.SHA256())
       .public_bytes(serialization.Encoding.DER))


def pem(der: bytes) -> bytes:
    text = base64.encodebytes(der)
    return b"-----BEGIN CERTIFICATE REQUEST-----\n" + text + b"-----END CERTIFICATE REQUEST-----\n"


people = st.sampled_from(["analyst.li", "analyst.li", "analyst.li", "", "x" * 200]) | json_values
admin_docs = st.one_of(
    json_values,
    st.fixed_dictionaries({"user_id": st.sampled_from(["bob", "alice", "", "a/b"]) | json_values,
                           "password": st.just(PASSWORD) | json_values},
                          optional={"phone": st.just("+8613800138000") | json_values,
                                    "accounts": json_values | st.just({"6222020000000001": "I"})}),
    st.fixed_dictionaries({"rules": st.lists(rule_docs, max_size=2) | json_values,
                           "author": people, "reason": st.just("fuzz") | json_values},
                          optional={"version": json_values}),
    st.fixed_dictionaries({}, optional={"decision_id": json_values, "label": json_values,
                                        "analyst": people, "user_id": json_values, "reason": json_values,
                                        "kind": json_values, "at": json_values, "source": json_values}),
)
ADMIN_POSTS = ["/admin/users", "/admin/rules", "/admin/rules/rollback", "/admin/rule-proposals",
               "/admin/labels", "/admin/fraud-reports", "/admin/console/labels",
               "/admin/rule-proposals/p1/approve", "/admin/rule-proposals/p1/reject",
               "/admin/certificates/ff/revoke"]


@FUZZ
@given(path=st.sampled_from(ADMIN_POSTS),
       body=st.one_of(st.binary(max_size=100), admin_docs.map(orjson.dumps)))
async def test_any_admin_body_is_answered_in_json(http, path: str, body: bytes) -> None:  # noqa: ANN001
    assert_refused_as_json(await http.post(path, content=body, headers=ADMIN))


@FUZZ
@given(edit=st.none() | edits, as_pem=st.booleans(), wrap=st.sampled_from(["raw", "json", "junk"]),
       junk=json_values)
async def test_any_hardware_csr_upload_is_answered_in_json(gw, http, edit, as_pem: bool, wrap: str,  # noqa: ANN001
                                                           junk: object) -> None:
    if not await gw.services.users.exists("alice"):
        await gw.services.users.create("alice", PASSWORD, time.time())
    der = CSR if edit is None else mutate(CSR, edit)
    body = pem(der) if as_pem else der
    if wrap == "json":
        body = orjson.dumps({"csr": body.decode("latin-1")})
    elif wrap == "junk":
        body = orjson.dumps({"csr": junk})
    resp = await http.post("/admin/users/alice/hardware-cert", content=body, headers=ADMIN)
    assert_refused_as_json(resp)


@FUZZ
@given(body=st.one_of(st.binary(max_size=100), json_values.map(orjson.dumps), st.fixed_dictionaries(
    {"user_id": st.sampled_from(["alice", "nobody"]) | json_values},
    optional={"kind": st.sampled_from(["sim_swap", "port_out"]) | json_values,
              "at": json_values | st.floats(), "source": json_values}).map(orjson.dumps)))
async def test_any_sim_swap_report_is_answered_in_json(gw, http, body: bytes) -> None:  # noqa: ANN001
    if not await gw.services.users.exists("alice"):
        await gw.services.users.create("alice", PASSWORD, time.time())
    resp = await http.post("/carrier/sim-swaps", content=body,
                           headers={"authorization": f"Bearer {CARRIER_TOKEN}",
                                    "content-type": "application/json"})
    assert_refused_as_json(resp)


ADMIN_GETS = ["/admin/decisions", "/admin/console/decisions", "/admin/rule-proposals", "/admin/audit",
              "/admin/rules", "/admin/audit/verify", "/admin/rule-proposals/p1"]
query_values = st.one_of(st.text(max_size=20), st.sampled_from(["\u00b2", "\u0661", "9" * 5000, "-1", "0",
                                                                "1-1", "approved", "high"]))


@FUZZ
@given(path=st.sampled_from(ADMIN_GETS),
       query=st.dictionaries(st.sampled_from(["count", "before", "status", "outcome", "level", "user",
                                              "rule", "action"]), query_values, max_size=3))
@example(path="/admin/decisions", query={"count": "\u00b2"})
@example(path="/admin/audit", query={"before": "\u00b2"})
@example(path="/admin/console/decisions", query={"count": "9" * 5000})
@example(path="/admin/console/decisions", query={"before": "99999999999999999999-1"})
async def test_any_admin_query_is_answered_in_json(http, path: str, query: dict[str, str]) -> None:  # noqa: ANN001
    assert_refused_as_json(await http.get(path, params=query, headers=ADMIN))
