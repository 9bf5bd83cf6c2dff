"""A model's prediction-log policy: which input columns are redacted and how, and which column is the entity key.

Rules are ``{"column": "drop" | "hash" | "truncate:N"}``. ``hash`` is keyed
BLAKE2b (a MAC by design, RFC 7693; its key is the SHA-256 of
``LOOPML_REDACTION_KEY``), 256-bit digests as hex prefixed ``b2:``, so the same
value always logs as the same token and joins keep working, while nobody
without the key can test a guess. BLAKE2b rather than HMAC-SHA256: one pass
instead of two and about a sixth of the time per value, which matters where
every logged row's columns are hashed in the writer thread. ``truncate:N``
keeps the first N characters of the value's text (a postcode's area).
Redaction runs in the store's write path, before either sink sees a row:
the request path pays nothing for it, and no client (an embedded service,
a REST caller) can bypass it.

The entity key is the input column that names the person a row is about
(``user_id``); its values are recorded beside each logged request, after
the column's own redaction rule, so ``erase`` finds every request that
mentions them.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from hashlib import blake2b
from typing import Any

import orjson

from loopml.errors import InvalidValueError

#: The environment variable holding the key of the ``hash`` rule.
KEY_ENV = "LOOPML_REDACTION_KEY"
_TRUNCATE = re.compile(r"truncate:([1-9][0-9]{0,3})")
_COLUMN = re.compile(r"[^\x00-\x1f]{1,256}")
#: The most columns one policy may redact.
MAX_RULES = 1_000


@dataclass(frozen=True)
class LogPolicy:
    """What the log keeps of a model's inputs: ``redact`` rules by column, and the ``entity_key`` column (or None)."""

    redact: Mapping[str, str] = field(default_factory=dict)
    entity_key: str | None = None

    @property
    def empty(self) -> bool:
        return not self.redact and self.entity_key is None


def check_rules(rules: object) -> dict[str, str]:
    """``rules`` checked: a mapping of column name to drop, hash or truncate:N (InvalidValueError naming the bad one)."""
    if not isinstance(rules, Mapping):
        raise InvalidValueError(
            f"Redaction rules are a mapping of column to 'drop', 'hash' or 'truncate:N'; got {rules!r}."
        )
    if len(rules) > MAX_RULES:
        raise InvalidValueError(f"At most {MAX_RULES} redacted columns per model, got {len(rules)}.")
    checked: dict[str, str] = {}
    for column, rule in rules.items():
        if not isinstance(column, str) or not _COLUMN.fullmatch(column):
            raise InvalidValueError(f"A redacted column name must be 1-256 printable characters, got {column!r}.")
        if rule not in ("drop", "hash") and not (isinstance(rule, str) and _TRUNCATE.fullmatch(rule)):
            raise InvalidValueError(
                f"Redaction rule for column {column!r} must be 'drop', 'hash' or 'truncate:N' (N from 1 to 9999), "
                f"got {rule!r}."
            )
        checked[column] = rule
    return checked


def check_policy(rules: object, entity_key: object) -> LogPolicy:
    """A policy from user input: the rules checked, and an entity key that its rule keeps usable."""
    redact = check_rules(rules)
    if entity_key is not None:
        if not isinstance(entity_key, str) or not _COLUMN.fullmatch(entity_key):
            raise InvalidValueError(
                f"The entity key must be a column name (1-256 printable characters), got {entity_key!r}."
            )
        rule = redact.get(entity_key)
        if rule is not None and rule != "hash":
            raise InvalidValueError(
                f"The entity key column {entity_key!r} is redacted with {rule!r}; an entity key may be kept or "
                f"hashed, never dropped or truncated (erasure could no longer tell people apart)."
            )
    if any(rule == "hash" for rule in redact.values()) and not redaction_key():
        raise InvalidValueError(
            f"The 'hash' rule needs a key: set {KEY_ENV} (on the server that writes the log) to a secret of at "
            f"least 16 characters."
        )
    return LogPolicy(redact=redact, entity_key=entity_key)


def check_erase_key(key: object) -> str:
    """An entity key to erase: 1-256 characters of text."""
    if not isinstance(key, str) or not 1 <= len(key) <= 256:
        # the value itself is not repeated: it names a person, and errors reach logs and terminals
        got = f"{len(key)} characters" if isinstance(key, str) else f"a {type(key).__name__}"
        raise InvalidValueError(f"An entity key to erase is 1-256 characters of text, got {got}.")
    return key


def policy_to_json(policy: LogPolicy) -> str:
    return json.dumps(dict(policy.redact), sort_keys=True)


def redaction_key() -> bytes | None:
    """The key of the ``hash`` rule from the environment; None when unset or shorter than 16 characters."""
    key = os.environ.get(KEY_ENV, "")
    return key.encode() if len(key) >= 16 else None


def keyed_hash(value: Any, key: bytes) -> str:
    """The token a value logs as under ``hash``: the same for equal values, useless without the key."""
    return "b2:" + blake2b(_text(value).encode(), key=_mac_key(key), digest_size=32).hexdigest()


def _mac_key(key: bytes) -> bytes:
    """BLAKE2b's key (at most 64 bytes): the SHA-256 of the configured secret, whatever its length."""
    return hashlib.sha256(key).digest()


def _text(value: Any) -> str:
    """The JSON text of a value (what ``json.dumps`` writes, sorted keys), fast for the common scalars."""
    kind = type(value)
    if kind is str:
        return str(value)
    if kind is int:
        return str(value)
    if kind is float and math.isfinite(value):
        return repr(value)  # json.dumps writes a finite float as its repr
    return json.dumps(value, sort_keys=True)


