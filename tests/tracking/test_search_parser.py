"""Tests for the search filter / order-by parser in ``loopml.tracking.search``."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loopml.entities.search import And, Comparison, Not, Or, OrderBy
from loopml.errors import InvalidFilterError
from loopml.tracking.search import MAX_DEPTH, MAX_LENGTH, parse_filter, parse_order_by


def m(key: str, op: str, value: object) -> Comparison:
    return Comparison("metric", key, op, value)  # type: ignore[arg-type]


def p(key: str, op: str, value: object) -> Comparison:
    return Comparison("param", key, op, value)  # type: ignore[arg-type]


def t(key: str, op: str, value: object) -> Comparison:
    return Comparison("tag", key, op, value)  # type: ignore[arg-type]


def attr(key: str, op: str, value: object) -> Comparison:
    return Comparison("attribute", key, op, value)  # type: ignore[arg-type]


A, B, C = m("a", ">", 1), p("b", "=", "x"), t("c", "!=", "y")


# -- valid filters ---------------------------------------------------------------------


@pytest.mark.parametrize("text", [None, "", "   ", "\n\t "])
def test_blank_filter_is_none(text: str | None) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.acc > 0.9", m("acc", ">", 0.9)),
        ("metric.acc>=1", m("acc", ">=", 1)),
        ("m.acc < 2", m("acc", "<", 2)),
        ("metrics.acc <= 2", m("acc", "<=", 2)),
        ("metrics.acc == 2", m("acc", "=", 2)),
        ("metrics.acc = 2", m("acc", "=", 2)),
        ("metrics.acc != 2", m("acc", "!=", 2)),
        ("metrics.acc <> 2", m("acc", "!=", 2)),
        ("params.lr = '0.01'", p("lr", "=", "0.01")),
        ("param.lr = 0.01", p("lr", "=", 0.01)),
        ('p.model = "resnet"', p("model", "=", "resnet")),
        ("tags.team = 'ml'", t("team", "=", "ml")),
        ("TAG.team != 'ml'", t("team", "!=", "ml")),
        ("t.flag = true", t("flag", "=", True)),
        ("params.flag = FALSE", p("flag", "=", False)),
        ("metrics.val.acc > 0.5", m("val.acc", ">", 0.5)),
        ("metrics.`val loss` < 1", m("val loss", "<", 1)),
        ("params.\"my key\" = 'v'", p("my key", "=", "v")),
        ("metrics.`a\\`b` > 1", m("a`b", ">", 1)),
        ("params.x = 'it\\'s'", p("x", "=", "it's")),
        ("tags.mlflow:user-name/x = 'a'", t("mlflow:user-name/x", "=", "a")),
        ("metrics.loss < 1e-3", m("loss", "<", 0.001)),
        ("metrics.loss < 2.5E+2", m("loss", "<", 250.0)),
        ("metrics.loss > -2", m("loss", ">", -2)),
        ("metrics.loss > +3", m("loss", ">", 3)),
        ("metrics.loss > .5", m("loss", ">", 0.5)),
        ("metrics.loss < inf", m("loss", "<", math.inf)),
        ("metrics.loss > -INF", m("loss", ">", -math.inf)),
        ("metrics.loss < +Inf", m("loss", "<", math.inf)),
        ("metrics.loss = null", m("loss", "=", None)),
        ("metrics.loss is null", m("loss", "=", None)),
        ("metrics.loss IS NOT NULL", m("loss", "!=", None)),
        ("status = 'finished'", attr("status", "=", "FINISHED")),
        ("attributes.status != 'Killed'", attr("status", "!=", "KILLED")),
        ("STATUS in ('running', 'failed',)", attr("status", "in", ("RUNNING", "FAILED"))),
        ("status like 'fin%'", attr("status", "like", "FIN%")),
        ("run_name like 'exp-%'", attr("name", "like", "exp-%")),
        ("name ILIKE '%Net'", attr("name", "ilike", "%Net")),
        ("attr.name not like 'x_'", attr("name", "not like", "x_")),
        ("a.duration_ms > 1000", attr("duration", ">", 1000)),
        ("duration >= 5", attr("duration", ">=", 5)),
        ("start_time > 1700000000000", attr("start_time", ">", 1700000000000)),
        ("end_time is null", attr("end_time", "=", None)),
        ("experiment_id = 3", attr("experiment_id", "=", 3)),
        ("run_id in ('abc', 'def')", attr("run_id", "in", ("abc", "def"))),
        ("parent_run_id is not null", attr("parent_run_id", "!=", None)),
        ("user = 'ana'", attr("user", "=", "ana")),
        ("params.opt IN ('adam', 'sgd', 3)", p("opt", "in", ("adam", "sgd", 3))),
        ("params.opt not in ('adam')", p("opt", "not in", ("adam",))),
        ("params.x like '%res%'", p("x", "like", "%res%")),
        ("tags.x ilike 'A%'", t("x", "ilike", "A%")),
        ("tags.x NOT LIKE 'a%'", t("x", "not like", "a%")),
    ],
)
def test_single_comparisons(text: str, expected: Comparison) -> None:
    assert parse_filter(text) == expected


def test_in_with_nan_and_nan_value() -> None:
    cmp = parse_filter("metrics.acc in (1, 2.5, nan)")
    assert isinstance(cmp, Comparison) and cmp.op == "in"
    assert cmp.value[:2] == (1, 2.5) and math.isnan(cmp.value[2])  # type: ignore[index,arg-type]
    cmp = parse_filter("metrics.acc != NaN")
    assert isinstance(cmp, Comparison) and math.isnan(cmp.value)  # type: ignore[arg-type]


def test_numbers_keep_their_type() -> None:
    assert type(parse_filter("params.x = 1").value) is int  # type: ignore[union-attr]
    assert type(parse_filter("params.x = 1.0").value) is float  # type: ignore[union-attr]
    assert type(parse_filter("params.x = 1e3").value) is float  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.a > 1 and params.b = 'x'", And((A, B))),
        ("metrics.a > 1 or params.b = 'x'", Or((A, B))),
        ("metrics.a > 1 and params.b = 'x' and tags.c != 'y'", And((A, B, C))),
        ("metrics.a > 1 or params.b = 'x' and tags.c != 'y'", Or((A, And((B, C))))),
        ("metrics.a > 1 and params.b = 'x' or tags.c != 'y'", Or((And((A, B)), C))),
        ("(metrics.a > 1 or params.b = 'x') and tags.c != 'y'", And((Or((A, B)), C))),
        ("((metrics.a > 1))", A),
        ("not metrics.a > 1", Not(A)),
        ("NOT NOT metrics.a > 1", Not(Not(A))),
        ("not (metrics.a > 1 or params.b = 'x')", Not(Or((A, B)))),
        ("not metrics.a > 1 and params.b = 'x'", And((Not(A), B))),
        ("metrics.a>1 AND params.b='x' Or tags.c!='y'", Or((And((A, B)), C))),
        ("(metrics.a > 1) and (params.b = 'x' or (tags.c != 'y'))", And((A, Or((B, C))))),
        ("metrics.a > 1\n and\tparams.b = 'x'", And((A, B))),
    ],
)
def test_boolean_structure(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


def test_nesting_at_the_limit_parses() -> None:
    text = "(" * MAX_DEPTH + "metrics.a > 1" + ")" * MAX_DEPTH
    assert parse_filter(text) == A
    assert parse_filter("not " * MAX_DEPTH + "metrics.a > 1") is not None


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "token", "fragment"),
    [
        ("metrics.acc >> 1", 12, ">>", "expected a comparison operator"),
        ("params.x = 1 and metrics.acc >> 1", 29, ">>", "after 'metrics.acc'"),
        ("metrics.acc 1", 12, "1", "expected a comparison operator"),
        ("metrics.acc", 11, "", "expected a comparison operator"),
        ("params.x = 'abc", 11, "'abc", "unterminated"),
        ("metrics.`val loss > 1", 8, "`val loss > 1", "unterminated"),
        ('params."k = 1', 7, '"k = 1', "unterminated"),
        ("metrics.a > 1 ; drop", 14, ";", "unexpected character"),
        ("metrics.a > 1 && params.b = 'x'", 14, "&", "'and'"),
        ("metrics.a > @", 12, "@", "unexpected character"),
        ("metrics. > 1", 8, "", "empty name"),
        ("metrics.`` > 1", 8, "``", "empty name"),
        ("metrcs.acc > 1", 0, "metrcs", "Did you mean 'metrics'"),
        ("xyz.acc > 1", 0, "xyz", "unknown key prefix"),
        ("acc > 1", 0, "acc", "metrics.acc"),
        ("stauts = 'RUNNING'", 0, "stauts", "Did you mean 'status'"),
        ("start > 1", 0, "start", "unknown attribute"),
        ("attributes.colour = 'x'", 11, "colour", "unknown attribute"),
        ("(metrics.a > 1", 14, "", "expected ')'"),
        ("((metrics.a > 1)", 16, "", "close the '(' at position 0"),
        ("metrics.a > 1)", 13, ")", "unmatched ')'"),
        ("metrics.a > 1 params.b = 'x'", 14, "params.b", "unexpected token"),
        ("metrics.a in ()", 14, ")", "empty"),
        ("metrics.a in 1", 13, "1", "expected '('"),
        ("metrics.a in (1 2)", 16, "2", "expected ',' or ')'"),
        ("metrics.a in (1,", 16, "", "expected a value"),
        ("metrics.a > 1 and", 17, "", "expected a key"),
        ("metrics.a > 1 or", 16, "", "expected a key"),
        ("and metrics.a > 1", 0, "and", "expected a comparison before"),
        ("metrics.a > 1 and or params.b = 'x'", 18, "or", "expected a comparison before"),
        ("not", 3, "", "expected a key"),
        ("()", 1, ")", "expected a key"),
        ("metrics.a > 'x'", 12, "'x'", "only with numbers"),
        ("metrics.a > true", 12, "true", "only with numbers"),
        ("metrics.a in (1, 'x')", 17, "'x'", "only with numbers"),
        ("metrics.a like 'x%'", 15, "'x%'", "'like' does not apply"),
        ("start_time like '1%'", 16, "'1%'", "'like' does not apply"),
        ("start_time > '2024'", 13, "'2024'", "only with numbers"),
        ("experiment_id = 'abc'", 16, "'abc'", "only with numbers"),
        ("name = 3", 7, "3", "quoted string"),
        ("status = 'DONE'", 9, "'DONE'", "RUNNING, FINISHED, FAILED, KILLED"),
        ("status in ('RUNNING', 'paused')", 22, "'paused'", "unknown status"),
        ("params.x like 3", 14, "3", "quoted string pattern"),
        ("tags.x ilike null", 13, "null", "null only compares"),
        ("metrics.a < null", 12, "null", "null only compares"),
        ("params.x in ('a', null)", 18, "null", "null only compares"),
        ("params.x = resnet", 11, "resnet", "quote text"),
        ("params.x = (1)", 11, "(", "expected a value"),
        ("params.x = 1.2.3", 11, "1.2.3", "expected a value"),
        ("params.x = " + "9" * 5000, 11, "9" * 5000, "expected a value"),
        ("metrics.a not > 1", 14, ">", "expected 'in' or 'like'"),
        ("params.x not ilike 'a'", 13, "ilike", "expected 'in' or 'like'"),
        ("metrics.a is 1", 13, "1", "expected 'null'"),
        ("metrics.a is not 1", 17, "1", "expected 'null'"),
        ("'x' = 1", 0, "'x'", "expected a key"),
        ("params.x = 'a' 'b'", 15, "'b'", "unexpected token"),
    ],
)
def test_filter_errors(text: str, position: int, token: str, fragment: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(text)
    err = info.value
    assert (err.position, err.token) == (position, token)
    assert err.text == text
    message = str(err)
    assert fragment in message
    assert f"at position {position} " in message
    if token:
        assert repr(token) in message.splitlines()[0] or len(token) > 100
    assert isinstance(err, ValueError)


def test_error_message_has_caret_snippet() -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_filter("params.x = 1 and metrics.acc >> 1")
    headline, snippet, caret = str(info.value).splitlines()
    assert headline.startswith("Invalid filter at position 29 ('>>'): expected a comparison operator")
    assert snippet.strip() == "params.x = 1 and metrics.acc >> 1"
    assert caret.index("^") == snippet.index(">>")


def test_caret_aligns_with_multiline_and_long_text() -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_filter("metrics.a > 1 and\nmetrics.b >> 2")
    _, snippet, caret = str(info.value).splitlines()
    assert caret.index("^") == snippet.index(">>")
    long_text = " and ".join(["metrics.a > 1"] * 40) + " ?"
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(long_text)
    _, snippet, caret = str(info.value).splitlines()
    assert snippet[caret.index("^")] == "?"


def test_too_long_text_is_rejected() -> None:
    text = " or ".join(["metrics.a > 1"] * 1000)
    assert len(text) > MAX_LENGTH
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(text)
    assert info.value.position == MAX_LENGTH
    assert "longer than" in str(info.value)


@pytest.mark.parametrize(
    "text",
    [
        "(" * (MAX_DEPTH + 1) + "metrics.a > 1" + ")" * (MAX_DEPTH + 1),
        "not " * (MAX_DEPTH + 1) + "metrics.a > 1",
        "(" * 5000,
        "not " * 2400,
        "(not " * 1500,
    ],
)
def test_deep_nesting_is_rejected_without_recursion_error(text: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_filter(text)
    assert "deeper than" in str(info.value)
    assert info.value.position > 0


# -- order by ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        (None, ()),
        ([], ()),
        ("metrics.acc DESC", (OrderBy("metric", "acc", True),)),
        ("params.lr", (OrderBy("param", "lr"),)),
        ("start_time asc", (OrderBy("attribute", "start_time"),)),
        ("metrics.`val loss` desc", (OrderBy("metric", "val loss", True),)),
        ("m.val.acc Desc", (OrderBy("metric", "val.acc", True),)),
        ("tags.team", (OrderBy("tag", "team"),)),
        ("run_name", (OrderBy("attribute", "name"),)),
        ("attributes.duration_ms DESC", (OrderBy("attribute", "duration", True),)),
        (
            "metrics.acc desc, params.lr , start_time",
            (OrderBy("metric", "acc", True), OrderBy("param", "lr"), OrderBy("attribute", "start_time")),
        ),
        (
            ["metrics.acc desc", "end_time ASC"],
            (OrderBy("metric", "acc", True), OrderBy("attribute", "end_time")),
        ),
        (("status",), (OrderBy("attribute", "status"),)),
    ],
)
def test_order_by(clauses: object, expected: tuple[OrderBy, ...]) -> None:
    assert parse_order_by(clauses) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("clause", "position", "token", "fragment"),
    [
        ("", 0, "", "empty order-by clause"),
        ("   ", 3, "", "empty order-by clause"),
        ("metrics.acc,", 12, "", "empty order-by clause"),
        ("metrics.acc,,params.lr", 12, ",", "empty order-by clause"),
        (",metrics.acc", 0, ",", "empty order-by clause"),
        ("metrics.acc desc extra", 17, "extra", "unexpected token"),
        ("metrics.acc up", 12, "up", "unexpected token"),
        ("metrics.acc desc asc", 17, "asc", "unexpected token"),
        ("acc desc", 0, "acc", "unknown attribute"),
        ("metrcs.acc", 0, "metrcs", "Did you mean"),
        ("metrics.", 8, "", "empty name"),
        ("metrics. desc", 8, "", "empty name"),
        ("metrics.`acc", 8, "`acc", "unterminated"),
        ("'acc' desc", 0, "'acc'", "expected a key"),
        ("metrics.acc > 1", 12, ">", "unexpected token"),
    ],
)
def test_order_by_errors(clause: str, position: int, token: str, fragment: str) -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_order_by(clause)
    assert (info.value.position, info.value.token) == (position, token)
    assert fragment in str(info.value)
    assert f"at position {position} " in str(info.value)


def test_order_by_error_in_second_list_item() -> None:
    with pytest.raises(InvalidFilterError) as info:
        parse_order_by(["metrics.acc", "params.lr sideways"])
    assert info.value.text == "params.lr sideways"
    assert (info.value.position, info.value.token) == (10, "sideways")


# -- property ------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_parses_or_raises_invalid_filter(text: str) -> None:
    try:
        parse_filter(text)
    except InvalidFilterError as err:
        assert 0 <= err.position <= len(text)
    try:
        parse_order_by(text)
    except InvalidFilterError as err:
        assert 0 <= err.position <= len(text)


_pieces = st.sampled_from(
    [
        "metrics.a",
        "params.`b c`",
        "tags.x",
        "status",
        "name",
        " and ",
        " or ",
        " not ",
        "(",
        ")",
        "=",
        ">=",
        "<>",
        " in ",
        " like ",
        " is ",
        "null",
        "1",
        "-1e3",
        "nan",
        "'RUNNING'",
        '"x"',
        ",",
        "`",
        "'",
        " desc",
        " ",
    ]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=30).map("".join))
def test_filter_like_text_parses_or_raises_invalid_filter(text: str) -> None:
    for parse in (parse_filter, parse_order_by):
        try:
            parse(text)  # type: ignore[operator]
        except InvalidFilterError as err:
            assert 0 <= err.position <= len(text)
