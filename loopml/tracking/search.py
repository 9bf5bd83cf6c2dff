"""Parse the filter and order-by strings users type into search query objects.

``parse_filter("metrics.acc > 0.9 and params.model = 'resnet'")`` returns the
frozen ``Comparison``/``And``/``Or``/``Not`` tree from ``loopml.entities.search``
that every store backend compiles. The tokenizer and recursive-descent parser
are written by hand so each error names the 0-based position and the token at
fault, with the text and a caret under the spot; nesting and length are bounded
so no input can raise anything but ``InvalidFilterError``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.entities.search import (
    ATTRIBUTES,
    And,
    Comparison,
    Filter,
    KeyKind,
    Not,
    Operator,
    Or,
    OrderBy,
)
from loopml.errors import InvalidFilterError, did_you_mean
from loopml.names import MAX_FILTER_KEYS

__all__ = ["MAX_DEPTH", "MAX_LENGTH", "parse_filter", "parse_order_by"]

MAX_LENGTH = 10_000
MAX_DEPTH = 50

_PREFIXES: dict[str, KeyKind] = {
    **dict.fromkeys(("metrics", "metric", "m"), "metric"),
    **dict.fromkeys(("params", "param", "p"), "param"),
    **dict.fromkeys(("tags", "tag", "t"), "tag"),
    **dict.fromkeys(("attributes", "attribute", "attr", "a"), "attribute"),
}
_ALIASES = {"run_name": "name", "duration_ms": "duration"}
_NUMERIC_ATTRIBUTES = frozenset({"start_time", "end_time", "duration", "experiment_id"})
_STATUSES = ("RUNNING", "FINISHED", "FAILED", "KILLED")
_OPERATORS: dict[str, Operator] = {
    "=": "=", "==": "=", "!=": "!=", "<>": "!=", "<": "<", "<=": "<=", ">": ">", ">=": ">=",
}  # fmt: skip
_OP_HINT = "a comparison operator (=, !=, <, <=, >, >=, in, like)"
_WORD_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./:")
_OP_CHARS = frozenset("=!<>")
_PUNCT = {"(": "lparen", ")": "rparen", ",": "comma"}
_QUOTES = {"'": "string", '"': "dquoted", "`": "backquoted"}
_INT = re.compile(r"[+-]?\d+")
_FLOAT = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_SPECIAL_FLOATS = {"inf", "+inf", "-inf", "nan", "+nan", "-nan", "infinity", "+infinity", "-infinity"}
_Value = str | float | int | bool | None


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical unit: ``kind`` is word/op/string/dquoted/backquoted/lparen/rparen/comma/eof.

    ``text`` is the source slice (for errors); ``value`` is the unquoted content of a quoted token.
    """

    kind: str
    text: str
    position: int
    value: str = ""

    def is_word(self, *words: str) -> bool:
        """True for a bare word equal (case-insensitively) to one of ``words``."""
        return self.kind == "word" and self.text.lower() in words


def _fail(text: str, position: int, token: str, detail: str) -> InvalidFilterError:
    """Build the error: headline with position and token, then the text with a caret under the spot."""
    shown = repr(token) if token or position < len(text) else "end of input"
    start = max(0, position - 60)
    snippet = "".join(" " if c.isspace() else c for c in text[start : start + 120])
    prefix = "..." if start else ""
    caret = " " * (len(prefix) + position - start) + "^"
    message = f"Invalid filter at position {position} ({shown}): {detail}\n  {prefix}{snippet}\n  {caret}"
    return InvalidFilterError(message, text=text, position=position, token=token)


