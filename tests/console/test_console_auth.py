"""Console sign-in: enrolment links, passkeys, the session cookie, CSRF and roles."""

from __future__ import annotations

import asyncio
import re

import pytest

from gateway.cli import build_parser
from gateway.console.analysts import Role
from gateway.console.auth import IDLE_TIMEOUT
from tests.console.conftest import ORIGIN, Analyst


def _riskgate(*argv: str) -> int:
    """The CLI command as `riskgate ...` runs it (without re-configuring logging)."""
    args = build_parser().parse_args(list(argv))
    return int(args.func(args) or 0)


async def test_cli_prints_a_one_time_link_that_enrols_a_passkey(console, tmp_path, capsys):
    gw = console.gw
    conf = tmp_path / "riskgate.toml"
    conf.write_text(f'[redis]\nurl = "{gw.config.redis.url}"\n[server]\ndata_dir = "{tmp_path / "cli"}"\n')
    code = await asyncio.to_thread(_riskgate, "admin", "create", "root", "--config", str(conf))
    out = capsys.readouterr().out
    assert code == 0, out
    link = re.search(r"(http://localhost:8080/console/enrol\?token=\S+)", out).group(1)
    token = link.split("token=", 1)[1]
    # only a hash of the token is stored
    assert not [k for k in await gw.services.redis.keys("*") if token.encode() in k]

    root = Analyst("root", console.http())
    page = await root.http.get(link.removeprefix(ORIGIN))
    assert page.status_code == 200 and "Register a passkey for root" in page.text
    assert page.headers["referrer-policy"] == "same-origin"
    done = await root.enrol(token)
    assert done.status_code == 200, done.text
    assert (await root.http.get("/console/decisions")).status_code == 200

    # the link worked once
    again = await Analyst("root", console.http()).http.post("/console/enrol/begin", json={"token": token})
    assert (again.status_code, again.json()["error"]) == (404, "enrolment_link_invalid")
    # the same name cannot be created twice
    code = await asyncio.to_thread(_riskgate, "admin", "create", "ROOT", "--config", str(conf))
    assert code == 1 and "already exists" in capsys.readouterr().err


async def test_sign_in_with_the_passkey_and_sign_out(console):
    alice = await console.analyst("alice", Role.ANALYST)
    fresh = Analyst("alice", console.http(), alice.authenticator)
    assert (await fresh.http.get("/console/decisions")).status_code == 303
    signed = await fresh.sign_in()
    assert signed.status_code == 200, signed.text
    assert signed.json()["redirect"] == "/console/decisions"
    await fresh.refresh_csrf()
    out = await fresh.http.post("/console/logout", data={"csrf": fresh.csrf})
    assert out.status_code == 303
    gone = await fresh.http.get("/console/decisions")
    assert gone.status_code == 303 and gone.headers["location"].startswith("/console/login")


async def test_sign_in_refusals(console):
    alice = await console.analyst("alice", Role.ANALYST)
    stranger = Analyst("alice", console.http())  # another authenticator, never enrolled
    begun = await stranger.http.post("/console/login/begin", json={"name": "alice"})
    forged = stranger.authenticator.create({"rp": {"id": "localhost"}, "user": {"id": "AA"},
                                            "challenge": begun.json()["publicKey"]["challenge"]}, ORIGIN)
    refused = await stranger.http.post("/console/login/complete", json={
        "ceremony": begun.json()["ceremony"], "response": forged})
    assert refused.status_code in (400, 401) and refused.json()["error"] in (
        "sign_in_failed", "fido_response_malformed")
    unknown = await stranger.http.post("/console/login/begin", json={"name": "nobody"})
    assert (unknown.status_code, unknown.json()["error"]) == (401, "sign_in_failed")
    # no user verification (PIN or biometric) on the authenticator: refused
    alice.authenticator.uv = False
    no_uv = await Analyst("alice", console.http(), alice.authenticator).sign_in()
    assert (no_uv.status_code, no_uv.json()["error"]) == (401, "fido_user_verification_missing")
    # a passkey answer from another site is refused before anything else
    other = await stranger.http.post("/console/login/begin", json={"name": "alice"},
                                     headers={"origin": "https://evil.example"})
    assert (other.status_code, other.json()["error"]) == (403, "origin_refused")


