"""The admin API's authorisation, over every operation its OpenAPI document lists: no
session is 401, an unsafe call without the CSRF token or from another site is 403, a role
without the permission is 403, and none of these refusals changes anything. The
document and the mounted routes match both ways; the session cookie reaches /admin/api
and never /v1."""

from __future__ import annotations

import re

from starlette.routing import Mount

from gateway.admin_api import OPENAPI
from gateway.console.analysts import Permission, Role
from tests.admin_api.conftest import API
from tests.console.decisions import history

UNSAFE = {"post", "put", "patch", "delete"}
SESSIONS = b"{console:sessions}:"


def _operations() -> list[tuple[str, str, dict]]:
    return [(method.upper(), path, op) for path, ops in OPENAPI["paths"].items()
            for method, op in ops.items()]


def _mounted(app) -> dict[str, set[str]]:
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == API]
    found: dict[str, set[str]] = {}
    for route in mount.routes:
        found.setdefault(route.path, set()).update(m for m in route.methods if m != "HEAD")
    return found


def _endpoints(app) -> dict[tuple[str, str], object]:
    [mount] = [r for r in app.routes if isinstance(r, Mount) and r.path == API]
    return {(m, r.path): r.endpoint for r in mount.routes for m in r.methods if m != "HEAD"}


async def test_the_document_lists_every_mounted_route_and_nothing_else(console):
    documented = {path: {m.upper() for m in ops} for path, ops in OPENAPI["paths"].items()}
    assert documented == _mounted(console.gw.app)
    endpoints = _endpoints(console.gw.app)
    for method, path, op in _operations():
        # the permissions a role needs are those the handler checks
        assert op["x-riskgate-permissions"] == [p.value for p in endpoints[method, path].permissions]
        csrf = {"$ref": "#/components/parameters/CsrfToken"} in op["parameters"]
        assert csrf == (method.lower() in UNSAFE), (method, path)
        assert set(op["responses"]) >= {"400", "401", "403"}
        for name in re.findall(r"{(\w+)}", path):  # every path parameter is described
            assert any(p.get("name") == name and p["in"] == "path" for p in op["parameters"])


async def test_the_document_is_served_to_a_signed_in_analyst(signed_in):
    viewer = await signed_in("vera", Role.VIEWER)
    doc = await viewer.call("GET", "/openapi.json")
    assert doc.status_code == 200 and doc.json() == OPENAPI
    assert doc.headers["cache-control"] == "no-store"
    assert doc.json()["components"]["securitySchemes"]["consoleSession"]["in"] == "cookie"


async def _state(redis) -> dict[bytes, bytes]:
    """Every key's value (sessions aside: their idle timeout slides with each request)."""
    keys = [k for k in await redis.keys("*") if not k.startswith(SESSIONS)]
    return {k: await redis.dump(k) for k in keys}


async def test_every_operation_refuses_without_session_csrf_or_role(console, signed_in):
    gw = console.gw
    await history(gw)
    by_role = {role: await signed_in(f"user-{role.value}", role) for role in Role}
    author = by_role[Role.RULE_AUTHOR]
    rule = {"id": "big", "effect": "add_score", "score": 0.3, "expression": "amount_cny > 1000"}
    made = [await author.call("POST", "/rules/proposals", {"rules": [rule], "reason": "r"})
            for _ in range(2)]
    assert [m.status_code for m in made] == [201, 201], made[0].text
    invited = await by_role[Role.ADMIN].call("POST", "/analysts", {"name": "target", "role": "viewer"})
    assert invited.status_code == 201, invited.text
    sample = {"decision_id": "ok0", "version": "1", "proposal_id": made[0].json()["id"],
              "name": "target"}
    queries = {"/rules/diff": "?from=1&to=1"}
    bodies = {  # each would be accepted with the right session, token and role
        ("POST", "/decisions/{decision_id}/label"): {"verdict": "fraud"},
        ("POST", "/rules/validate"): {"text": "[]"},
        ("POST", "/rules/backtest"): {"rules": [rule]},
        ("POST", "/rules/rollback"): {"version": 1, "reason": "r"},
        ("POST", "/rules/proposals"): {"rules": [rule], "reason": "r"},
        ("POST", "/rules/proposals/{proposal_id}/reject"): {"reason": "r"},
        ("PUT", "/ops"): {"business": {"transfer": False}, "reason": "r"},
        ("POST", "/ops/rollback"): {"version": 1, "reason": "r"},  # the one PUT /ops makes
        ("POST", "/analysts"): {"name": "eve", "role": "admin"},
        ("POST", "/analysts/{name}/role"): {"role": "admin"},
    }
    before = await _state(gw.services.redis)
    anonymous = console.http()
    checked_roles = 0
    for method, template, op in _operations():
        path = template.format(**sample) + queries.get(template, "")
        body = bodies.get((method, template))
        where = f"{method} {template}"

        r = await anonymous.request(method, API + path, json=body)
        assert (r.status_code, r.json()["error"]) == (401, "console_sign_in_required"), where

        allowed = {Permission(p) for p in op["x-riskgate-permissions"]}
        lacking = [role for role in Role if not role.permissions & allowed]
        some = by_role[Role.ADMIN] if not lacking else by_role[lacking[0]]
        if method.lower() in UNSAFE:
            for token in ("", "forged-token", some.csrf[:-1]):
                r = await some.call(method, path, body, csrf=token)
                assert (r.status_code, r.json()["error"]) == (403, "csrf_invalid"), (where, token)
            # another user's token is not this session's
            other = by_role[Role.VIEWER if some is not by_role[Role.VIEWER] else Role.ANALYST]
            r = await some.call(method, path, body, csrf=other.csrf)
            assert (r.status_code, r.json()["error"]) == (403, "csrf_invalid"), where
            r = await some.call(method, path, body, headers={"origin": "https://evil.example"})
            assert (r.status_code, r.json()["error"]) == (403, "origin_refused"), where
        if lacking:
            checked_roles += 1
            for role in lacking:
                r = await by_role[role].call(method, path, body)
                assert (r.status_code, r.json()["error"]) == (403, "console_role_forbidden"), \
                    (where, role)

    assert checked_roles == sum(1 for _m, _p, op in _operations()
                                if op["x-riskgate-permissions"] != ["view"])
    # no audit entry, label, proposal, rule version, ops version or analyst came of it
    assert await _state(gw.services.redis) == before

    # while with the session, its token and a role that may, each call does its work
    for method, template, op in _operations():
        allowed = {Permission(p) for p in op["x-riskgate-permissions"]}
        who = next(by_role[role] for role in (Role.VIEWER, Role.ANALYST, Role.RULE_AUTHOR,
                                              Role.APPROVER, Role.ADMIN)
                   if role.permissions & allowed)
        if (method, template) == ("DELETE", "/session"):
            continue  # signing out is tested below
        if template.endswith("/reject"):  # the first one is approved by now
            sample["proposal_id"] = made[1].json()["id"]
        path = template.format(**sample) + queries.get(template, "")
        r = await who.call(method, path, bodies.get((method, template)))
        assert r.status_code in (200, 201), (method, template, who.name, r.text)


