"""The HTTP session every REST store shares: URLs, auth, retries, error decoding.

Calls that are safe to repeat (GET, HEAD, PUT, and POSTs that carry an
idempotency key or only read) are retried on connection errors, three tries
in all, 0.1 s then 0.4 s apart. An error answer ``{"error": {"type": ...,
"message": ...}}`` is raised again as the ``loopml.errors`` class of that
name, with the same extra fields (``position``, ``problems``, ...), so code
over a RestStore catches exactly what it would catch over a SqlStore.
"""

from __future__ import annotations

import inspect
import json
import os
import ssl
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from loopml import errors
from loopml.errors import InvalidValueError, LoopMLError, StoreError

API_PREFIX = "/api/v1"
#: A CA certificate file that https:// loopml servers are checked against (a private CA, self-signed certs).
TLS_CA_FILE_ENV = "LOOPML_TLS_CA_FILE"
RETRY_ATTEMPTS = 3
RETRY_FIRST_DELAY_S = 0.1
RETRY_MULTIPLIER = 4  # 0.1 s, then 0.4 s
DEFAULT_TIMEOUT = httpx.Timeout(60.0, connect=10.0)
#: Failures where the request may not have reached the server, or its answer was lost.
RETRYABLE = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "OPTIONS"})
_BY_STATUS: Mapping[int, type[LoopMLError]] = {
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,  # also from a proxy in front of the server (nginx client_max_body_size)
    422: errors.InvalidInputError,
    429: errors.TooManyRequestsError,
}

#: A request body: bytes, an iterable of chunks (sent once), or a callable
#: returning a fresh iterable (sent again on a retry).
Content = bytes | Iterable[bytes] | Callable[[], Iterable[bytes]]


