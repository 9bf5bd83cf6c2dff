"""With auth on, the UI takes a token once, keeps a session cookie, and refuses writes without the CSRF header."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from loopml.auth.tokens import create_token
from loopml.server.app import create_app
from loopml.ui import ui_routers
from loopml.ui.sessions import SESSION_COOKIE
from tests.ui.conftest import Filled, Problems, screenshot, serve


def test_login_session_and_csrf(live_server: Any, filled_store: Filled, page: tuple[Any, Problems]) -> None:
    tab, _ = page
    viewer = create_token(filled_store.store, "vera", "viewer").secret
    base = serve(live_server, filled_store.store, auth=True)
    tab.goto(f"{base}/experiments/{filled_store.experiment_id}?order=name+ASC")
    tab.wait_for_url("**/login?next=**")
    screenshot(tab, "login")
    tab.get_by_label("API token").fill("lml_not-a-real-token")
    tab.get_by_role("button", name="Log in").click()
    assert "not accepted" in tab.get_by_role("alert").inner_text()
    assert not [c for c in tab.context.cookies() if c["name"] == SESSION_COOKIE]
    tab.get_by_label("API token").fill(viewer)
    tab.get_by_role("button", name="Log in").click()
    tab.wait_for_url(f"**/experiments/{filled_store.experiment_id}?order=name+ASC")  # back where it was going
    assert "vera (viewer)" in tab.locator("header").inner_text()
    (cookie,) = [c for c in tab.context.cookies() if c["name"] == SESSION_COOKIE]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict" and cookie["expires"] > 0
    assert viewer not in cookie["value"]
    # a state-changing request with the cookie but without the page's CSRF header is refused
    refused = tab.request.post(f"{base}/logout")
    assert refused.status == 403
    assert "X-CSRF-Token" in refused.text()
    # the page's own button sends it (hx-headers), ends the session and returns to the login page
    tab.get_by_role("button", name="Log out").click()
    tab.wait_for_url("**/login")
    tab.goto(f"{base}/")
    tab.wait_for_url("**/login?next=/")


def test_login_from_another_origin_is_refused(filled_store: Filled, asgi_client: Any) -> None:
    secret = create_token(filled_store.store, "vera", "viewer").secret
    client = asgi_client(create_app(filled_store.store, auth=True))
    answer = client.post("/login", data={"token": secret}, headers={"Origin": "https://evil.example"})
    assert answer.status_code == 403
    assert SESSION_COOKIE not in answer.cookies


def _routes() -> list[APIRoute]:
    return [route for router in ui_routers() for route in router.routes if isinstance(route, APIRoute)]


@pytest.mark.parametrize("route", _routes(), ids=lambda r: f"{sorted(r.methods)[0]} {r.path}")
def test_every_ui_route_needs_a_session(route: APIRoute, filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store, auth=True), follow_redirects=False)
    path = route.path.replace("{experiment_id}", "1").replace("{run_id}", filled_store.parent.run_id)
    for method in route.methods:
        answer = client.request(method, path, params={"path": "notes/summary.txt"})
        if method == "GET":
            assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")
        else:
            assert answer.status_code == 401
    # and a forged cookie is no session
    client.cookies.set(SESSION_COOKIE, "forged")
    for method in route.methods:
        assert client.request(method, path).status_code in (303, 401)
