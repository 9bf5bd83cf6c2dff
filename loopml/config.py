"""Settings read from the environment once, into a frozen value.

``LOOPML_HOME`` (default ``./.loopml``) holds the embedded store: the SQLite
database and the artifact folder. ``LOOPML_DB_URL`` and ``LOOPML_ARTIFACTS_URL``
point the metadata and the artifacts elsewhere (PostgreSQL, any fsspec URL).
``LOOPML_TRACKING_URI`` picks what clients talk to: a database URL (embedded)
or ``http(s)://`` (a loopml server); it defaults to the database URL.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit


@dataclass(frozen=True, slots=True)
class Settings:
    """Where loopml keeps its metadata and artifacts."""

    home: Path
    db_url: str
    artifacts_url: str
    tracking_uri: str

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        home = Path(env.get("LOOPML_HOME") or ".loopml").expanduser().absolute()
        db_url = env.get("LOOPML_DB_URL") or f"sqlite:///{home / 'loopml.db'}"
        artifacts_url = env.get("LOOPML_ARTIFACTS_URL") or str(home / "artifacts")
        tracking_uri = env.get("LOOPML_TRACKING_URI") or db_url
        return cls(home=home, db_url=db_url, artifacts_url=artifacts_url, tracking_uri=tracking_uri)


def get_settings() -> Settings:
    """Read the settings from the current environment."""
    return Settings.from_env()


def os_user() -> str:
    """The operating-system user running this process, or "unknown" where none can be read."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def default_actor() -> str:
    """Who a decision is recorded as: ``LOOPML_ACTOR`` if set (CI jobs, services), else the OS user."""
    return os.environ.get("LOOPML_ACTOR") or os_user()


def hide_password(url: str) -> str:
    """``postgresql://u:secret@h/db`` -> ``postgresql://u:***@h/db``, for printing; other URLs unchanged."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def is_loopback_host(host: str) -> bool:
    """Whether a server bound to ``host`` is reachable from this machine only (``127.0.0.1``, ``::1``, ``localhost``)."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False
