"""The HTML report is one self-contained file with inline SVG; the rich tables summarise the same results."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from loopml.errors import InvalidValueError
from loopml.monitoring.drift import drift
from loopml.monitoring.operations import operations
from loopml.monitoring.performance import performance
from loopml.monitoring.quality import quality
from loopml.monitoring.report import drift_history, render_report
from loopml.monitoring.terminal import drift_table, quality_table

START = pd.Timestamp("2024-01-01", tz="UTC")


class Outline(HTMLParser):
    """Tags, attributes and text of a page, enough to check what it would load."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str, str]] = []
        self.text: list[str] = []
        self.styles: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self._in_style = tag == "style"
        self.attributes.extend((tag, name, value or "") for name, value in attrs)

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        (self.styles if self._in_style else self.text).append(data)


def outline(path: Path) -> Outline:
    parser = Outline()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def external_references(page: Outline) -> list[str]:
    """Everything in the page that a browser would fetch: src/href other than in-page anchors, @import, url()."""
    found = [
        f"<{tag} {name}={value}>"
        for tag, name, value in page.attributes
        if name in ("src", "href", "xlink:href", "srcset", "data", "action", "poster") and not value.startswith("#")
    ]
    css = "".join(page.styles)
    found += ["@import"] if "@import" in css else []
    found += [part for part in css.split("url(")[1:] if not part.startswith("#")]
    url_attributes = [value for _, _, value in page.attributes if "url(" in value and "url(#" not in value]
    return found + url_attributes


@pytest.fixture(scope="module")
def monitoring_data() -> dict[str, object]:
    rng = np.random.default_rng(0)
    n = 3000
    reference = pd.DataFrame(
        {
            "age": rng.normal(40, 10, n),
            "plan": rng.choice(["basic", "pro", "<script>alert(1)</script>"], n),
            "visits": rng.integers(0, 4, n),
            "score": rng.uniform(size=n),
        }
    )
    current = reference.assign(age=reference["age"] + 6, score=rng.uniform(size=n) ** 2)
    current.loc[:20, "plan"] = "enterprise"
    time = START + pd.to_timedelta(rng.uniform(0, 5 * 3600, n), unit="s")
    label = rng.integers(0, 2, n)
    predictions = pd.DataFrame(
        {"time": time, "label": label, "prediction": (current["score"] > 0.5).astype(int), "score": current["score"]}
    )
    log = pd.DataFrame({"time": time, "latency_ms": rng.exponential(15, n), "status": rng.choice([200, 200, 500], n)})
    history = {
        START + pd.Timedelta(days=d): drift(reference, current.assign(age=current["age"] * d / 3)) for d in (1, 2, 3)
    }
    return {
        "drift": drift(reference, current, prediction="score"),
        "quality": quality(reference, current),
        "performance": performance(predictions, bucket="1h", score="score"),
        "operations": operations(log, bucket="1h"),
        "history": history,
    }


