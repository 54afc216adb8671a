"""A logged-in customer's HTTP surfaces: transfers (plain and JWE), step-up answers, tool enrolment.

Every request is correctly signed and carries the session, so the fuzzed
part reaches the parser behind the device check.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import httpx
import orjson
from hypothesis import given
from hypothesis import strategies as st

from mobile_client import MobileClient
from tests.auth_tools.fido_testkit import SoftAuthenticator
from tests.fuzz.fuzzing import FUZZ, assert_refused_as_json, edits, json_values, mutate
from tests.fuzz.webauthn_damage import damage
from tests.gateway.stepup_flows import (
    PAYEE_A,
    SOURCE,
    begin,
    challenge_of,
    complete,
    enrol,
    transfer,
)

ORIGIN = "http://localhost:8080"  # the [stepup] defaults: rp_id localhost
UPSTREAM_DOWN = ((502, "upstream_unavailable"), (504, "upstream_timeout"))
TOOLS = ["pwd", "face", "sms", "sms_armor", "totp", "biometric", "fido", "cloud_cert", "hardware_cert",
         "mtls_cert"]
transfer_docs = st.fixed_dictionaries({}, optional={
    "amount": st.sampled_from(["1.00", "20000.00", "0", "-1", "1e3", "0.001"]) | json_values,
    "currency": st.just("CNY") | json_values, "payee_account": st.just(PAYEE_A) | json_values,
    "from_account": st.just(SOURCE) | json_values, "memo": json_values})
bodies = st.one_of(st.binary(max_size=120), json_values.map(orjson.dumps), transfer_docs.map(orjson.dumps))
tool_answers = st.fixed_dictionaries({}, optional={
    "code": st.from_regex(r"[0-9]{6}", fullmatch=True) | json_values, "password": json_values,
    "response": json_values, "signature": json_values, "certificate": json_values,
    "label": json_values, "enrolment_id": json_values, "csr": json_values, "public_key": json_values})
# Path segments a client could put in a URL (percent-encoded when needed).
segments = st.one_of(st.sampled_from(TOOLS), st.text(max_size=12).filter(lambda t: t not in (".", "..")))


async def signed_post(http: httpx.AsyncClient, client: MobileClient, path: str, body: bytes, *,
                      content_type: str | None = "application/json",
                      headers: dict[str, str] | None = None) -> httpx.Response:
    signed = client.signed_headers("POST", path, body)
    signed["authorization"] = f"Bearer {client.session_token}"
    if content_type:
        signed["content-type"] = content_type
    return await http.post(path, content=body, headers={**signed, **(headers or {})})


@FUZZ
@given(body=bodies, idem=st.none() | st.text(max_size=20).map(lambda t: quote(t)),
       approval=st.none() | st.text(max_size=40).map(lambda t: quote(t)), notice=st.booleans())
async def test_any_transfer_body_is_answered_in_json(alice, http, body: bytes, idem, approval,  # noqa: ANN001
                                                     notice: bool) -> None:
    headers = {"idempotency-key": idem or f"t-{time.monotonic_ns()}"}
    if approval is not None:
        headers["x-approval-token"] = approval
    if notice:
        headers["x-large-transfer-notice"] = "confirmed"
    resp = await signed_post(http, alice, "/v1/transfers", body, headers=headers)
    assert_refused_as_json(resp, allowed_5xx=UPSTREAM_DOWN)


@FUZZ
@given(doc=transfer_docs, edit=st.none() | edits, garbage=st.none() | st.binary(max_size=200))
async def test_any_encrypted_transfer_is_answered_in_json(alice, http, doc, edit, garbage) -> None:  # noqa: ANN001
    plaintext = orjson.dumps(doc)
    token = alice.cipher.encrypt(plaintext)
    if edit is not None:
        token = mutate(token, edit)
    if garbage is not None:
        token = garbage
    headers = alice.signed_headers("POST", "/v1/transfers", plaintext)
    headers.update({"authorization": f"Bearer {alice.session_token}", "content-type": "application/jose",
                    "accept": "application/jose", "idempotency-key": f"t-{time.monotonic_ns()}"})
    resp = await http.post("/v1/transfers", content=token, headers=headers)
    assert_refused_as_json(resp, allowed_5xx=UPSTREAM_DOWN, decrypt=alice.cipher.decrypt)


@FUZZ
@given(real=st.booleans(), challenge_id=st.text(max_size=30), tool=segments,
       step=st.sampled_from(["begin", "complete"]),
       body=st.one_of(st.binary(max_size=80), json_values.map(orjson.dumps), tool_answers.map(orjson.dumps)))
async def test_any_step_up_answer_is_answered_in_json(alice, http, real: bool, challenge_id: str,  # noqa: ANN001
                                                      tool: str, step: str, body: bytes) -> None:
    if real:
        challenge_id = challenge_of(await transfer(alice, "20000.00"))["challenge_id"]
    path = f"/auth/challenges/{quote(challenge_id, safe='')}/{quote(tool, safe='')}/{step}"
    # The device signs the path as the gateway sees it (percent-decoded).
    signed_path = f"/auth/challenges/{challenge_id}/{tool}/{step}"
    headers = alice.signed_headers("POST", signed_path.replace("?", "%3F"), body)
    headers.update({"authorization": f"Bearer {alice.session_token}", "content-type": "application/json"})
    assert_refused_as_json(await http.post(path, content=body, headers=headers))


@FUZZ
@given(tool=segments, step=st.sampled_from(["enrol/begin", "enrol/complete"]),
       body=st.one_of(st.binary(max_size=80), json_values.map(orjson.dumps), tool_answers.map(orjson.dumps)))
async def test_any_tool_enrolment_is_answered_in_json(alice, http, tool: str, step: str, body: bytes) -> None:  # noqa: ANN001
    path = f"/auth/tools/{quote(tool, safe='')}/{step}"
    headers = alice.signed_headers("POST", f"/auth/tools/{tool}/{step}".replace("?", "%3F"), body)
    headers.update({"authorization": f"Bearer {alice.session_token}", "content-type": "application/json"})
    assert_refused_as_json(await http.post(path, content=body, headers=headers))


@FUZZ
@given(spoil=damage(), amount=st.sampled_from(["20000.00", "200000.00"]))
async def test_damaged_security_key_answer_is_answered_in_json(gw, alice, spoil, amount: str) -> None:  # noqa: ANN001
    key = getattr(alice, "fuzz_key", None)
    if key is None:  # one registered security key serves every example
        key = alice.fuzz_key = SoftAuthenticator()
        done = await enrol(alice, gw, "fido", lambda o: {"response": key.create(o["publicKey"], ORIGIN)})
        assert done.status == 201, done.json()
    cid = challenge_of(await transfer(alice, amount))["challenge_id"]
    begun = await begin(alice, cid, "fido")
    assert begun.status == 200, begun.json()
    answer = spoil(key.get(begun.json()["publicKey"], ORIGIN))
    assert_refused_as_json(await complete(alice, cid, "fido", {"response": answer}))


SESSION_CALLS = [("PUT", "/auth/limits/{}"), ("GET", "/auth/limits"), ("POST", "/devices/bind"),
                 ("DELETE", "/devices/{}"), ("GET", "/devices"), ("GET", "/auth/tools"),
                 ("DELETE", "/auth/tools/{}/x"),
                 ("GET", "/v1/accounts/{}/balance"), ("POST", "/v1/payees")]
limit_docs = st.fixed_dictionaries({}, optional={
    "amount": st.sampled_from(["1000.00", "0", "99999999999999.99"]) | json_values,
    "daily": json_values, "per_transaction": json_values, "tier": json_values, "account": json_values})


@FUZZ
@given(call=st.sampled_from(SESSION_CALLS), segment=segments,
       body=st.one_of(st.binary(max_size=80), json_values.map(orjson.dumps), limit_docs.map(orjson.dumps)),
       query=st.dictionaries(st.text(max_size=6), st.text(max_size=10), max_size=2))
async def test_any_customer_call_is_answered_in_json(alice, http, call, segment: str, body: bytes,  # noqa: ANN001
                                                     query: dict[str, str]) -> None:
    method, template = call
    path = template.format(quote(segment, safe=""))
    query_string = httpx.QueryParams(query).__str__()
    signed_path = template.format(segment).replace("?", "%3F") + (f"?{query_string}" if query_string else "")
    body = b"" if method in ("GET", "DELETE") else body
    headers = alice.signed_headers(method, signed_path, body)
    headers.update({"authorization": f"Bearer {alice.session_token}", "content-type": "application/json"})
    resp = await http.request(method, path + (f"?{query_string}" if query_string else ""), content=body or None,
                              headers=headers)
    assert_refused_as_json(resp, allowed_5xx=UPSTREAM_DOWN)
