"""The Model page over the real gateway: published champion and challenger, decisions
scored by them through the gateway's risk engine, analyst labels, and the SVG plots."""

from __future__ import annotations

import html
import random
import re
import time
import xml.etree.ElementTree as ET

from gateway.console.analysts import Role
from gateway.model_report import model_report
from risk_engine import CHALLENGER, CHAMPION, ModelSnapshot, default_model, submit_label
from tests.console.decisions import decide, facts

DAY = 86400
NS = {"s": "http://www.w3.org/2000/svg"}
_SVG = re.compile(r"<svg\b.*?</svg>", re.S)


def _trained(seed: int, noise: float) -> object:
    """A model that learned large transfers to new payees are fraud (``noise`` blurs it)."""
    rng = random.Random(seed)
    model = default_model()
    for _ in range(1500):
        fraud = rng.random() < 0.1
        model.learn_one({"amount_cny": rng.gauss(40_000 if fraud else 800, 300 + noise),
                         "payee_new": 1.0 if fraud else float(rng.random() < 0.1)}, fraud)
    return model


def _charts(page: str) -> dict[str, ET.Element]:
    """Each figure's SVG, parsed as XML (so it must be well-formed)."""
    found = {}
    for figure in re.finditer(r'<figure id="chart-([a-z-]+)">(.*?)</figure>', page, re.S):
        [svg] = _SVG.findall(figure.group(2))
        found[figure.group(1)] = ET.fromstring(svg)
    return found


def _points(chart: ET.Element, series: str) -> list[str]:
    [group] = [g for g in chart.iterfind(".//s:g", NS) if g.get("data-series") == series]
    return [c.find("s:title", NS).text for c in group.iterfind("s:circle", NS)]


async def _seed(gw, now: float) -> dict[str, bool]:
    """Three days of decisions: two with fraud and legitimate labels, one with legitimate only."""
    store = gw.services.risk.model_store
    await store.publish(ModelSnapshot(CHAMPION, 0, _trained(3, 0), 1500, now - 3 * DAY))
    await store.publish(ModelSnapshot(CHALLENGER, 0, _trained(5, 20_000), 900, now - 3 * DAY))
    today = now - now % DAY
    labels: dict[str, bool] = {}
    for day, with_fraud in ((2, True), (1, False), (0, True)):
        base = today - day * DAY + 60
        for i in range(4):
            event = await decide(gw, facts(user_id=f"ok{day}{i}", amount_fen=60_000 + i * 1000),
                                 base + i, f"ok-{day}-{i}")
            labels[event.decision_id] = False
        if with_fraud:
            for i in range(2):
                event = await decide(gw, facts(user_id=f"bad{day}{i}", amount_fen=4_000_000,
                                               payee=f"mule{i}"), base + 10 + i, f"bad-{day}-{i}")
                labels[event.decision_id] = True
        await decide(gw, facts(user_id=f"quiet{day}"), base + 20, f"unlabelled-{day}")
    for decision_id, fraud in labels.items():
        await submit_label(gw.services.redis, decision_id, fraud=fraud, source="analyst",
                           now=now, author="tests")
    return labels


async def test_model_page_shows_versions_and_plots(console):
    gw = console.gw
    now = time.time()
    await _seed(gw, now)
    report = await model_report(gw.services, now=now, days=14)
    assert report["versions"][CHAMPION]["label"] == "champion:v1"
    assert report["versions"][CHAMPION]["labels_learned"] == 1500
    assert report["versions"][CHALLENGER]["label"] == "challenger:v1"
    buckets = report["buckets"]
    assert len(buckets) == 14 and sum(b["decisions"] for b in buckets) == 3 * 5 + 2 * 2
    two_days_ago, yesterday, today = buckets[-3:]
    assert (today["labelled"], today["fraud"], today["scored"]) == (6, 2, 7)
    assert today["model_versions"] == ["champion:v1"]
    assert today["challenger_versions"] == ["challenger:v1"]
    assert today["roc_auc"] is not None and two_days_ago["roc_auc"] is not None
    assert today["roc_auc"] > 0.9  # the champion tells the mules from the rest
    assert yesterday["roc_auc"] is None and yesterday["challenger_roc_auc"] is None  # legit only

    viewer = await console.analyst("vera", Role.VIEWER)
    r = await viewer.http.get("/console/model")
    assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert '<a href="/console/model">Model</a>' in page
    versions = html.unescape(re.search(r'<table id="versions">.*?</table>', page, re.S).group(0))
    assert "champion:v1" in versions and "challenger:v1" in versions and "1500" in versions

    charts = _charts(page)
    assert set(charts) == {"roc-auc", "precision", "recall", "step-up", "scores"}
    # one point per bucket with both classes, at the computed value; a gap elsewhere
    auc = _points(charts["roc-auc"], "champion")
    assert len(auc) == 2 and auc[-1].endswith(f": {today['roc_auc']:.3f}")
    assert len(_points(charts["roc-auc"], "challenger")) == 2
    assert len(_points(charts["step-up"], "step-up rate")) == 3  # days with decisions
    medium = report["thresholds"]["medium"]
    precision = _points(charts["precision"], f"medium (score ≥ {medium:g})")
    assert len(precision) == sum(b["at_threshold"]["medium"]["precision"] is not None
                                 for b in buckets)
    bars = charts["scores"].findall(".//s:rect[@class='bar']", NS)
    assert len(bars) == 10
    counts = [int(b.find("s:title", NS).text.rsplit(": ", 1)[1]) for b in bars]
    assert counts == report["score_histogram"] and sum(counts) == 19

    table = re.search(r'<table id="buckets">.*?</table>', page, re.S).group(0)
    assert f"{today['roc_auc']:.3f}" in table and table.count("<tr>") == 2 + 14


async def test_short_windows_are_hourly_and_empty_stores_say_no_data(console):
    viewer = await console.analyst("vera", Role.VIEWER)
    page = (await viewer.http.get("/console/model?days=1")).text
    charts = _charts(page)
    ticks = charts["roc-auc"].findall(".//s:g[@class='axis']/s:line", NS)
    assert len(ticks) == 2 + 5 + 24  # two axes, y ticks, one tick per hour
    assert all("no data" in ET.tostring(c, encoding="unicode") for c in charts.values())
    versions = re.search(r'<table id="versions">.*?</table>', page, re.S).group(0)
    assert versions.count("none published") == 2


async def test_model_page_requires_a_session_and_valid_days(console):
    anonymous = console.http()
    r = await anonymous.get("/console/model?days=7")
    assert r.status_code == 303
    assert r.headers["location"] == "/console/login?next=%2Fconsole%2Fmodel%3Fdays%3D7"
    viewer = await console.analyst("vera", Role.VIEWER)
    for days in ("0", "91", "abc", "-1", "1.5", "007"):
        r = await viewer.http.get(f"/console/model?days={days}")
        assert (r.status_code, r.json()["error"]) == (400, "invalid_days"), days
    assert (await viewer.http.get("/console/model?days=90")).status_code == 200