async def test_session_cookie_reaches_the_admin_api_and_never_v1(console, signed_in):
    alice = await signed_in("alice", Role.ANALYST)
    cookies = {c.path: c for c in alice.http.cookies.jar if c.name == "riskgate_console"}
    assert set(cookies) == {"/console", "/admin/api"}
    api = cookies["/admin/api"]
    assert api.value == cookies["/console"].value and api.has_nonstandard_attr("HttpOnly")
    assert api.get_nonstandard_attr("SameSite").lower() == "strict"

    session = await alice.http.get(f"{API}/session")
    assert "riskgate_console=" in session.request.headers["cookie"]
    assert session.json() == {"name": "alice", "role": "analyst", "permissions": ["label", "view"],
                              "csrf": alice.csrf}
    for path in ("/v1/accounts/6222020000000001/balance", "/v1/transfers", "/v1", "/admin/users"):
        r = await alice.http.get(path)
        assert "cookie" not in r.request.headers, path

    # signing out over the API ends the session for the console pages too, and clears both
    out = await alice.call("DELETE", "/session")
    assert out.status_code == 200, out.text
    assert not [c for c in alice.http.cookies.jar if c.name == "riskgate_console"]
    assert await console.gw.services.redis.keys(SESSIONS.decode() + "*") == []
    r = await alice.http.get(f"{API}/session")
    assert (r.status_code, r.json()["error"]) == (401, "console_sign_in_required")


async def test_console_sign_out_clears_the_admin_api_cookie(console, signed_in):
    bob = await signed_in("bob", Role.VIEWER)
    out = await bob.http.post("/console/logout", data={"csrf": bob.analyst.csrf})
    assert out.status_code == 303
    assert not [c for c in bob.http.cookies.jar if c.name == "riskgate_console"]
    # and the token, replayed by hand, no longer opens anything
    again = await bob.http.get(f"{API}/session")
    assert again.status_code == 401


async def test_a_removed_or_demoted_analyst_loses_access_at_once(signed_in):
    root = await signed_in("root", Role.ADMIN)
    carol = await signed_in("carol", Role.APPROVER)
    changed = await root.call("POST", "/analysts/carol/role", {"role": "viewer"})
    assert changed.status_code == 200 and changed.json()["previous"] == "approver"
    r = await carol.call("POST", "/rules/proposals/p_1/approve")
    assert (r.status_code, r.json()["error"]) == (403, "console_role_forbidden")
    assert (await root.call("DELETE", "/analysts/carol")).status_code == 200
    r = await carol.call("GET", "/session")
    assert (r.status_code, r.json()["error"]) == (401, "console_sign_in_required")


async def test_bodies_are_json_objects(signed_in):
    alice = await signed_in("alice", Role.ANALYST)
    r = await alice.http.post(f"{API}/decisions/d1/label", content=b"verdict=fraud",
                              headers={"x-csrf-token": alice.csrf,
                                       "content-type": "application/x-www-form-urlencoded"})
    assert (r.status_code, r.json()["error"]) == (400, "unsupported_media_type")
    r = await alice.http.post(f"{API}/decisions/d1/label", content=b"[1]",
                              headers={"x-csrf-token": alice.csrf, "content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    r = await alice.http.post(f"{API}/decisions/d1/label", content=b"{",
                              headers={"x-csrf-token": alice.csrf, "content-type": "application/json"})
    assert (r.status_code, r.json()["error"]) == (400, "invalid_json")
    # the CSRF token is checked before the body is read: a form field does not count
    r = await alice.http.post(f"{API}/decisions/d1/label", data={"csrf": alice.csrf, "verdict": "fraud"})
    assert (r.status_code, r.json()["error"]) == (403, "csrf_invalid")
