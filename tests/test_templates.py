"""The shared templates: one environment that autoescapes, a base page and macros other pages build on."""

from __future__ import annotations

import pytest
from jinja2 import UndefinedError
from markupsafe import Markup

from loopml.templates import environment


def test_a_page_on_the_shared_base_escapes_data_and_inlines_the_css():
    env = environment()
    assert env is environment()  # one environment, its compiled templates cached
    page = env.from_string(
        '{% extends "base.html" %}{% from "macros.html" import table, card %}{% block content %}'
        "{{ card(label, value, true) }}{{ table(head, rows, text_columns=1) }}{{ figure }}{% endblock %}"
    ).render(
        title="<b>runs</b>",
        label="<script>",
        value="1",
        head=["name", "n"],
        rows=[(["<x>", "2"], True)],
        figure=Markup("<svg></svg>"),
    )
    assert page.startswith("<!DOCTYPE html>") and "<title>&lt;b&gt;runs&lt;/b&gt;</title>" in page
    assert ".card .value" in page  # base.css, inline
    assert '<div class="value bad">1</div>' in page and "<div>&lt;script&gt;</div>" in page
    assert '<tr class="flag"><td class="text">&lt;x&gt;</td><td>2</td></tr>' in page
    assert "<svg></svg>" in page  # markup we made ourselves passes through


def test_a_missing_value_is_an_error_not_an_empty_string():
    with pytest.raises(UndefinedError):
        environment().get_template("monitoring/report.html").render(title="t")