def _redact_value(value: Any, rule: str, key: bytes | None) -> tuple[bool, Any]:
    """(keep, new value) for one value under ``rule``; a hash without a key drops (never the plaintext)."""
    if value is None:
        return True, None
    if rule == "drop" or (rule == "hash" and key is None):
        return False, None
    if rule == "hash":
        assert key is not None
        return True, keyed_hash(value, key)
    length = int(rule.partition(":")[2])
    return True, _text(value)[:length]


def _redact_records(rows: list[dict[str, Any]], rules: Mapping[str, str], key: bytes | None) -> None:
    """Redact many records column by column: one rule at a time over every row, the hot loop kept small."""
    for column, rule in rules.items():
        if rule == "drop" or (rule == "hash" and key is None):
            for row in rows:
                row.pop(column, None)
        elif rule == "hash":
            assert key is not None
            mac_key = _mac_key(key)
            for row in rows:
                value = row.get(column)
                if value is not None:
                    row[column] = "b2:" + blake2b(_text(value).encode(), key=mac_key, digest_size=32).hexdigest()
        else:
            length = int(rule.partition(":")[2])
            for row in rows:
                value = row.get(column)
                if value is not None:
                    row[column] = _text(value)[:length]


def _redact_column(values: Any, rule: str, key: bytes | None) -> tuple[bool, Any]:
    if isinstance(values, list):
        if rule == "drop" or (rule == "hash" and key is None):
            return False, None
        return True, [_redact_value(v, rule, key)[1] for v in values]
    return _redact_value(values, rule, key)


def _walk(body: Any, rules: Mapping[str, str], key: bytes | None, entity_key: str | None) -> list[Any]:
    """Redact ``body`` in place (every request shape) and return the entity key's raw values it held."""
    found: list[Any] = []
    if not isinstance(body, dict):
        return found
    records = body.get("records")
    if isinstance(records, list):
        rows = [record for record in records if isinstance(record, dict)]
        if entity_key is not None:
            found.extend(record[entity_key] for record in rows if entity_key in record)
        _redact_records(rows, rules, key)
    columns = body.get("columns")
    if isinstance(columns, dict):
        if entity_key is not None and entity_key in columns:
            value = columns[entity_key]
            found.extend(value if isinstance(value, list) else [value])
        for column, rule in rules.items():
            if column in columns:
                keep, new = _redact_column(columns[column], rule, key)
                if keep:
                    columns[column] = new
                else:
                    del columns[column]
    inputs = body.get("inputs")
    if isinstance(inputs, dict):  # v1 single row (values may also be lists)
        if entity_key is not None and entity_key in inputs:
            value = inputs[entity_key]
            found.extend(value if isinstance(value, list) else [value])
        for column, rule in rules.items():
            if column in inputs:
                keep, new = _redact_column(inputs[column], rule, key)
                if keep:
                    inputs[column] = new
                else:
                    del inputs[column]
    elif isinstance(inputs, list):  # v2 tensors, one per column
        kept = []
        for tensor in inputs:
            name = tensor.get("name") if isinstance(tensor, dict) else None
            if isinstance(name, str) and entity_key == name and isinstance(tensor.get("data"), list):
                found.extend(tensor["data"])
            tensor_rule = rules.get(name) if isinstance(name, str) else None
            if tensor_rule is not None and isinstance(tensor, dict):
                keep, new = _redact_column(tensor.get("data"), tensor_rule, key)
                if not keep:
                    continue
                tensor["data"] = new
                if tensor_rule != "drop":
                    tensor["datatype"] = "BYTES"
            kept.append(tensor)
        body["inputs"] = kept
    return found


def apply_policy(inputs: str, policy: LogPolicy, key: bytes | None) -> tuple[str, list[str]]:
    """``(redacted inputs JSON, entity keys)`` of one logged request under ``policy``.

    A body that is not JSON cannot be redacted column by column: when the
    policy redacts anything it is replaced by a marker, so an unparsable
    body never carries plaintext into the log.
    """
    fast = True
    try:
        body = orjson.loads(inputs)
    except orjson.JSONDecodeError:  # NaN literals, integers past 64 bits: the stdlib reads those
        fast = False
        try:
            body = json.loads(inputs)
        except ValueError:
            return ('{"redacted": "unparsable request body"}' if policy.redact else inputs), []
    raw_keys = _walk(body, policy.redact, key, policy.entity_key)
    keys: list[str] = []
    if policy.entity_key is not None:
        rule: str | None = policy.redact.get(policy.entity_key)
        keys = [entity_token(value, rule, key) for value in raw_keys if value is not None]
    if not policy.redact:
        return inputs, sorted(set(keys))
    if fast:  # orjson read it, so it holds no NaN or huge integer that orjson would write differently
        return orjson.dumps(body).decode(), sorted(set(keys))
    return json.dumps(body, separators=(",", ":")), sorted(set(keys))


def entity_token(value: Any, rule: str | None, key: bytes | None) -> str:
    """How an entity key value is recorded (and looked up by erasure): its text, or its keyed hash."""
    if rule == "hash":
        if key is None:
            raise InvalidValueError(f"This model's entity key is hashed; set {KEY_ENV} to erase by key.")
        return keyed_hash(value, key)
    return _text(value) if not isinstance(value, dict | list) else json.dumps(value)