def _tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens, ending with an ``eof`` token; raises on bad characters or quotes."""
    if len(text) > MAX_LENGTH:
        extra = text[MAX_LENGTH : MAX_LENGTH + 10]
        raise _fail(text, MAX_LENGTH, extra, f"the text is longer than {MAX_LENGTH} characters.")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c in _PUNCT:
            tokens.append(Token(_PUNCT[c], c, i))
            i += 1
        elif c in _OP_CHARS:
            j = i
            while j < n and text[j] in _OP_CHARS:
                j += 1
            tokens.append(Token("op", text[i:j], i))
            i = j
        elif c in _WORD_CHARS or (c == "+" and i + 1 < n and text[i + 1] in _WORD_CHARS):
            j = i + 1
            numeric = c in "+-.0123456789"  # a number may hold an exponent sign: 2.5e+3
            while j < n and (text[j] in _WORD_CHARS or (numeric and text[j] == "+" and text[j - 1] in "eE")):
                j += 1
            tokens.append(Token("word", text[i:j], i))
            i = j
        elif c in _QUOTES:
            chars: list[str] = []
            j = i + 1
            while j < n and text[j] != c:
                if text[j] == "\\" and j + 1 < n and text[j + 1] in (c, "\\"):
                    j += 1
                chars.append(text[j])
                j += 1
            if j >= n:
                raise _fail(text, i, text[i : i + 20], f"unterminated {c} quote; close it with {c}.")
            tokens.append(Token(_QUOTES[c], text[i : j + 1], i, "".join(chars)))
            i = j + 1
        else:
            hint = " Use 'and' / 'or' instead." if c in "&|" else ""
            raise _fail(text, i, c, f"unexpected character.{hint}")
    tokens.append(Token("eof", "", n))
    return tokens


def _number(word: str) -> float | int | None:
    """The number a bare word spells (``1``, ``-2.5``, ``1e-3``, ``inf``, ``NaN``), else None."""
    if word.lower() in _SPECIAL_FLOATS:
        return float(word)
    if _INT.fullmatch(word):
        try:
            return int(word)
        except ValueError:  # more digits than int() converts
            return None
    return float(word) if _FLOAT.fullmatch(word) else None


class _Parser:
    """Recursive-descent parser over the token list of one filter or order-by string."""

    def __init__(self, text: str, tokens: list[Token]) -> None:
        self.text, self.tokens, self.i, self.depth = text, tokens, 0, 0
        self.keys: set[tuple[KeyKind, str]] = set()  # distinct metric/param/tag keys: one SQL join each

    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i = min(self.i + 1, len(self.tokens) - 1)
        return tok

    def error(self, tok: Token, detail: str) -> InvalidFilterError:
        return _fail(self.text, tok.position, tok.text, detail)

    def expect_end(self, what: str) -> None:
        if self.tok.kind != "eof":
            raise self.error(self.tok, f"unexpected token after {what}.")

    # -- boolean structure -----------------------------------------------------------------

    def or_expr(self) -> Filter:
        items = [self.and_expr()]
        while self.tok.is_word("or"):
            self.advance()
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self) -> Filter:
        items = [self.unary()]
        while self.tok.is_word("and"):
            self.advance()
            items.append(self.unary())
        return items[0] if len(items) == 1 else And(tuple(items))

    def unary(self) -> Filter:
        tok = self.tok
        if tok.is_word("not") or tok.kind == "lparen":
            self.depth += 1
            if self.depth > MAX_DEPTH:
                raise self.error(tok, f"the filter nests deeper than {MAX_DEPTH} levels.")
            self.advance()
            if tok.kind == "lparen":
                result: Filter = self.or_expr()
                if self.tok.kind != "rparen":
                    raise self.error(self.tok, f"expected ')' to close the '(' at position {tok.position}.")
                self.advance()
            else:
                result = Not(self.unary())
            self.depth -= 1
            return result
        return self.comparison()

    # -- keys ---------------------------------------------------------------------------------

    def key(self) -> tuple[KeyKind, str, str]:
        """Parse ``prefix.name`` or a bare attribute; returns kind, key and its source text."""
        tok = self.advance()
        if tok.is_word("and", "or"):
            raise self.error(tok, f"expected a comparison before {tok.text!r}.")
        if tok.kind != "word":
            raise self.error(tok, "expected a key such as metrics.acc, params.lr, tags.team or status.")
        if "." not in tok.text:
            return "attribute", self.attribute(tok, tok.text), tok.text
        prefix, name = tok.text.split(".", 1)
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            bad = Token("word", prefix, tok.position)
            hint = did_you_mean(prefix.lower(), _PREFIXES) or " Use metrics., params., tags. or attributes."
            raise self.error(bad, f"unknown key prefix {prefix!r}.{hint}")
        end = tok.position + len(tok.text)
        if not name:
            nxt = self.tok
            if nxt.kind not in ("backquoted", "dquoted") or nxt.position != end or not nxt.value:
                shown = nxt if nxt.position == end else Token("word", "", end)
                detail = f"empty name after {tok.text!r}; write {prefix}.name or {prefix}.`a name`."
                raise self.error(shown, detail)
            name, end = nxt.value, nxt.position + len(nxt.text)
            self.advance()
        if kind == "attribute":
            name = self.attribute(Token("word", name, tok.position + len(prefix) + 1), name)
        return kind, name, self.text[tok.position : end]

    def attribute(self, tok: Token, name: str) -> str:
        lowered = name.lower()
        lowered = _ALIASES.get(lowered, lowered)
        if lowered not in ATTRIBUTES:
            hint = did_you_mean(lowered, (*ATTRIBUTES, *_ALIASES))
            raise self.error(
                tok,
                f"unknown attribute {name!r}.{hint} For a metric, param or tag write "
                f"metrics.{name}, params.{name} or tags.{name}.",
            )
        return lowered

    # -- comparisons ------------------------------------------------------------------------

    def comparison(self) -> Comparison:
        start = self.tok
        kind, key, source = self.key()
        if kind != "attribute":
            self.keys.add((kind, key))
            if len(self.keys) > MAX_FILTER_KEYS:
                raise self.error(
                    start,
                    f"the filter names more than {MAX_FILTER_KEYS} distinct keys; the limit is "
                    f"{MAX_FILTER_KEYS}. Split it into several searches.",
                )
        tok = self.advance()
        negate = tok.is_word("not")
        if negate:
            tok = self.advance()
            if not tok.is_word("in", "like"):
                raise self.error(tok, f"expected 'in' or 'like' after '{source} not'.")
        if tok.is_word("is"):
            nxt = self.advance()
            op: Operator = "="
            if nxt.is_word("not"):
                op, nxt = "!=", self.advance()
            if not nxt.is_word("null"):
                raise self.error(nxt, f"expected 'null' after '{source} is'.")
            return Comparison(kind, key, op, None)
        if tok.is_word("in"):
            values = self.value_list()
            checked = tuple(self.check(kind, key, "in", v, t) for v, t in values)
            return Comparison(kind, key, "not in" if negate else "in", checked)
        if tok.is_word("like", "ilike"):
            op = ("not like" if negate else "like") if tok.is_word("like") else "ilike"
        elif tok.kind == "op" and tok.text in _OPERATORS:
            op = _OPERATORS[tok.text]
        else:
            raise self.error(tok, f"expected {_OP_HINT} after {source!r}.")
        value, vtok = self.value()
        return Comparison(kind, key, op, self.check(kind, key, op, value, vtok))

    def value(self) -> tuple[_Value, Token]:
        tok = self.advance()
        if tok.kind in ("string", "dquoted"):
            return tok.value, tok
        if tok.kind == "word":
            lowered = tok.text.lower()
            if lowered in ("true", "false"):
                return lowered == "true", tok
            if lowered == "null":
                return None, tok
            number = _number(tok.text)
            if number is not None:
                return number, tok
            raise self.error(tok, f"expected a value; quote text as '{tok.text}'.")
        raise self.error(tok, "expected a value: a number, a 'quoted string', true, false or null.")

    def value_list(self) -> list[tuple[_Value, Token]]:
        open_tok = self.advance()
        if open_tok.kind != "lparen":
            raise self.error(open_tok, "expected '(' to start the 'in' list.")
        if self.tok.kind == "rparen":
            raise self.error(self.tok, "the 'in' list is empty.")
        values = [self.value()]
        while self.tok.kind == "comma":
            self.advance()
            if self.tok.kind == "rparen":
                break
            values.append(self.value())
        if self.tok.kind != "rparen":
            raise self.error(self.tok, f"expected ',' or ')' in the 'in' list opened at {open_tok.position}.")
        self.advance()
        return values

    def check(self, kind: KeyKind, key: str, op: Operator, value: _Value, tok: Token) -> _Value:
        """Enforce the value type each key family compares with; returns the (normalised) value."""
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        numeric = kind == "metric" or (kind == "attribute" and key in _NUMERIC_ATTRIBUTES)
        if value is None:
            if op not in ("=", "!="):
                raise self.error(tok, "null only compares with = or != (or use 'is null' / 'is not null').")
            return None
        if op in ("like", "not like", "ilike"):
            if numeric:
                raise self.error(tok, f"'like' does not apply to the numeric key {key!r}.")
            if not isinstance(value, str):
                raise self.error(tok, "'like' needs a quoted string pattern, e.g. 'res%'.")
            return value.upper() if key == "status" and kind == "attribute" else value
        if numeric and not is_number:
            raise self.error(tok, f"{key!r} compares only with numbers (or null).")
        if kind == "attribute" and not numeric:
            if not isinstance(value, str):
                raise self.error(tok, f"attribute {key!r} compares with a quoted string.")
            if key == "status":
                value = value.upper()
                if value not in _STATUSES:
                    raise self.error(tok, f"unknown status; expected one of {', '.join(_STATUSES)}.")
        return value


def parse_filter(text: str | None) -> Filter | None:
    """Parse a search filter such as ``metrics.acc > 0.9 and params.model = 'resnet'``.

    ``or`` binds looser than ``and``; ``not`` and parentheses bind tightest. Keywords are
    case-insensitive. Returns None for a missing or blank filter (match everything).

    Raises:
        InvalidFilterError: with ``position`` and ``token`` of the first problem.
    """
    if text is None or not text.strip():
        return None
    parser = _Parser(text, _tokenize(text))
    result = parser.or_expr()
    if parser.tok.kind == "rparen":
        raise parser.error(parser.tok, "unmatched ')'.")
    parser.expect_end("a complete filter; join conditions with 'and' or 'or'")
    return result


def parse_order_by(clauses: Sequence[str] | str | None) -> tuple[OrderBy, ...]:
    """Parse order-by clauses such as ``"metrics.acc DESC"`` or ``"start_time asc, params.lr"``.

    Each clause is a key and an optional ``asc``/``desc`` (default ascending); a key without
    a prefix must be a run attribute. A string may hold several comma-separated clauses.

    Raises:
        InvalidFilterError: for an empty clause, unknown key or anything after the direction.
    """
    if clauses is None:
        return ()
    result: list[OrderBy] = []
    for text in [clauses] if isinstance(clauses, str) else clauses:
        tokens = _tokenize(text)
        start = 0
        for index, tok in enumerate(tokens):
            if tok.kind not in ("comma", "eof"):
                continue
            if index == start:
                raise _fail(text, tok.position, tok.text, "empty order-by clause; expected a key.")
            parser = _Parser(text, [*tokens[start:index], Token("eof", tok.text, tok.position)])
            kind, key, _ = parser.key()
            descending = False
            if parser.tok.is_word("asc", "desc"):
                descending = parser.advance().text.lower() == "desc"
            parser.expect_end("the order-by key and direction (asc or desc)")
            result.append(OrderBy(kind, key, descending))
            start = index + 1
    return tuple(result)