@pytest.fixture(scope="module")
def full_report(monitoring_data: dict[str, object], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "nested" / "report.html"
    written = render_report(
        path,
        drift=monitoring_data["drift"],
        quality=monitoring_data["quality"],
        performance=monitoring_data["performance"],
        history=monitoring_data["history"],
        operations=monitoring_data["operations"],
        title="Churn model <weekly>",
    )
    assert written == path
    return path


def test_report_is_one_self_contained_file(full_report: Path):
    page = outline(full_report)
    assert external_references(page) == []
    assert "script" not in page.tags and "link" not in page.tags and "iframe" not in page.tags
    assert page.tags.count("svg") == 3 + 1 + 1 + 1 + 2  # features, prediction, performance, operations, history


def test_report_shows_each_section_and_escapes_data(full_report: Path):
    text = full_report.read_text(encoding="utf-8")
    assert "<title>Churn model &lt;weekly&gt;</title>" in text
    for heading in ("Drift", "Distributions", "Data quality", "Performance over time", "Drift over time"):
        assert f"<h2>{heading}" in text
    assert "&lt;script&gt;alert(1)" in text and "<script" not in text
    assert "score (prediction)" in text and "enterprise" in text


def test_a_report_of_one_part_and_the_report_methods(monitoring_data: dict[str, object], tmp_path: Path):
    only_quality = monitoring_data["quality"].to_html(tmp_path / "quality.html")
    assert "<h2>Data quality</h2>" in only_quality.read_text() and "<h2>Drift</h2>" not in only_quality.read_text()
    with_quality = monitoring_data["drift"].to_html(tmp_path / "drift.html", quality=monitoring_data["quality"])
    page = outline(with_quality)
    assert external_references(page) == [] and page.tags.count("svg") == 4


def test_render_report_refuses_nothing_and_bad_frames(monitoring_data: dict[str, object], tmp_path: Path):
    with pytest.raises(InvalidValueError, match="Nothing to report"):
        render_report(tmp_path / "empty.html")
    unbucketed = performance(pd.DataFrame({"label": [1, 0], "prediction": [1, 1]}))
    with pytest.raises(InvalidValueError, match="bucket"):
        render_report(tmp_path / "x.html", performance=unbucketed)
    with pytest.raises(InvalidValueError, match="statistic"):
        render_report(tmp_path / "x.html", history=pd.DataFrame({"time": [START], "column": ["a"]}))


def test_drift_history_stacks_reports(monitoring_data: dict[str, object]):
    history = drift_history(monitoring_data["history"])
    assert list(history.columns) == ["time", "column", "test", "statistic", "p_value", "drifted", "share_drifted"]
    assert len(history) == 3 * 4
    assert history.groupby("time")["column"].count().tolist() == [4, 4, 4]


def test_terminal_tables(monitoring_data: dict[str, object]):
    console = Console(record=True, width=160)
    console.print(drift_table(monitoring_data["drift"]))
    console.print(quality_table(monitoring_data["quality"]))
    text = console.export_text()
    assert "age" in text and "wasserstein" in text and "score (prediction)" in text
    assert "1 of 3 columns drifted" in text
    assert "unseen_categories" in text and "enterprise" in text
    clean = Console(record=True, width=120)
    reference = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    clean.print(quality_table(quality(reference, reference)))
    assert "no problems" in clean.export_text()


def test_dollars_and_brackets_in_the_data_are_text(tmp_path: Path):
    # matplotlib reads "$...$" as mathtext (and raises on "$\\frac$"); rich reads "[...]" as markup
    rng = np.random.default_rng(4)
    reference = pd.DataFrame({r"$\frac$": rng.normal(size=200), "[/]": rng.choice(["$1-$5", "a"], 200)})
    current = reference.assign(**{"[/]": rng.choice(["$1-$5", "a", "[bold]new[/bold]"], 200)})
    report, checked = drift(reference, current), quality(reference, current)
    text = render_report(tmp_path / "report.html", drift=report, quality=checked).read_text(encoding="utf-8")
    assert "$1-$5" in text and r"$\frac$ — " in text  # a tick label and a figure title, as written
    console = Console(record=True, width=200)
    console.print(drift_table(report))
    console.print(quality_table(checked))
    printed = console.export_text()
    assert r"$\frac$" in printed and "[/]" in printed and "[bold]new[/bold]" in printed


def test_a_column_with_no_current_value_is_plotted_without_warnings(tmp_path: Path):
    reference = pd.DataFrame({"x": np.arange(50.0), "c": ["a", "b"] * 25})
    current = pd.DataFrame({"x": [np.nan] * 50, "c": [None] * 50})
    page = render_report(tmp_path / "report.html", drift=drift(reference, current))  # warnings are errors here
    assert page.read_text(encoding="utf-8").count("no values to plot") == 2


def test_markup_in_column_names_is_escaped_by_the_templates(tmp_path: Path):
    rng = np.random.default_rng(5)
    evil = "<script>alert('x')</script>"
    reference = pd.DataFrame({evil: rng.normal(size=200), 'a"b': rng.choice(["<i>", "&amp;"], 200)})
    current = reference.assign(**{evil: reference[evil] + 3, 'a"b': rng.choice(["<i>", "<img src=x>"], 200)})
    page = render_report(
        tmp_path / "report.html", drift=drift(reference, current), quality=quality(reference, current), title=evil
    )
    text = page.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text and "<i>" not in text
    assert "<title>&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</title>" in text
    assert '<td class="text">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</td>' in text  # drift and quality rows
    assert '<td class="text">a&#34;b</td>' in text and "&amp;amp;" in text
    outlined = outline(page)
    assert "script" not in outlined.tags and external_references(outlined) == []
