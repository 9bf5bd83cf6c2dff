"""The TokenStore contract on SQLite, PostgreSQL and REST: issue, check, list, revoke."""

from __future__ import annotations

import pytest

from loopml.entities.auth import Role
from loopml.errors import InvalidValueError, TokenAlreadyExistsError, TokenNotFoundError
from loopml.store import secrets


def test_an_issued_token_authenticates_until_revoked(store):
    issued = store.tokens.issue_token("ci", Role.EDITOR, actor="alice")
    assert issued.secret.startswith("lml_") and issued.token.token_id in issued.secret
    found = store.tokens.authenticate(issued.secret)
    assert found is not None and (found.name, found.role, found.created_by) == ("ci", Role.EDITOR, "alice")

    revoked = store.tokens.revoke_token("ci", actor="alice")
    assert revoked.revoked_at is not None and not revoked.active
    assert store.tokens.authenticate(issued.secret) is None


def test_wrong_malformed_and_unknown_tokens_are_refused(store):
    issued = store.tokens.issue_token("ci", Role.VIEWER, actor="alice")
    token_id, secret = secrets.split_token(issued.secret)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert store.tokens.authenticate(f"lml_{token_id}_{flipped}") is None
    assert store.tokens.authenticate(f"lml_{'0' * 12}_{secret}") is None
    for junk in ("", "lml_", "Bearer x", issued.secret + "x", "lml_zz_" + secret):
        assert store.tokens.authenticate(junk) is None


def test_one_active_token_per_name_and_names_are_reusable_after_revoking(store):
    store.tokens.issue_token("ci", Role.EDITOR, actor="alice")
    with pytest.raises(TokenAlreadyExistsError, match="ci"):
        store.tokens.issue_token("ci", Role.ADMIN, actor="alice")
    assert [t.role for t in store.tokens.list_tokens()] == [Role.EDITOR]  # the refused one left nothing

    store.tokens.revoke_token("ci", actor="alice")
    again = store.tokens.issue_token("ci", Role.ADMIN, actor="alice")
    assert [t.token_id for t in store.tokens.list_tokens()] == [again.token.token_id]
    assert len(store.tokens.list_tokens(include_revoked=True)) == 2
    with pytest.raises(TokenNotFoundError):
        store.tokens.revoke_token("nobody", actor="alice")


@pytest.mark.parametrize(("name", "role"), [("", "viewer"), ("a b", "viewer"), ("x" * 129, "viewer"), ("ok", "root")])
def test_bad_names_and_roles_are_refused(store, name, role):
    with pytest.raises(InvalidValueError):
        store.tokens.issue_token(name, role, actor="alice")
    assert store.tokens.list_tokens(include_revoked=True) == []


def test_issuing_and_revoking_are_audited(store):
    issued = store.tokens.issue_token("ci", Role.EDITOR, actor="alice")
    store.tokens.revoke_token("ci", actor="bob")
    events = store.audit.list_events(target_type="token")
    assert [(e.action, e.actor, e.target) for e in events] == [("token.create", "alice", "ci"), ("token.revoke", "bob", "ci")]
    assert issued.secret not in repr(events)


def test_only_a_scrypt_hash_of_the_secret_is_stored(db_url, tmp_path):
    import sqlalchemy

    from loopml.store import open_store

    opened = open_store(db_url, artifacts_url=str(tmp_path / "a"))
    try:
        issued = opened.tokens.issue_token("ci", Role.EDITOR, actor="alice")
    finally:
        opened.close()
    _, secret = secrets.split_token(issued.secret)
    engine = sqlalchemy.create_engine(db_url)
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(sqlalchemy.text("SELECT * FROM api_tokens"))]
    engine.dispose()
    assert len(rows) == 1
    assert not any(secret in str(value) for value in rows[0])
    stored = next(v for v in rows[0] if isinstance(v, str) and v.startswith("scrypt$"))
    assert secrets.verify_secret(secret, stored) and not secrets.verify_secret(secret + "x", stored)
