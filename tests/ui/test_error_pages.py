"""A mistake on a UI page answers as a page (headline, message, status); scripts keep the API's JSON."""

from __future__ import annotations

import html
import json
import re
from typing import Any

from loopml.auth.tokens import create_token
from loopml.server.app import create_app
from tests.ui.conftest import Filled

HTML = {"Accept": "text/html,application/xhtml+xml"}


def test_an_unknown_run_is_an_html_page_for_a_browser(filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store))
    answer = client.get("/runs/" + "f" * 32, headers=HTML)
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert "Run not found" in answer.text and "f" * 32 in answer.text
    assert "Content-Security-Policy" in answer.headers  # the security headers hold on error pages too


def test_scripts_and_htmx_keep_the_json_error(filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store))
    for headers in ({"Accept": "application/json"}, {**HTML, "HX-Request": "true"}, {}):
        answer = client.get("/runs/" + "f" * 32, headers=headers)
        assert answer.status_code == 404
        assert answer.json()["error"]["type"] == "RunNotFoundError"


def test_a_role_too_low_is_a_403_page_and_user_text_is_escaped(filled_store: Filled, asgi_client: Any) -> None:
    client = asgi_client(create_app(filled_store.store, auth=True), follow_redirects=False)
    secret = create_token(filled_store.store, "vera", "viewer").secret
    logged_in = client.post("/login", data={"token": secret}, headers={"Sec-Fetch-Site": "same-origin"})
    assert logged_in.status_code == 303
    frame = client.get("/", headers=HTML).text
    csrf = json.loads(html.unescape(re.search(r"hx-headers='([^']*)'", frame).group(1)))  # type: ignore[union-attr]
    # a viewer's form post to an editor's action (CSRF header present): refused before anything runs
    refused = client.post("/deployments/iris/rollback", headers={**HTML, **csrf})
    assert refused.status_code == 403
    assert refused.headers["content-type"].startswith("text/html") and "needs" in refused.text
    missing = client.get("/runs/%3Cscript%3E", headers=HTML)
    assert missing.status_code == 404 and "<script>" not in missing.text and "&lt;script&gt;" in missing.text
