"""Shared pieces of the fuzz tests: the hypothesis settings and the HTTP verdict.

Every property says the same thing of one parser: on any input it either
returns its result or raises its own typed error; over HTTP the answer is a
4xx JSON body with an ``error`` code, never a 5xx or a traceback.

``RISKGATE_FUZZ_EXAMPLES`` raises the number of examples for a longer run.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import orjson
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

# One harness per test function serves every example of that test.
FUZZ = settings(
    max_examples=int(os.environ.get("RISKGATE_FUZZ_EXAMPLES", "60")), deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                           HealthCheck.filter_too_much, HealthCheck.data_too_large],
)
settings.register_profile("riskgate-fuzz", FUZZ)

# Any JSON document (what an attacker can put in a body).
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)


def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
    """``data`` with each (kind, position, byte) edit applied: 0 flip, 1 insert, 2 delete, 3 cut."""
    out = bytearray(data)
    for kind, pos, value in edits:
        if not out:
            out.append(value)
            continue
        i = pos % len(out)
        if kind == 0:
            out[i] ^= value or 1
        elif kind == 1:
            out.insert(i, value)
        elif kind == 2:
            del out[i]
        else:
            del out[i:]
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 3), st.integers(0, 2**16), st.integers(0, 255)),
                 min_size=1, max_size=4)


def assert_refused_as_json(resp: object, *, allowed_5xx: tuple[tuple[int, str], ...] = (),
                           decrypt: Callable[[bytes], bytes] | None = None) -> dict[str, object]:
    """A 4xx JSON error body with a stable code; never a 5xx, never a traceback.

    ``resp`` is an httpx response or a mobile client's ApiResponse; ``decrypt``
    opens an ``application/jose`` answer; ``allowed_5xx`` lists (status, error)
    pairs that are the documented answer of an unreachable upstream.
    """
    status: int = resp.status_code if hasattr(resp, "status_code") else resp.status  # type: ignore[attr-defined]
    content: bytes = resp.content if hasattr(resp, "content") else resp.body  # type: ignore[attr-defined]
    headers = {k.lower(): v for k, v in resp.headers.items()}  # type: ignore[attr-defined]
    if decrypt is not None and headers.get("content-type", "").startswith("application/jose"):
        content = decrypt(content)
    assert b"Traceback" not in content
    if status < 400:
        return {}
    doc = orjson.loads(content)
    assert isinstance(doc, dict) and isinstance(doc.get("error"), str) and doc["error"], doc
    assert status < 500 or (status, doc["error"]) in allowed_5xx, (status, doc)
    return doc