class HttpSession:
    """One loopml server: ``base_url`` plus an ``httpx.Client`` (injected, or owned and closed here).

    ``token`` defaults to ``$LOOPML_TOKEN``; when set, every request carries
    ``Authorization: Bearer <token>``. For ``https://`` servers the
    certificate is checked against ``$LOOPML_TLS_CA_FILE`` when set (a
    private CA for loopml only), else the standard ``SSL_CERT_FILE`` /
    ``SSL_CERT_DIR``, else the system's trust store.
    """

    def __init__(
        self,
        base_url: str,
        *,
        client: httpx.Client | None = None,
        token: str | None = None,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        base = base_url.rstrip("/")
        self.base_url = base.removesuffix(API_PREFIX)
        self._api = self.base_url + API_PREFIX
        self._owns_client = client is None
        self.timeout = timeout
        self.verify = tls_verify()
        self._client = client if client is not None else httpx.Client(timeout=timeout, verify=self.verify)
        token = os.environ.get("LOOPML_TOKEN") if token is None else token
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._sleep = sleep

    def close(self) -> None:
        if self._owns_client:
            self._client.close()

    # -- requests ----------------------------------------------------------------------------
    def call(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        idempotent: bool | None = None,
    ) -> Any:
        """Send a JSON request; return the decoded JSON answer (None for 204)."""
        content = None if json_body is None else _encode(json_body)
        headers = {"Content-Type": "application/json"} if content is not None else {}
        if idempotent is None:
            idempotent = method in _SAFE_METHODS or bool(
                isinstance(json_body, dict) and json_body.get("idempotency_key")
            )
        response = self.send(method, path, content=content, params=params, headers=headers, idempotent=idempotent)
        return decode_json(response)

    def send(
        self,
        method: str,
        path: str,
        *,
        content: Content | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        stream: bool = False,
        ok_statuses: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """Send one request (retrying where safe); raise the decoded error for a 4xx/5xx answer.

        With ``stream`` the body is left unread; the caller must close the response.
        """
        if idempotent is None:
            idempotent = method in _SAFE_METHODS
        replayable = content is None or isinstance(content, bytes) or callable(content)
        attempts = RETRY_ATTEMPTS if idempotent and replayable else 1
        url = self._api + path
        query = {k: v for k, v in (params or {}).items() if v is not None}
        delay = RETRY_FIRST_DELAY_S
        for attempt in range(1, attempts + 1):
            body = content() if callable(content) else content
            request = self._client.build_request(
                method, url, content=body, params=query, headers={**self._headers, **(headers or {})}
            )
            try:
                response = self._client.send(request, stream=stream)
                break
            except RETRYABLE as exc:
                if attempt == attempts:
                    raise StoreError(f"Cannot reach the loopml server at {self.base_url}: {exc}") from exc
                self._sleep(delay)
                delay *= RETRY_MULTIPLIER
            except httpx.HTTPError as exc:
                raise StoreError(f"Request to the loopml server at {self.base_url} failed: {exc}") from exc
        if response.is_success or response.status_code in ok_statuses:
            return response
        if stream:
            response.read()
            response.close()
        raise decode_error(response)


def tls_verify() -> ssl.SSLContext | bool:
    """How clients check a server's certificate: the public CAs plus ``$LOOPML_TLS_CA_FILE``, else httpx's default.

    The CA file is added to the public ones, not put in their place, so the
    same client still reaches public endpoints (an S3 presigned URL).
    """
    ca_file = os.environ.get(TLS_CA_FILE_ENV)
    if not ca_file:
        return True  # httpx then honours SSL_CERT_FILE / SSL_CERT_DIR, else its bundled CAs
    import certifi

    try:
        context = ssl.create_default_context(cafile=certifi.where())
        context.load_verify_locations(cafile=ca_file)
        return context
    except (OSError, ssl.SSLError) as exc:
        raise InvalidValueError(
            f"{TLS_CA_FILE_ENV} does not name a readable CA certificate file ({type(exc).__name__})."
        ) from None


def _encode(body: Any) -> bytes:
    try:
        return json.dumps(body, allow_nan=True, separators=(",", ":")).encode("utf-8")
    except (TypeError, ValueError) as exc:
        raise InvalidValueError(f"Cannot send this request as JSON: {exc}") from exc


def decode_json(response: httpx.Response) -> Any:
    """The JSON of a success answer (None when empty); StoreError when it is not JSON."""
    if response.status_code == 204 or not response.content:
        return None
    try:
        return json.loads(response.content)  # json.loads, not response.json(): it reads NaN literals
    except ValueError as exc:
        raise StoreError(
            f"{response.request.url} answered {response.status_code} with something that is not JSON; "
            "is that a loopml server?"
        ) from exc


def decode_error(response: httpx.Response) -> LoopMLError:
    """The loopml error an error answer describes, by type name, else by status."""
    detail: dict[str, Any] = {}
    try:
        body = json.loads(response.content)
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            detail = body["error"]
    except ValueError:
        pass
    message = detail.get("message")
    if not isinstance(message, str):
        text = response.text[:200].strip()
        message = f"{response.request.method} {response.request.url} answered {response.status_code}" + (
            f": {text}" if text else "."
        )
    cls = _error_class(detail.get("type"), response.status_code)
    extra = {k: v for k, v in detail.items() if k not in ("type", "message")}
    return _build(cls, message, extra)


def _error_class(name: Any, status: int) -> type[LoopMLError]:
    found = getattr(errors, name, None) if isinstance(name, str) and name.isidentifier() else None
    if isinstance(found, type) and issubclass(found, LoopMLError):
        return found
    return _BY_STATUS.get(status, StoreError)


def _build(cls: type[LoopMLError], message: str, extra: Mapping[str, Any]) -> LoopMLError:
    """``cls(message, **known keyword fields)``, with any other field set as an attribute."""
    accepted = {
        name
        for name, p in inspect.signature(cls.__init__).parameters.items()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }
    keywords = {k: v for k, v in extra.items() if k in accepted}
    try:
        error = cls(message, **keywords)
    except TypeError:  # a field of an unexpected type; keep the class and message
        error, keywords = cls(message), {}
    for name, value in extra.items():
        if name not in keywords and name.isidentifier() and not hasattr(type(error), name):
            setattr(error, name, value)
    return error


def iter_file(path: str, chunk_size: int) -> Iterator[bytes]:
    """A local file in chunks (a request body that reopens the file on each retry)."""
    with open(path, "rb") as source:
        while block := source.read(chunk_size):
            yield block
