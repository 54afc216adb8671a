"""The console in real Chromium with its CDP virtual authenticator (passkeys with UV).

A real uvicorn on 127.0.0.1 serves the gateway; the browser uses the origin
http://localhost:PORT (RP ID ``localhost``). Two analysts enrol passkeys from
their one-time links and sign in; one labels a decision, writes a rule with a
syntax error, sees it, fixes it, backtests it and submits it; the other
approves it; the rule's hits then appear in the feed. A screenshot of each
page is saved under ``artifacts/console-screenshots/<test>/`` (printed at the end).
A second scenario walks the admin's pages: the model's plots, a decision's model
contributions, an operations switch stopped and resumed, a rule version's diff and a
rollback that a second analyst approves.
Needs Debian's ``chromium`` and the ``playwright`` package (never ``playwright install``).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import socket
import time
from pathlib import Path

import pytest
import uvicorn

from gateway.console.analysts import AnalystStore, Role, create_with_link
from risk_engine import LabelSource, ModelSnapshot, RuleSet, default_model, submit_label
from tests.console.decisions import TAKEOVER_RULE, decide, facts, history

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "console-screenshots"

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"]

pytestmark = pytest.mark.slow


class Browser:
    """One analyst: a browser context with a virtual passkey authenticator."""

    def __init__(self, page, origin: str, shots, name: str) -> None:
        self.page, self.origin, self.shots, self.name = page, origin, shots, name

    async def shot(self, label: str) -> None:
        await self.page.screenshot(path=str(self.shots / f"{len(list(self.shots.iterdir())):02d}-{label}.png"),
                                   full_page=True)

    async def goto(self, path: str) -> None:
        await self.page.goto(self.origin + path)


async def _analyst(browser, origin: str, shots, gw, name: str, role: Role) -> Browser:
    context = await browser.new_context()
    page = await context.new_page()
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable", {"enableUI": False})
    await cdp.send("WebAuthn.addVirtualAuthenticator", {"options": {
        "protocol": "ctap2", "ctap2Version": "ctap2_1", "transport": "internal",
        "hasResidentKey": True, "hasUserVerification": True, "isUserVerified": True,
        "automaticPresenceSimulation": True}})
    who = Browser(page, origin, shots, name)
    token = await create_with_link(AnalystStore(gw.services.redis), name, role, now=time.time())
    await who.goto(f"/console/enrol?token={token}")
    await who.shot(f"enrol-{name}")
    await page.click("#enrol button")
    await page.wait_for_url("**/console/decisions")
    # sign out and back in with the passkey just registered
    await page.click("header form button")
    await page.wait_for_url("**/console/login")
    await page.fill("#signin-name", name)
    await who.shot(f"sign-in-{name}")
    await page.click("#signin button")
    await page.wait_for_url("**/console/decisions")
    return who


@pytest.fixture
async def site(gateway_factory, request):
    if not os.path.exists(CHROMIUM):
        pytest.skip("Chromium not installed: apt-get install -y chromium (CI installs it)")
    playwright_api = pytest.importorskip("playwright.async_api",
                                         reason="pip install playwright (never `playwright install`)")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    origin = f"http://localhost:{sock.getsockname()[1]}"
    gw = await gateway_factory(stepup={"origins": origin, "rp_id": "localhost"})
    server = uvicorn.Server(uvicorn.Config(gw.app, log_level="warning", lifespan="on"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    playwright = None
    try:
        for _ in range(200):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started, "uvicorn did not start"
        playwright = await playwright_api.async_playwright().start()
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                                   args=CHROMIUM_FLAGS)
        try:
            shots = ARTIFACTS / request.node.name
            shutil.rmtree(shots, ignore_errors=True)
            shots.mkdir(parents=True)
            yield gw, browser, origin, shots
        finally:
            await browser.close()
    finally:
        if playwright is not None:
            await playwright.stop()
        server.should_exit = True
        await serving
        sock.close()


async def test_label_write_rule_backtest_and_second_analyst_approves(site):
    gw, browser, origin, shots = site
    await history(gw)
    ana = await _analyst(browser, origin, shots, gw, "ana", Role.RULE_AUTHOR)
    page = ana.page

    # the feed, one decision, a label
    await ana.shot("decisions")
    await page.click("text=takeover1")
    await page.wait_for_url("**/console/decisions/takeover1")
    await page.click("button[value=fraud]")
    await page.wait_for_selector("#current-label:has-text('fraud (ana)')")
    await ana.shot("decision-labelled")
    await ana.goto("/console/review")
    await ana.shot("review-queue")

    # a rule with a syntax error, its error shown in place, fixed, backtested, submitted
    await ana.goto("/console/rules/edit")
    broken = dict(TAKEOVER_RULE, expression="moves_money && device_similarity < < 0.5")
    broken_text = json.dumps([broken], indent=2)
    await page.fill("#rules-text", broken_text)
    problem = await page.wait_for_selector("#problems.invalid li")
    text = await problem.inner_text()
    line = next(n for n, ln in enumerate(broken_text.splitlines(), 1) if '"expression"' in ln)
    assert "syntax" in text and "rule dissimilar_device_money" in text and f"line {line}," in text, text
    await ana.shot("rule-syntax-error")
    await page.fill("#rules-text", json.dumps([TAKEOVER_RULE], indent=2))
    await page.wait_for_selector("#problems.valid")
    await page.click("#backtest-button")
    changed = await page.wait_for_selector("#backtest .changed-count")
    assert "3 decision(s) would change" in await changed.inner_text()
    await ana.shot("rule-backtest")
    await page.fill("#reason", "catch account takeovers from unfamiliar devices")
    await page.click("#propose-button")
    await page.wait_for_url("**/console/rules/proposals/p_*")
    proposal_path = page.url.removeprefix(origin)
    assert await page.query_selector("#approve-button") is None  # an author cannot approve
    await ana.shot("proposal")

    # a second analyst approves
    bea = await _analyst(browser, origin, shots, gw, "bea", Role.APPROVER)
    await bea.goto(proposal_path)
    await bea.page.click("#approve-button")
    await bea.page.wait_for_selector("#proposal-status:has-text('published as version')")
    assert "by bea" in await bea.page.inner_text("#proposal-status")
    await bea.shot("proposal-approved")
    await bea.goto("/console/rules")
    assert "approved by bea" in await bea.page.inner_text("#history")
    await bea.shot("rules-history")

    # the rule's hits appear in the feed, which polls for new decisions
    await bea.goto("/console/decisions?rule=dissimilar_device_money")
    assert "takeover0" not in await bea.page.inner_text("#feed")
    await decide(gw, facts(user_id="v9", amount_fen=500_000, device_similarity=0.1), time.time() + 5,
                 "late1")
    await bea.page.wait_for_selector("#feed >> text=late1", timeout=15_000)
    await bea.shot("feed-rule-hits")

    await bea.goto("/console/audit")
    assert "Chain intact: 3 entries" in await bea.page.inner_text("#verify")
    await bea.shot("audit")
    names = sorted(p.name for p in shots.iterdir())
    assert len(names) == 14 and all(p.stat().st_size > 1000 for p in shots.iterdir()), names
    print(f"console screenshots: {shots}")


def _model() -> object:
    """A champion that learned that large payments from unfamiliar devices are fraud."""
    rng = random.Random(5)
    model = default_model()
    for _ in range(1500):
        fraud = rng.random() < 0.1
        model.learn_one({"amount_cny": rng.gauss(4000 if fraud else 800, 300),
                         "device_similarity": rng.uniform(0, 0.4) if fraud else rng.uniform(0.6, 1)}, fraud)
    return model


async def test_admin_sees_model_decision_detail_operations_and_rolls_a_rule_back(site):
    gw, browser, origin, shots = site
    svc = gw.services
    now = time.time()
    await svc.risk.model_store.publish(ModelSnapshot("champion", 0, _model(), 1500, now))
    await asyncio.sleep(1.2)  # the risk engine picks up the published model
    for i in range(12):
        takeover = i % 3 == 0
        f = facts(user_id=f"m{i}", amount_fen=400_000 if takeover else 60_000,
                  device_similarity=0.1 if takeover else 0.9)
        await decide(gw, f, now - 3600 + i, f"d{i}")
        await submit_label(svc.redis, f"d{i}", fraud=takeover, source=LabelSource.ANALYST,
                           now=now, author="seed")
    store = svc.risk.rule_store
    lenient = dict(TAKEOVER_RULE, expression=TAKEOVER_RULE["expression"].replace("2000", "9000"))
    strict_v = await store.publish(RuleSet.from_document({"rules": [TAKEOVER_RULE]}), author="ana",
                                   reason="takeovers from unfamiliar devices", now=now)
    lenient_v = await store.publish(RuleSet.from_document({"rules": [lenient]}), author="ana",
                                    reason="fewer step-ups for mid-sized payments", now=now + 1)

    ada = await _analyst(browser, origin, shots, gw, "ada", Role.ADMIN)
    page = ada.page

    await ada.goto("/console/model")
    assert await page.locator("svg").count() >= 4
    assert "champion:v1" in await page.inner_text("main")
    await ada.shot("model")

    await ada.goto("/console/decisions/d0")
    contributions = await page.inner_text("#contributions")
    assert "amount_cny" in contributions or "device_similarity" in contributions, contributions
    await ada.shot("decision-contributions")

    # stop outgoing transfers, then resume them; each a new version with its reason
    await ada.goto("/console/ops")
    row = page.locator("#switch-business-transfer")
    await row.locator("input[name=message]").fill("Transfers are paused for maintenance")
    await row.locator("input[name=reason]").fill("core banking maintenance window")
    await row.locator("button").click()
    await page.wait_for_selector("#switch-business-transfer.switch-off")
    await ada.shot("ops-transfers-stopped")
    assert (await svc.switches.current(time.time())).business["transfer"].stopped_at(time.time())
    row = page.locator("#switch-business-transfer")
    await row.locator("input[name=reason]").fill("maintenance done")
    await row.locator("button").click()
    await page.wait_for_selector("#switch-business-transfer.switch-on")
    assert "maintenance done" in await page.inner_text("#ops-history")

    # the latest rule version's diff, and a rollback to the first by proposal
    await ada.goto(f"/console/rules/versions/{lenient_v}")
    assert "9000" in await page.inner_text("main") and "2000" in await page.inner_text("main")
    await ada.shot("rule-version-diff")
    await ada.goto(f"/console/rules/versions/{strict_v}")
    await page.fill("#rollback-form input[name=reason]", "the lenient threshold let takeovers through")
    await page.click("#rollback-button")
    await page.wait_for_url("**/console/rules/proposals/p_*")
    proposal_path = page.url.removeprefix(origin)
    assert f"rollback to v{strict_v}" in await page.inner_text("main")
    # an admin may approve, but not their own proposal: the page offers no button for it
    assert await page.query_selector("#approve-button") is None
    assert await page.query_selector("#own-proposal") is not None
    await ada.shot("rollback-proposal")

    bea = await _analyst(browser, origin, shots, gw, "bea", Role.APPROVER)
    await bea.goto(proposal_path)
    await bea.page.click("#approve-button")
    await bea.page.wait_for_selector("#proposal-status:has-text('published as version')")
    assert await store.active_version() == lenient_v + 1
    assert [r.expression for r in (await store.active()).rules] == [TAKEOVER_RULE["expression"]]
    await bea.shot("rollback-approved")
    print(f"console screenshots: {shots}")
