"""The routing table of a prediction service, kept in step with the store by a background poller.

Every ``poll_interval_s`` (1 s by default) one query reads the current
deployment of every served model, aliases resolved, and one more resolves
the aliases that ``--models NAME@ALIAS`` and alias routes follow. When a
model's route changes and its old version is in memory, the new versions
are loaded first, then the route is swapped (one dict assignment, which the
request path reads without a lock), then the versions nothing routes to any
more are released: requests never see a cold model or a gap. A model whose
new version fails to load keeps its previous route, and the error is shown
in ``/v1/models`` and ``/readyz``. The request path never queries the store
to route: it reads ``routes`` and ``aliases``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

from loopml.errors import DeploymentNotFoundError, InvalidValueError
from loopml.serving.cache import ModelCache
from loopml.serving.routing import Route
from loopml.store.serving import ServingStore
from loopml.uris import check_alias, check_model_name

logger = logging.getLogger("loopml.serving")

DEFAULT_POLL_INTERVAL_S = 1.0
_MAX_WATCHED_ALIASES = 10_000


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """A model named to ``loopml serve --models``: ``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``.

    A deployment recorded in the store takes precedence; the alias or
    version here is what the model answers with while it has none.
    """

    name: str
    alias: str | None = None
    version: int | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        return f"{self.name}/{self.version}" if self.version else self.name


def parse_model_spec(text: str) -> ModelSpec:
    """``NAME``, ``NAME@ALIAS`` or ``NAME/VERSION``; InvalidValueError naming the forms otherwise."""
    if not isinstance(text, str) or not text:
        raise InvalidValueError(f"A model to serve is NAME, NAME@ALIAS or NAME/VERSION, got {text!r}.")
    if text.startswith("models:/"):
        text = text[len("models:/") :]
    try:
        if "@" in text:
            name, _, alias = text.partition("@")
            return ModelSpec(check_model_name(name), alias=check_alias(alias))
        if "/" in text:
            name, _, number = text.partition("/")
            if not (number.isascii() and number.isdigit()) or int(number) < 1:
                raise InvalidValueError(f"Version {number!r} is not a whole number from 1.")
            return ModelSpec(check_model_name(name), version=int(number))
        return ModelSpec(check_model_name(text))
    except InvalidValueError as exc:
        raise InvalidValueError(f"Cannot serve {text!r}: {exc.message} Use NAME, NAME@ALIAS or NAME/VERSION.") from None


class DeploymentWatcher:
    """``routes`` (name -> Route) and ``aliases`` ((name, alias) -> version), refreshed in the background.

    ``specs`` None means every model in the store may be served (``--all``);
    otherwise only the named ones, whose versions are loaded in advance and
    must be in memory before the service reports ready.
    """

    def __init__(
        self,
        store: ServingStore,
        cache: ModelCache,
        *,
        specs: Sequence[ModelSpec] | None,
        poll_interval_s: float = DEFAULT_POLL_INTERVAL_S,
    ) -> None:
        self._store = store
        self._cache = cache
        self.specs = None if specs is None else list(specs)
        self.names: frozenset[str] | None = None if specs is None else frozenset(s.name for s in specs)
        self.poll_interval_s = poll_interval_s
        self.routes: dict[str, Route] = {}
        self.aliases: dict[tuple[str, str], int] = {}
        self.errors: dict[str, str] = {}
        self.polled = False
        self.last_poll_at: float | None = None
        self.last_poll_error: str | None = None
        self._watched: set[tuple[str, str]] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._refresh_lock = threading.Lock()

    def serves(self, name: str) -> bool:
        """Whether this server answers for ``name`` at all (every model with ``--all``)."""
        return self.names is None or name in self.names

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Read the routing table now (no loading), then keep it fresh and the named models loaded, in a thread."""
        self._safe_refresh(preload=False)
        self._thread = threading.Thread(target=self._loop, name="loopml-deployments", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        self._safe_refresh(preload=True)
        while not self._stop.wait(self.poll_interval_s):
            self._safe_refresh(preload=True)

    def _safe_refresh(self, *, preload: bool) -> None:
        try:
            self.refresh(preload=preload)
            self.last_poll_error = None
        except Exception as exc:  # the store is unreachable: keep serving what we have, try again next tick
            self.last_poll_error = f"{type(exc).__name__}: {exc}"
            logger.warning("Could not refresh deployments: %s", self.last_poll_error)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    # -- one poll ---------------------------------------------------------------------------------
    def refresh(self, *, preload: bool = True) -> None:
        """Read deployments and aliases, load what changed, swap routes, release what nothing uses."""
        with self._refresh_lock:
            self._refresh(preload)

    def _refresh(self, preload: bool) -> None:
        names = None if self.names is None else sorted(self.names)
        deployments = {d.name: d for d in self._store.current_deployments(names)}
        refs = set(self._watched)
        refs.update((s.name, s.alias) for s in self.specs or () if s.alias and s.name not in deployments)
        resolved = self._store.resolve_aliases(sorted(refs)) if refs else {}
        current = self.routes
        errors: dict[str, str] = {}
        desired: dict[str, Route] = {}
        for deployment in deployments.values():
            name = deployment.name
            if deployment.version is None:
                errors[name] = f"the deployment follows alias {deployment.target!r}, which no longer exists"
                if name in current:
                    desired[name] = current[name]
                continue
            desired[name] = Route(
                name=name,
                version=deployment.version,
                target=deployment.target,
                source="deployment",
                canary_version=deployment.canary_version,
                canary_percent=deployment.canary_percent or 0.0,
                shadow_version=deployment.shadow_version,
                deployment_id=deployment.deployment_id,
            )
        for spec in self.specs or ():
            if spec.name in deployments:
                continue
            version = spec.version if spec.version is not None else resolved.get((spec.name, spec.alias or ""))
            if version is None:
                errors[spec.name] = (
                    f"alias {spec.alias!r} not found"
                    if spec.alias
                    else "no deployment (use loopml deploy NAME VERSION)"
                )
                if spec.name in current:
                    desired[spec.name] = current[spec.name]
                continue
            desired[spec.name] = Route(spec.name, version, spec.alias or str(version), source="command line")

        # Hot swap: where the old route's versions are in memory, load the new ones before switching.
        for name, route in list(desired.items()):
            old = current.get(name)
            if old is None or old == route or not any((name, v) in self._cache for v in old.versions):
                continue
            try:
                for version in route.versions:
                    self._cache.load((name, version))
            except Exception as exc:
                errors[name] = (
                    f"version(s) {list(route.versions)} failed to load ({exc}); still serving the previous route"
                )
                desired[name] = old
        aliases = self._next_aliases(resolved)
        before = _in_use(current, self.aliases)
        self.routes, self.aliases = desired, aliases
        for key in before - _in_use(desired, aliases):
            self._cache.discard(key)  # released: no route or alias points at it any more
        if preload:
            self._preload(desired, errors)
        self.errors = errors
        self.polled = True
        self.last_poll_at = time.monotonic()

    def _next_aliases(self, resolved: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
        """The watched aliases' new versions, loaded first where the old version is in memory."""
        old = self.aliases
        for ref, version in resolved.items():
            before = old.get(ref)
            if before is not None and before != version and (ref[0], before) in self._cache:
                try:
                    self._cache.load((ref[0], version))
                except Exception as exc:
                    logger.warning("Alias %s@%s moved to version %s, which failed to load: %s", *ref, version, exc)
        return {ref: resolved[ref] for ref in self._watched if ref in resolved}

    def _preload(self, routes: dict[str, Route], errors: dict[str, str]) -> None:
        """Keep every version of the explicitly named models in memory (the service is ready when they are)."""
        if self.names is None:
            return
        for name in sorted(self.names & routes.keys()):
            for version in routes[name].versions:
                try:
                    self._cache.load((name, version))
                except Exception as exc:
                    errors[name] = f"version {version} failed to load: {exc}"

    # -- the request path ------------------------------------------------------------------------
    def route(self, name: str) -> Route:
        """The route of ``name``; DeploymentNotFoundError when this server has none for it."""
        found = self.routes.get(name)
        if found is not None:
            return found
        if not self.serves(name):
            raise DeploymentNotFoundError(f"This server does not serve model {name!r}; it serves {self.describe()}.")
        why = self.errors.get(name)
        raise DeploymentNotFoundError(
            f"Model {name!r} has no deployment" + (f" ({why})" if why else "") + "; deploy it with "
            f"'loopml deploy {name} VERSION', or call /v1/models/{name}/versions/VERSION/predict."
        )

    def watch_alias(self, name: str, alias: str, version: int) -> None:
        """Remember an alias a request resolved, so the poller keeps it fresh from now on."""
        ref = (name, alias)
        if len(self._watched) < _MAX_WATCHED_ALIASES:
            self._watched.add(ref)
            self.aliases = {**self.aliases, ref: version}

    def serving(self) -> dict[str, list[int]]:
        """Each routed model and the versions its route sends traffic to now (for the replica heartbeat)."""
        return {name: list(route.versions) for name, route in self.routes.items()}

    def describe(self) -> str:
        if self.names is None:
            return "every deployed model"
        return ", ".join(sorted(self.names)) or "no model"

    def readiness(self) -> tuple[bool, list[str]]:
        """Ready once the routing table has been read and every version of the named models is in memory."""
        waiting = []
        if not self.polled:
            waiting.append(
                "the deployments have not been read yet"
                + (f" ({self.last_poll_error})" if self.last_poll_error else "")
            )
        for spec in self.specs or ():
            route = self.routes.get(spec.name)
            if route is None:
                waiting.append(f"{spec}: {self.errors.get(spec.name, 'no route yet')}")
                continue
            missing = [v for v in route.versions if (spec.name, v) not in self._cache]
            if missing:
                reason = self.errors.get(spec.name, "loading")
                waiting.append(f"{spec.name}: version(s) {missing} not loaded ({reason})")
        return not waiting, waiting

    def seconds_since_poll(self) -> float | None:
        return None if self.last_poll_at is None else time.monotonic() - self.last_poll_at


def _in_use(routes: dict[str, Route], aliases: dict[tuple[str, str], int]) -> set[tuple[str, int]]:
    """Every (model, version) a route or a watched alias points at."""
    found = {(name, version) for name, route in routes.items() for version in route.versions}
    found.update((name, version) for (name, _), version in aliases.items())
    return found
