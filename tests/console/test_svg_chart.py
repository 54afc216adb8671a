"""Server-side SVG charts: well-formed XML, gaps for missing values, escaped text, "no data"."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from gateway.console.svg_chart import Series, bar_chart, line_chart, nice_ceiling, percent

NS = {"s": "http://www.w3.org/2000/svg"}


def parse(markup: str) -> ET.Element:
    root = ET.fromstring(str(markup))
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    return root


def series_group(root: ET.Element, name: str) -> ET.Element:
    [group] = [g for g in root.iterfind(".//s:g", NS) if g.get("data-series") == name]
    return group


def test_line_chart_draws_each_series_with_gaps_and_a_legend():
    chart = line_chart(["d1", "d2", "d3", "d4", "d5"],
                       [Series("champion", [0.9, 0.8, None, 0.7, 0.75]),
                        Series("challenger", [None, 0.6, None, None, None], dashed=True)],
                       title="ROC AUC")
    root = parse(chart)
    assert root.find("s:title", NS).text == "ROC AUC" and root.get("role") == "img"
    champion = series_group(root, "champion")
    # the gap at d3 splits the line in two; every value is a point
    assert len(champion.findall("s:polyline", NS)) == 2
    assert len(champion.findall("s:circle", NS)) == 4
    assert [c.find("s:title", NS).text for c in champion.findall("s:circle", NS)][0] == \
        "champion, d1: 0.90"
    challenger = series_group(root, "challenger")
    assert "dashed" in challenger.get("class") and "series-1" in challenger.get("class")
    assert challenger.findall("s:polyline", NS) == []  # a lone point: no line ...
    assert len(challenger.findall("s:circle", NS)) == 1  # ... but still drawn
    legend = [t.text for t in root.iterfind(".//s:g[@class='legend']/s:text", NS)]
    assert legend == ["champion", "challenger"]
    assert "no data" not in chart


def test_points_follow_their_values():
    root = parse(line_chart(["a", "b"], [Series("s", [0.0, 1.0])], title="t", height=240))
    low, high = (float(c.get("cy")) for c in series_group(root, "s").findall("s:circle", NS))
    assert low > high  # SVG y grows downwards
    xs = [float(c.get("cx")) for c in series_group(root, "s").findall("s:circle", NS)]
    assert xs[0] < xs[1]


def test_text_is_escaped():
    chart = line_chart(["<b>"], [Series('x" onload="alert(1)', [0.5])], title="<script>&")
    root = parse(chart)
    assert "<script>" not in chart and "<b>" not in chart
    assert root.find("s:title", NS).text == "<script>&"
    assert series_group(root, 'x" onload="alert(1)') is not None
    assert all(not k.startswith("on") for el in root.iter() for k in el.attrib)


def test_empty_charts_say_no_data():
    for chart in (line_chart([], [Series("a", [])], title="empty"),
                  line_chart(["d1", "d2"], [Series("a", [None, None])], title="gaps only"),
                  bar_chart(["0.0–0.1", "0.1–0.2"], [0, 0], title="nothing"),
                  bar_chart([], [], title="nothing at all")):
        root = parse(chart)
        assert [t.text for t in root.iterfind(".//s:text[@class='nodata']", NS)] == ["no data"]


def test_bar_chart_scales_to_a_round_maximum():
    root = parse(bar_chart(["low", "mid", "high"], [3, 7, 0], title="scores"))
    bars = root.findall(".//s:rect[@class='bar']", NS)
    assert [b.find("s:title", NS).text for b in bars] == ["low: 3", "mid: 7", "high: 0"]
    heights = [float(b.get("height")) for b in bars]
    assert heights[1] > heights[0] > heights[2] == 0.0
    assert heights[1] / heights[0] == 7 / 3
    ticks = [t.text for t in root.iterfind(".//s:text[@class='tick y']", NS)]
    assert ticks[-1] == "10"  # the axis ends at a round number above 7


def test_auto_scale_and_tick_formats():
    root = parse(line_chart(["a"], [Series("rate", [0.03])], title="t", y_max=None,
                            y_format=percent))
    assert [t.text for t in root.iterfind(".//s:text[@class='tick y']", NS)] == \
        ["0%", "1.2%", "2.5%", "3.8%", "5%"]
    assert [nice_ceiling(v) for v in (0, 0.03, 0.7, 1, 130, 0.21)] == [1, 0.05, 1, 1, 200, 0.25]
