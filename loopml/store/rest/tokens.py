"""API tokens over HTTP: issuing, listing and revoking need an admin token on the server."""

from __future__ import annotations

from urllib.parse import quote

from loopml.entities.auth import ApiToken, IssuedToken, Role
from loopml.store import secrets
from loopml.store.rest import codec
from loopml.store.rest.http import HttpSession, decode_json
from loopml.store.tokens import TokenStore, check_role


class RestTokenStore(TokenStore):
    """The tokens a loopml server checks; the server generates and hashes each secret."""

    def __init__(self, session: HttpSession) -> None:
        self._http = session

    def issue_token(self, name: str, role: Role, *, actor: str) -> IssuedToken:
        body = {"name": name, "role": check_role(role).value, "actor": actor}
        data = self._http.call("POST", "/tokens", json_body=body)
        return IssuedToken(codec.api_token_in(data["token"]), data["secret"])

    def list_tokens(self, *, include_revoked: bool = False) -> list[ApiToken]:
        data = self._http.call("GET", "/tokens", params={"include_revoked": include_revoked})
        return [codec.api_token_in(item) for item in data]

    def revoke_token(self, name: str, *, actor: str) -> ApiToken:
        path = f"/tokens/{quote(name, safe='')}/revoke"
        return codec.api_token_in(self._http.call("POST", path, json_body={"actor": actor}))

    def authenticate(self, token: str) -> ApiToken | None:
        """Ask the server who ``token`` is (``GET /tokens/me``); None when it answers 401.

        A string that is not shaped like a token is refused here, as the SQL
        store would: it may not even be sendable as a header.
        """
        if not isinstance(token, str) or secrets.split_token(token) is None:
            return None
        response = self._http.send(
            "GET", "/tokens/me", headers={"Authorization": f"Bearer {token}"}, ok_statuses=frozenset({401})
        )
        if response.status_code == 401:
            return None
        return codec.api_token_in(decode_json(response))