async def test_session_cookie_is_http_only_strict_and_idles_out(console):
    alice = await console.analyst("alice", Role.VIEWER)
    # the same session for the console pages and the admin API, never for the whole site
    cookies = {c.path: c for c in alice.http.cookies.jar if c.name == "riskgate_console"}
    assert set(cookies) == {"/console", "/admin/api"}
    cookie = cookies["/console"]
    assert cookies["/admin/api"].value == cookie.value
    for c in cookies.values():
        assert not c.secure and c.has_nonstandard_attr("HttpOnly")
        assert c.get_nonstandard_attr("SameSite").lower() == "strict"
    redis = console.gw.services.redis
    [key] = await redis.keys("{console:sessions}:*")
    assert cookie.value.encode() not in key  # only a hash of the cookie is stored
    assert 0 < await redis.ttl(key) <= IDLE_TIMEOUT == 15 * 60
    await redis.expire(key, 60)  # 14 minutes idle: a request slides the timeout back to 15
    assert (await alice.http.get("/console/audit")).status_code == 200
    assert await redis.ttl(key) > 60
    await redis.delete(key)  # what Redis does once 15 minutes pass without a request
    assert (await alice.http.get("/console/audit")).status_code == 303
    refused = await alice.post("/console/decisions/x/label", {"verdict": "fraud"})
    assert (refused.status_code, refused.json()["error"]) == (401, "console_sign_in_required")


async def test_cookie_is_secure_over_https(console):
    bob = await console.analyst("bob", Role.VIEWER, base_url="https://localhost:8080")
    cookies = [c for c in bob.http.cookies.jar if c.name == "riskgate_console"]
    assert len(cookies) == 2 and all(c.secure for c in cookies)


# Every console action, with a body that would otherwise be acceptable.
ACTIONS = [
    ("/console/decisions/d1/label", {"verdict": "fraud"}, Role.VIEWER),
    ("/console/rules/validate", {"text": "[]"}, Role.ANALYST),
    ("/console/rules/backtest", {"text": "[]"}, Role.ANALYST),
    ("/console/rules/proposals", {"text": "[]", "reason": "r"}, Role.APPROVER),
    ("/console/rules/proposals/p_1/approve", {}, Role.RULE_AUTHOR),
    ("/console/rules/proposals/p_1/reject", {"reason": "r"}, Role.VIEWER),
    ("/console/analysts", {"name": "eve", "role": "admin"}, Role.APPROVER),
    ("/console/logout", {}, None),
]
PAGES = ["/console/decisions", "/console/decisions/d1", "/console/review", "/console/rules",
         "/console/rules/edit", "/console/rules/proposals/p_1", "/console/audit", "/console/analysts"]


async def test_every_action_needs_a_session_csrf_and_the_role(console):
    anonymous = console.http()
    for path, body, _role in ACTIONS:
        r = await anonymous.post(path, json=body)
        assert (r.status_code, r.json()["error"]) == (401, "console_sign_in_required"), path
        r = await anonymous.post(path, data=body)
        assert r.status_code == 401, path
    for path in PAGES:
        r = await anonymous.get(path)
        assert r.status_code == 303 and r.headers["location"].startswith("/console/login?next="), path

    by_role = {role: await console.analyst(f"user-{role.value}", role)
               for role in {r for _p, _b, r in ACTIONS if r}}
    for path, body, role in ACTIONS:
        who = by_role.get(role) or by_role[Role.VIEWER]
        r = await who.post(path, body, csrf=False)
        assert (r.status_code, r.json()["error"]) == (403, "csrf_invalid"), path
        who.csrf, real = "forged-token", who.csrf
        r = await who.post(path, body)
        assert (r.status_code, r.json()["error"]) == (403, "csrf_invalid"), path
        who.csrf = real
        r = await who.http.post(path, json=body, headers={"x-csrf-token": real,
                                                          "origin": "https://evil.example"})
        assert (r.status_code, r.json()["error"]) == (403, "origin_refused"), path
        if role is not None:
            r = await who.post(path, body)
            assert (r.status_code, r.json()["error"]) == (403, "console_role_forbidden"), (path, role)

    viewer = by_role[Role.VIEWER]
    for path in ("/console/rules/edit", "/console/analysts"):
        r = await viewer.http.get(path)
        assert (r.status_code, r.json()["error"]) == (403, "console_role_forbidden"), path
    # nothing refused above reached the audit trail
    assert await console.gw.services.redis.exists("{console:audit}:log") == 0


@pytest.mark.parametrize("role, allowed", [
    (Role.VIEWER, set()), (Role.ANALYST, {"label"}), (Role.RULE_AUTHOR, {"label", "propose_rules"}),
    (Role.APPROVER, {"label", "approve_rules"}),
    (Role.ADMIN, {"label", "propose_rules", "approve_rules", "manage_analysts", "manage_ops"})])
def test_roles(role, allowed):
    assert {p.value for p in role.permissions} == allowed | {"view"}


async def test_admin_invites_an_analyst_from_the_console(console):
    root = await console.analyst("root", Role.ADMIN)
    r = await root.post("/console/analysts", {"name": "dana", "role": "approver"})
    assert r.status_code == 200, r.text
    link = r.json()["link"]
    dana = Analyst("dana", console.http())
    assert (await dana.enrol(link.split("token=", 1)[1])).status_code == 200
    await dana.refresh_csrf()
    page = await dana.http.get("/console/rules")
    assert "dana (approver)" in page.text
    trail = await console.gw.services.redis.lrange("{console:audit}:log", 0, -1)
    assert b'"analyst.create"' in trail[0] and b'"actor":"root"' in trail[0]
