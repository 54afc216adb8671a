"""Damage to a WebAuthn response document: what a tampering client or a flaky key may send."""

from __future__ import annotations

import copy

import orjson
from fido2 import cbor
from hypothesis import strategies as st

from tests.auth_tools.fido_testkit import b64url, unb64url
from tests.fuzz.fuzzing import edits, json_values, mutate

BINARY_FIELDS = ("clientDataJSON", "attestationObject", "authenticatorData", "signature", "userHandle")
cbor_values = st.recursive(
    st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1) | st.binary(max_size=40)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=8) | st.integers(-8, 8), children, max_size=4),
    max_leaves=12,
)


@st.composite
def damage(draw):  # noqa: ANN201 - a function from a response document to a damaged copy
    kind = draw(st.sampled_from(["replace", "drop", "bytes", "client_data", "cbor", "none"]))
    inner = draw(st.booleans())
    top = draw(st.sampled_from(["id", "rawId", "type", "response", "authenticatorAttachment",
                                "clientExtensionResults"]))
    field = draw(st.sampled_from(BINARY_FIELDS + ("transports",)))
    value = draw(json_values)
    edit = draw(edits)
    client_field = draw(st.sampled_from(["type", "challenge", "origin", "crossOrigin", "tokenBinding"]))
    att_field = draw(st.sampled_from(["fmt", "attStmt", "authData"]))
    cbor_value = draw(cbor_values)

    def apply(doc: dict) -> dict:
        doc = copy.deepcopy(doc)
        response = doc["response"]
        if kind == "replace":
            (response if inner else doc)[field if inner else top] = value
        elif kind == "drop":
            (response if inner else doc).pop(field if inner else top, None)
        elif kind == "bytes" and isinstance(response.get(field), str):
            response[field] = b64url(mutate(unb64url(response[field]), edit))
        elif kind == "client_data":
            client = orjson.loads(unb64url(response["clientDataJSON"]))
            client[client_field] = value
            response["clientDataJSON"] = b64url(orjson.dumps(client))
        elif kind == "cbor" and "attestationObject" in response:
            att = cbor.decode(unb64url(response["attestationObject"]))
            att[att_field] = cbor_value
            response["attestationObject"] = b64url(cbor.encode(att))
        return doc

    return apply
