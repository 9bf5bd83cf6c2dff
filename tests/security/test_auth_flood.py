"""Finding 3: authentication cannot be used to stall either server, nor to learn which token ids exist.

No timing assertions (they flake under CI's load). Instead the scrypt hash
is replaced by a counting one that can be held on a ``threading.Event``:
with every check slot held by a request stuck in scrypt, a cached valid
token and the health routes must still be answered, and a new wrong secret
must be refused (429) without another scrypt call. A repeated wrong secret
is refused from the rejection cache, and a known and an unknown token id
cost exactly one scrypt call each. ``benchmarks/auth_flood.py`` measures
the latencies.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from loopml.auth.tokens import CHECK_SLOTS, Authenticator
from loopml.entities.auth import Role
from loopml.errors import AuthenticationError, TooManyRequestsError
from loopml.store import Store, open_store, secrets

API = "/api/v1"
WAIT = 30.0  # generous bounds on waits for events, never asserted as durations


class HeldScrypt:
    """Counts scrypt calls; while ``open`` is clear, each call blocks inside the hash until it is set."""

    def __init__(self, real: Callable[..., bytes]) -> None:
        self.real = real
        self.calls = 0
        self.entered = threading.Semaphore(0)
        self.open = threading.Event()
        self.open.set()
        self._lock = threading.Lock()

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        with self._lock:
            self.calls += 1
        self.entered.release()
        self.open.wait(WAIT)
        return self.real(*args, **kwargs)

    def hold(self) -> None:
        """From now on calls block in the hash; ``wait_entered`` counts only calls made from here on."""
        self.open.clear()
        while self.entered.acquire(blocking=False):
            pass

    def wait_entered(self, count: int) -> None:
        for _ in range(count):
            assert self.entered.acquire(timeout=WAIT), "a request never reached scrypt"


@pytest.fixture
def scrypt(monkeypatch: pytest.MonkeyPatch) -> HeldScrypt:
    held = HeldScrypt(secrets.scrypt)
    monkeypatch.setattr(secrets, "scrypt", held)
    return held


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'loopml.db'}", artifacts_url=str(tmp_path / "artifacts"))
    try:
        yield opened
    finally:
        opened.close()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def wrong_secret(token: str, fill: str = "A") -> str:
    """The same token id with another (well-formed) secret."""
    token_id, _ = secrets.split_token(token) or ("", "")
    return f"{secrets.PREFIX}{token_id}_{fill * 43}"


def unknown_id(fill: str = "B") -> str:
    return f"{secrets.PREFIX}{'0' * 12}_{fill * 43}"


# -- the store: equal cost for known and unknown ids ------------------------------------------------


def test_known_and_unknown_ids_cost_one_scrypt_each(store, scrypt):
    issued = store.tokens.issue_token("ci", Role.VIEWER, actor="test")
    counted = scrypt.calls
    assert store.tokens.authenticate(wrong_secret(issued.secret)) is None
    assert scrypt.calls == counted + 1
    assert store.tokens.authenticate(unknown_id()) is None
    assert scrypt.calls == counted + 2
    assert store.tokens.authenticate(issued.secret).name == "ci"
    assert scrypt.calls == counted + 3
    assert store.tokens.authenticate("lml_not-a-token") is None  # no row to look up: no hash either
    assert scrypt.calls == counted + 3
    store.tokens.revoke_token("ci", actor="test")
    counted = scrypt.calls
    assert store.tokens.authenticate(issued.secret) is None
    assert scrypt.calls == counted + 1


# -- the Authenticator: rejection cache and bounded checks ----------------------------------------


def test_a_repeated_wrong_secret_is_refused_without_a_new_scrypt(sqlite_store, scrypt):
    issued = sqlite_store.tokens.issue_token("ci", Role.VIEWER, actor="test")
    checker = Authenticator(sqlite_store)
    counted = scrypt.calls
    for header in ([f"Bearer {wrong_secret(issued.secret)}"] * 3) + ([f"Bearer {unknown_id()}"] * 3):
        with pytest.raises(AuthenticationError):
            checker.authenticate(header)
    assert scrypt.calls == counted + 2
    for header in (None, "Basic x", "Bearer lml_short"):
        with pytest.raises(AuthenticationError):
            checker.authenticate(header)
    assert scrypt.calls == counted + 2
    assert checker.authenticate(f"Bearer {issued.secret}").name == "ci"
    assert checker.authenticate(f"Bearer {issued.secret}").name == "ci"
    assert scrypt.calls == counted + 3


def test_when_every_slot_is_held_a_new_token_gets_429_and_a_cached_one_passes(sqlite_store, scrypt):
    issued = sqlite_store.tokens.issue_token("ci", Role.VIEWER, actor="test")
    checker = Authenticator(sqlite_store, slots=1, wait_s=0.05)
    checker.authenticate(f"Bearer {issued.secret}")  # cached from now on
    scrypt.hold()
    holder = threading.Thread(target=_refused, args=(checker, f"Bearer {unknown_id()}"))
    holder.start()
    try:
        scrypt.wait_entered(1)
        counted = scrypt.calls
        assert checker.authenticate(f"Bearer {issued.secret}").name == "ci"
        with pytest.raises(TooManyRequestsError) as busy:
            checker.authenticate(f"Bearer {wrong_secret(issued.secret)}")
        assert busy.value.http_status == 429 and busy.value.retry_after >= 1
        assert scrypt.calls == counted
    finally:
        scrypt.open.set()
        holder.join(WAIT)


def test_a_good_token_renews_in_its_own_slots_while_a_flood_holds_the_shared_ones(sqlite_store, scrypt):
    issued = sqlite_store.tokens.issue_token("ci", Role.VIEWER, actor="test")
    checker = Authenticator(sqlite_store, cache_seconds=1e-9, slots=1, wait_s=0.05)  # entries expire at once
    checker.authenticate(f"Bearer {issued.secret}")
    scrypt.hold()
    holder = threading.Thread(target=_refused, args=(checker, f"Bearer {unknown_id()}"))
    holder.start()
    try:
        scrypt.wait_entered(1)
        counted = scrypt.calls
        with pytest.raises(TooManyRequestsError):
            checker.authenticate(f"Bearer {wrong_secret(issued.secret)}")
        renewing = threading.Thread(target=lambda: checker.authenticate(f"Bearer {issued.secret}"))
        renewing.start()
        scrypt.wait_entered(1)  # the renewal got a slot although the shared one is held
        assert scrypt.calls == counted + 1
    finally:
        scrypt.open.set()
        holder.join(WAIT)
    renewing.join(WAIT)


def _refused(checker: Authenticator, header: str) -> None:
    with pytest.raises(AuthenticationError):
        checker.authenticate(header)


# -- both servers, with every slot held --------------------------------------------------------------


class HoldEverySlot:
    """CHECK_SLOTS requests with new wrong secrets (a known id, then unknown ids), each stuck in scrypt until exit."""

    def __init__(self, send: Callable[[dict[str, str]], Any], scrypt: HeldScrypt, issued_secret: str) -> None:
        self.scrypt = scrypt
        self.answers: list[int] = []
        self.tokens = [wrong_secret(issued_secret, "H")] + [unknown_id("IJKLMN"[n]) for n in range(CHECK_SLOTS - 1)]
        self.threads = [
            threading.Thread(target=lambda t=t: self.answers.append(send(bearer(t)).status_code)) for t in self.tokens
        ]

    def __enter__(self) -> HoldEverySlot:
        self.scrypt.hold()
        for thread in self.threads:
            thread.start()
        self.scrypt.wait_entered(len(self.threads))
        return self

    def __exit__(self, *exc: object) -> None:
        self.scrypt.open.set()
        for thread in self.threads:
            thread.join(WAIT)


def assert_busy(answer: Any) -> None:
    assert answer.status_code == 429, answer.text
    assert answer.json()["error"]["type"] == "TooManyRequestsError"
    assert int(answer.headers["retry-after"]) >= 1


@pytest.fixture
def control_plane(sqlite_store: Store, asgi_client: Any) -> Iterator[tuple[Any, dict[str, str]]]:
    from loopml.server.app import create_app

    tokens = {role.value: sqlite_store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
    with asgi_client(create_app(sqlite_store, auth=True), raise_server_exceptions=False) as api:
        yield api, tokens


def test_the_control_plane_answers_valid_tokens_and_health_while_every_slot_is_held(control_plane, scrypt):
    api, tokens = control_plane
    viewer = bearer(tokens["viewer"])
    assert api.get(f"{API}/experiments", headers=viewer).status_code == 200  # checked once, cached from now on
    with HoldEverySlot(lambda h: api.get(f"{API}/experiments", headers=h), scrypt, tokens["editor"]) as held:
        counted = scrypt.calls
        assert api.get(f"{API}/experiments", headers=viewer).status_code == 200
        assert api.get(f"{API}/health").status_code == 200
        assert_busy(api.get(f"{API}/experiments", headers=bearer(wrong_secret(tokens["viewer"], "Z"))))
        assert_busy(api.get(f"{API}/tokens/me", headers=bearer(unknown_id("Z"))))
        assert api.get(f"{API}/experiments", headers={"Authorization": "Bearer garbage"}).status_code == 401
        assert scrypt.calls == counted
    assert held.answers == [401] * CHECK_SLOTS
    counted = scrypt.calls
    repeated = api.get(f"{API}/experiments", headers=bearer(wrong_secret(tokens["editor"], "H")))
    assert repeated.status_code == 401 and repeated.json()["error"]["type"] == "AuthenticationError"
    assert scrypt.calls == counted  # the rejection cache answered


@pytest.fixture
def prediction_service(tmp_path: Path, iris: Any, asgi_client: Any) -> Iterator[tuple[Any, dict[str, str], list]]:
    from loopml.serving.app import create_serving_app
    from loopml.serving.client import ServingClient
    from tests.serving.conftest import open_sqlite, register_iris

    store = open_sqlite(tmp_path)
    try:
        registered = register_iris(store, *iris)
        ServingClient(registered.tracking).deploy("iris", "champion")
        tokens = {role.value: store.tokens.issue_token(role.value, role, actor="setup").secret for role in Role}
        rows = registered.X.head(2).to_dict(orient="records")
        app = create_serving_app(store, auth=True, poll_interval_s=60.0, log_predictions=False)
        with asgi_client(app, raise_server_exceptions=False) as api:
            yield api, tokens, rows
    finally:
        store.close()


def test_the_prediction_service_answers_valid_tokens_and_healthz_while_every_slot_is_held(prediction_service, scrypt):
    api, tokens, rows = prediction_service
    viewer = bearer(tokens["viewer"])
    predict = "/v1/models/iris/predict"
    assert api.post(predict, json={"records": rows}, headers=viewer).status_code == 200  # cached from now on
    send = lambda h: api.post(predict, json={"records": rows}, headers=h)  # noqa: E731
    with HoldEverySlot(send, scrypt, tokens["editor"]) as held:
        counted = scrypt.calls
        assert api.post(predict, json={"records": rows}, headers=viewer).status_code == 200  # the fast lane
        assert api.get("/v1/models", headers=viewer).status_code == 200  # a FastAPI route
        assert api.get("/healthz").status_code == 200
        assert_busy(api.post(predict, json={"records": rows}, headers=bearer(wrong_secret(tokens["viewer"], "Z"))))
        assert_busy(api.get("/v1/models", headers=bearer(unknown_id("Z"))))
        assert scrypt.calls == counted
    assert held.answers == [401] * CHECK_SLOTS
    counted = scrypt.calls
    repeated = api.post(predict, json={"records": rows}, headers=bearer(wrong_secret(tokens["editor"], "H")))
    assert repeated.status_code == 401
    assert scrypt.calls == counted


def test_429_is_raised_again_by_the_rest_client():
    import httpx

    from loopml.store.rest.http import HttpSession

    def busy(_request: httpx.Request) -> httpx.Response:
        body = {"error": {"type": "TooManyRequestsError", "message": "busy", "retry_after": 2}}
        return httpx.Response(429, json=body, headers={"Retry-After": "2"})

    def unnamed(_request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, text="slow down")

    for handler, retry_after in ((busy, 2), (unnamed, 1)):
        session = HttpSession("http://loopml.test", client=httpx.Client(transport=httpx.MockTransport(handler)))
        with pytest.raises(TooManyRequestsError) as raised:
            session.call("GET", "/experiments")
        assert raised.value.retry_after == retry_after


# -- token ids: admins only -------------------------------------------------------------------------


def test_only_admins_see_token_events_and_ids(control_plane):
    api, tokens = control_plane
    for role in ("viewer", "editor"):
        events = api.get(f"{API}/audit/events", headers=bearer(tokens[role]))
        assert events.status_code == 200
        assert "token_id" not in events.text and not [e for e in events.json() if e["target_type"] == "token"]
        only_tokens = api.get(f"{API}/audit/events", params={"target_type": "token"}, headers=bearer(tokens[role]))
        assert only_tokens.json() == []
        assert api.get(f"{API}/tokens", headers=bearer(tokens[role])).status_code == 403
    admin = api.get(f"{API}/audit/events", params={"target_type": "token"}, headers=bearer(tokens["admin"])).json()
    assert {e["target"] for e in admin} == {"viewer", "editor", "admin"}
    assert all(len(e["after"]["token_id"]) == 12 for e in admin)
    assert api.get(f"{API}/tokens", headers=bearer(tokens["admin"])).status_code == 200
